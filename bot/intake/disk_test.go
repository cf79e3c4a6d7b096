package intake

import (
	"strings"
	"testing"
)

// Nothing is acknowledged that might not be stored: with the database's
// filesystem under MinFreeBytes (here: a bound above the real free space,
// measured by a real statfs) a signed delivery gets 503 and no row.
func TestDiskNearlyFullRefuses(t *testing.T) {
	tests := []struct {
		name    string
		minFree int64
		status  int
		stored  int
	}{
		{"room", 1, 202, 1},
		{"not checked", -1, 202, 1},
		{"nearly full", 1 << 62, 503, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, &recorder{}, Options{MinFreeBytes: tc.minFree}, false)
			code, body := f.post("pull_request", "d1", payloadFor("o/r", 1), secret)
			if code != tc.status {
				t.Errorf("status %d (%s), want %d", code, body, tc.status)
			}
			if code == 503 && !strings.Contains(body, "disk nearly full") {
				t.Errorf("503 body %q does not say why", body)
			}
			if n := f.count(); n != tc.stored {
				t.Errorf("%d deliveries stored, want %d", n, tc.stored)
			}
			if tc.status == 503 && !strings.Contains(f.metrics(), `compatbot_webhook_rejected_total{reason="disk"} 1`) {
				t.Errorf("no disk rejection counted:\n%s", f.metrics())
			}
		})
	}
}

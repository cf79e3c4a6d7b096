package intake

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
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

// A sender without the secret that announces a body and sends it slowly
// holds part of the unverified budget only for UnverifiedReadTimeout, not
// until the server's own read timeout (here: none at all).
func TestSlowUnverifiedSenderIsCutOff(t *testing.T) {
	f := newFixture(t, &recorder{}, Options{UnverifiedReadTimeout: 200 * time.Millisecond}, false)
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"+
		"X-GitHub-Event: pull_request\r\nX-GitHub-Delivery: slow\r\nX-Hub-Signature-256: sha256=%064x\r\n\r\n{\"action\":", 0)
	// The answer (or the connection closing) must come well before this.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server still waited for the slow body after %v", time.Since(start))
	}
	if code, body := f.post("pull_request", "after", payloadFor("o/r", 1), secret); code != 202 {
		t.Errorf("a delivery after the slow sender: %d %s", code, body)
	}
}

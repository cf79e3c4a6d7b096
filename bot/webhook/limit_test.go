package webhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// countingReader records how much of a body was read.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// Before the signature matches the sender is anyone: a missing or
// malformed header is refused without reading the body, a wrong one after
// reading it (but never past the cap), and a right one, over many chunks,
// gives back exactly the body sent.
func TestReadUnverifiedCost(t *testing.T) {
	secret := []byte("s3cret")
	small := []byte(`{"action":"opened","pull_request":{"number":1},"repository":{"full_name":"o/r"}}`)
	// Over several pooled chunks, with the JSON document intact.
	big := append(append([]byte(`{"action":"opened","pull_request":{"number":1},"repository":{"full_name":"o/r"},"pad":"`),
		bytes.Repeat([]byte("p"), 3*chunkSize+123)...), `"}`...)
	tests := []struct {
		name     string
		body     []byte
		sig      string
		max      int64
		status   int
		maxRead  int // the most of the body Read may consume
		wantBody bool
	}{
		{"no signature: body not read", big, "", 0, 401, 0, false},
		{"malformed signature: body not read", big, "sha256=xyz", 0, 401, 0, false},
		{"sha1 only: body not read", big, "sha1=" + strings.Repeat("0", 40), 0, 401, 0, false},
		{"wrong secret: read, refused", big, Sign(big, []byte("other")), 0, 401, len(big), false},
		{"over the cap: read no further", big, Sign(big, secret), 2 * chunkSize, 413, 2*chunkSize + chunkSize, false},
		{"small, signed", small, Sign(small, secret), 0, 0, len(small), true},
		{"several chunks, signed", big, Sign(big, secret), 0, 0, len(big), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cr := &countingReader{r: bytes.NewReader(tc.body)}
			r := httptest.NewRequest("POST", "/webhook", cr)
			r.ContentLength = -1 // as if chunked: nothing announced to trust
			r.Header.Set("X-GitHub-Event", "pull_request")
			r.Header.Set("X-GitHub-Delivery", "d1")
			if tc.sig != "" {
				r.Header.Set("X-Hub-Signature-256", tc.sig)
			}
			got, werr := ReadLimited(r, [][]byte{secret}, tc.max, NewLimiter(0, 0, 0))
			if cr.n > tc.maxRead {
				t.Errorf("read %d bytes of the body, want at most %d", cr.n, tc.maxRead)
			}
			if tc.status != 0 {
				if werr == nil || werr.Status != tc.status {
					t.Fatalf("ReadLimited error %v, want status %d", werr, tc.status)
				}
				return
			}
			if werr != nil {
				t.Fatalf("ReadLimited: %v", werr)
			}
			if !bytes.Equal(got.Payload, tc.body) {
				t.Errorf("payload of %d bytes differs from the %d sent", len(got.Payload), len(tc.body))
			}
			got.Release()
		})
	}
}

// The limiter's budget is shared: while one request holds it, another
// waits at most the limiter's wait and is then refused 503 busy, and a
// request beyond the count is refused at once; after release, both pass.
func TestLimiter(t *testing.T) {
	l := NewLimiter(1<<20, 2, 50*time.Millisecond)
	ctx := context.Background()
	rel1, werr := l.admit(ctx, 1<<20)
	if werr != nil {
		t.Fatal(werr)
	}
	if _, werr := l.admit(ctx, 10); werr == nil || werr.Status != http.StatusServiceUnavailable || werr.Reason != ReasonBusy {
		t.Fatalf("second admit while the budget is held: %v, want 503 busy", werr)
	}
	// The count bound: one holder plus one waiter fill it; a third is
	// refused without waiting.
	waiting := make(chan *Error)
	go func() {
		rel, werr := l.admit(ctx, 10)
		if rel != nil {
			defer rel()
		}
		waiting <- werr
	}()
	for l.pending.Load() < 2 {
		runtime.Gosched() // the waiter counts itself before it blocks
	}
	if _, werr := l.admit(ctx, 10); werr == nil || !strings.Contains(werr.Message, "too many") {
		t.Errorf("third concurrent request: %v, want refused for the count", werr)
	}
	rel1()
	if werr := <-waiting; werr != nil {
		t.Errorf("the waiter after release: %v", werr)
	}
	rel, werr := l.admit(ctx, 1<<20)
	if werr != nil {
		t.Fatalf("admit after release: %v", werr)
	}
	rel()
	var nilLim *Limiter
	if rel, werr := nilLim.admit(ctx, 1<<30); werr != nil {
		t.Errorf("nil limiter refused: %v", werr)
	} else {
		rel()
	}
}

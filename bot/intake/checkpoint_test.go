package intake

import (
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Under steady load the WAL must start over from its beginning after each
// checkpoint instead of growing for as long as the load lasts: a
// checkpoint from another connection alone never lets it (the writer adds
// frames while it copies), and the WAL then held every page ever written.
func TestWALStartsOverUnderSteadyLoad(t *testing.T) {
	f := newFixture(t, ProcessorFunc(nil), Options{CheckpointInterval: 5 * time.Millisecond}, false)
	const senders, perSender, size = 8, 150, 8 << 10
	var wg sync.WaitGroup
	var failed atomic.Int64
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSender {
				n := s*perSender + i
				if code, msg := f.post("pull_request", fmt.Sprintf("load-%d", n), prPayload(n+1, size), secret); code != http.StatusAccepted {
					t.Errorf("delivery %d: %d %s", n, code, msg)
					failed.Add(1)
					return
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	fi, err := os.Stat(f.db.Path() + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	// Every payload is written to the WAL at least once, so a WAL that
	// never started over is larger than all of them together.
	total := int64(senders * perSender * size)
	if fi.Size() > total/2 {
		t.Errorf("WAL is %d bytes after %d bytes of payloads: it did not start over", fi.Size(), total)
	}
	if got := f.count(); got != senders*perSender {
		t.Errorf("%d deliveries stored, want %d", got, senders*perSender)
	}
}

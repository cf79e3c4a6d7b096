package intake

import (
	"fmt"
	"sync"
	"time"

	"github.com/compatbot/compatbot/workflow/state"
)

// diskCheck says whether the database's filesystem has room. statfs is
// cheap but deliveries come by the thousand per second, so an answer is
// reused for diskRecheck.
type diskCheck struct {
	dir string
	min int64 // negative: not checked

	mu   sync.Mutex
	at   time.Time
	last error
}

const diskRecheck = 100 * time.Millisecond

func (c *diskCheck) ok() error {
	if c.min < 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.at) >= diskRecheck {
		c.at, c.last = now, LowDisk(c.dir, c.min)
	}
	return c.last
}

// LowDisk returns an error when the filesystem holding dir has less than
// min bytes free (or cannot be asked), nil otherwise.
func LowDisk(dir string, min int64) error {
	free, err := state.FreeBytes(dir)
	if err != nil {
		return err
	}
	if free < min {
		return fmt.Errorf("disk nearly full: %d bytes free under %s, want at least %d", free, dir, min)
	}
	return nil
}

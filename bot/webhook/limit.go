package webhook

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// Limiter bounds what requests not yet verified can cost: the bytes their
// bodies may hold at once, and how many may be reading or waiting. Anyone
// can send a request to the webhook; before its HMAC matches it has earned
// nothing, so unverified requests share a fixed budget instead of each
// getting up to the body cap. GitHub's own deliveries are small and rarely
// concurrent, so they pass at once unless a flood is going on; then they
// wait (at most Wait) or get 503, which GitHub shows as a failed delivery
// to redeliver, instead of the server running out of memory.
type Limiter struct {
	sem     *semaphore.Weighted
	budget  int64
	max     int64
	pending atomic.Int64
	wait    time.Duration
}

// Defaults for NewLimiter's zero arguments.
const (
	DefaultUnverifiedBytes    = 32 << 20 // a 25 MiB delivery and some small ones
	DefaultUnverifiedRequests = 256
	DefaultUnverifiedWait     = 5 * time.Second // GitHub gives up after 10 s
)

// NewLimiter lets unverified bodies hold at most budget bytes together,
// with at most requests of them reading or waiting for the budget, each
// waiting at most wait. Zero or negative arguments take the defaults.
func NewLimiter(budget int64, requests int, wait time.Duration) *Limiter {
	if budget <= 0 {
		budget = DefaultUnverifiedBytes
	}
	if requests <= 0 {
		requests = DefaultUnverifiedRequests
	}
	if wait <= 0 {
		wait = DefaultUnverifiedWait
	}
	return &Limiter{sem: semaphore.NewWeighted(budget), budget: budget, max: int64(requests), wait: wait}
}

// minCharge is what a request with a tiny or empty body is charged, so the
// budget also bounds the number of concurrent readers.
const minCharge = 4 << 10

// admit reserves n bytes of the budget, returning what gives them back. A
// nil Limiter admits everything.
func (l *Limiter) admit(ctx context.Context, n int64) (func(), *Error) {
	if l == nil {
		return func() {}, nil
	}
	if l.pending.Add(1) > l.max {
		l.pending.Add(-1)
		return nil, busy("too many unverified requests at once")
	}
	n = min(max(n, minCharge), l.budget)
	ctx, cancel := context.WithTimeout(ctx, l.wait)
	defer cancel()
	if err := l.sem.Acquire(ctx, n); err != nil {
		l.pending.Add(-1)
		return nil, busy("no room for more unverified request bodies")
	}
	return func() {
		l.sem.Release(n)
		l.pending.Add(-1)
	}, nil
}

func busy(why string) *Error {
	return &Error{http.StatusServiceUnavailable, ReasonBusy, "busy: " + why + "; retry later"}
}

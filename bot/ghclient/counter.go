package ghclient

import (
	"context"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type counterKey struct{}

type counter struct{ n atomic.Int64 }

// WithCounter returns a context that counts the GitHub API requests made
// with it (every attempt that reaches the network, retries included), so a
// handler can log and export what one webhook event cost.
func WithCounter(ctx context.Context) context.Context {
	return context.WithValue(ctx, counterKey{}, &counter{})
}

// CallsFrom is the number of API requests made with ctx since WithCounter;
// 0 when ctx has no counter.
func CallsFrom(ctx context.Context) int {
	if c, ok := ctx.Value(counterKey{}).(*counter); ok {
		return int(c.n.Load())
	}
	return 0
}

func countCall(ctx context.Context) {
	if c, ok := ctx.Value(counterKey{}).(*counter); ok {
		c.n.Add(1)
	}
}

type retrySafeKey struct{}

// WithRetrySafe marks the requests made with ctx as safe to repeat after a
// server error even when their method is POST, because the caller knows the
// endpoint is idempotent (e.g. adding a reaction returns the existing one).
func WithRetrySafe(ctx context.Context) context.Context {
	return context.WithValue(ctx, retrySafeKey{}, true)
}

type eventTimeKey struct{}

// WithEventTime records when the webhook that caused the requests was
// received. GitHub's API is eventually consistent: right after a webhook a GET
// of the object it names can briefly answer 404, so GETs made within
// Transport.FreshWindow of this time retry a 404.
func WithEventTime(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, eventTimeKey{}, t)
}

// Stats are totals since start, for /metrics.
type Stats struct {
	Calls          int64 // requests sent to GitHub (attempts)
	Retries        int64 // attempts that repeated an earlier one
	RateLimitWaits int64 // times a request waited for a rate limit
	RateLimited    int64 // requests given up because the wait would exceed MaxWait
	// ByStatus counts answers by HTTP status ("200", "404"), "error" for
	// requests that got no answer.
	ByStatus map[string]int64
	// RateLimits is the budget left per holder of a limit: "installation/42",
	// "token" (development token) or "" (the App's own JWT requests).
	RateLimits map[string]RateLimit
}

type stats struct {
	calls, retries, waits, limited atomic.Int64

	mu       sync.Mutex
	byStatus map[string]int64
	budget   map[string]RateLimit
}

// RateLimit is the last rate-limit state GitHub announced to one holder of
// a limit (an installation, the development token, the App itself).
type RateLimit struct {
	Limit, Remaining int64
	Reset            time.Time
}

func (s *stats) snapshot() Stats {
	st := Stats{Calls: s.calls.Load(), Retries: s.retries.Load(), RateLimitWaits: s.waits.Load(), RateLimited: s.limited.Load()}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.ByStatus = maps.Clone(s.byStatus)
	st.RateLimits = maps.Clone(s.budget)
	return st
}

// response records one answer (status "200", "404", or "error" for a
// request that got none) and the rate-limit headers it carried, under the
// limit holder key.
func (s *stats) response(key string, resp *http.Response) {
	status := "error"
	if resp != nil {
		status = strconv.Itoa(resp.StatusCode)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byStatus == nil {
		s.byStatus, s.budget = map[string]int64{}, map[string]RateLimit{}
	}
	s.byStatus[status]++
	if resp == nil {
		return
	}
	rem, err1 := strconv.ParseInt(resp.Header.Get("X-RateLimit-Remaining"), 10, 64)
	lim, err2 := strconv.ParseInt(resp.Header.Get("X-RateLimit-Limit"), 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	rl := RateLimit{Limit: lim, Remaining: rem}
	if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
		rl.Reset = time.Unix(reset, 0)
	}
	// Only the core REST budget: search and GraphQL have their own, and
	// would make the gauge jump between unrelated numbers.
	if r := resp.Header.Get("X-RateLimit-Resource"); r == "" || r == "core" {
		s.budget[key] = rl
	}
}

// WithNotFoundAnswer marks requests whose 404 is an answer (a user who is
// not a team member or collaborator, a file not there yet) rather than
// GitHub lagging behind a webhook, so the fresh-404 retries are skipped:
// they would cost seconds per "no".
func WithNotFoundAnswer(ctx context.Context) context.Context {
	return context.WithValue(ctx, eventTimeKey{}, time.Time{})
}

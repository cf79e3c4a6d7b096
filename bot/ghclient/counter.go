package ghclient

import (
	"context"
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
}

type stats struct {
	calls, retries, waits, limited atomic.Int64
}

func (s *stats) snapshot() Stats {
	return Stats{Calls: s.calls.Load(), Retries: s.retries.Load(), RateLimitWaits: s.waits.Load(), RateLimited: s.limited.Load()}
}

// WithNotFoundAnswer marks requests whose 404 is an answer (a user who is
// not a team member or collaborator, a file not there yet) rather than
// GitHub lagging behind a webhook, so the fresh-404 retries are skipped:
// they would cost seconds per "no".
func WithNotFoundAnswer(ctx context.Context) context.Context {
	return context.WithValue(ctx, eventTimeKey{}, time.Time{})
}

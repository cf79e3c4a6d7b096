package ghclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/compatbot/compatbot/internal/buildinfo"
)

// Transport is an http.RoundTripper for GitHub's REST API that honours its
// rate limits and retries what is safe to retry. The rules:
//
//   - Rate limits. A 403 or 429 with Retry-After (secondary limit) waits that
//     long; one with X-RateLimit-Remaining: 0 (primary limit) waits until
//     X-RateLimit-Reset; a 403 whose body names the secondary rate limit but
//     carries neither header waits one minute, as GitHub asks. GitHub did not
//     act on a rate-limited request, so any method is repeated after the
//     wait. Any response announcing Remaining: 0 also holds every later
//     request until the reset, instead of sending it to be refused. A wait
//     longer than MaxWait is not taken: the response is returned and the
//     caller (the intake's retry with backoff) comes back later.
//   - Limits are GitHub's per installation (each has its own token and
//     quota), so what a limit holds back is per installation too: For(key)
//     gives each installation its own view of the Transport, and a limit
//     hit by one (primary, or secondary with Retry-After) holds only that
//     one's later requests, never the other installations'.
//   - Server errors (5xx) and network errors are retried with exponential
//     backoff and jitter, at most MaxRetries times, only for requests whose
//     repetition has the same effect as one: GET, HEAD, OPTIONS, PUT, DELETE
//     and PATCH (on GitHub these set state; the one impurity, annotations
//     appended by a check-run PATCH, at worst repeats a batch), plus POSTs to
//     /app/installations/{id}/access_tokens (a second token is harmless) and
//     POSTs whose context is marked WithRetrySafe. Other POSTs (a comment, a
//     check run) may have been carried out before the 5xx was produced, so
//     they are not repeated blindly: the error goes back to the caller, whose
//     retry first looks up whether the object exists (find-or-create).
//   - A GET answering 404 within FreshWindow of the webhook (WithEventTime)
//     is retried a few times: GitHub's API may not yet show what the webhook
//     announced.
//
// Every attempt is counted in Stats and in the context's counter.
type Transport struct {
	Base http.RoundTripper // default http.DefaultTransport
	Limits

	stats *stats
	mu    sync.Mutex
	holds map[string]time.Time // per key: limit hit, no request before this
}

// UserAgent is sent with every request to GitHub: compatbot's version and
// revision (internal/buildinfo).
var UserAgent = buildinfo.Get().UserAgent()

// For returns the Transport as used by one holder of a rate limit (an
// installation: "installation/42"): limits it hits hold only requests made
// through the same key. RoundTrip on the Transport itself uses key "".
func (t *Transport) For(key string) http.RoundTripper { return keyed{t, key} }

type keyed struct {
	t   *Transport
	key string
}

func (k keyed) RoundTrip(req *http.Request) (*http.Response, error) { return k.t.roundTrip(req, k.key) }

// Limits bound the Transport's waiting and retrying; zero values take the
// defaults.
type Limits struct {
	MaxWait     time.Duration // longest single rate-limit wait; default 2 minutes
	MaxRetries  int           // for 5xx, network errors and fresh 404s; default 4
	Backoff     time.Duration // first backoff; doubles per retry; default 500ms
	FreshWindow time.Duration // default 30s
	// SecondaryWait is the wait after a secondary-limit 403 that carries
	// no Retry-After; GitHub asks for at least a minute (the default).
	SecondaryWait time.Duration
}

// Stats returns the totals since the transport was made.
func (t *Transport) Stats() Stats { return t.st().snapshot() }

func (t *Transport) st() *stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stats == nil {
		t.stats = &stats{}
	}
	return t.stats
}

// RateLimitError is returned when GitHub's rate limit would make a request
// wait longer than MaxWait.
type RateLimitError struct {
	Until time.Time
	URL   string
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("GitHub rate limit: %s not sent, limit resets at %s", e.URL, e.Until.UTC().Format(time.RFC3339))
}

func (t *Transport) maxWait() time.Duration {
	if t.MaxWait > 0 {
		return t.MaxWait
	}
	return 2 * time.Minute
}

func (t *Transport) maxRetries() int {
	if t.MaxRetries > 0 {
		return t.MaxRetries
	}
	return 4
}

func (t *Transport) backoff(attempt int) time.Duration {
	b := t.Backoff
	if b <= 0 {
		b = 500 * time.Millisecond
	}
	d := b << min(attempt, 8)
	// Full jitter on the upper half keeps concurrent workers from retrying
	// in lockstep.
	return d/2 + rand.N(d/2+1)
}

func (t *Transport) freshWindow() time.Duration {
	if t.FreshWindow > 0 {
		return t.FreshWindow
	}
	return 30 * time.Second
}

func retryable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodPatch:
		return true
	case http.MethodPost:
		if strings.HasSuffix(req.URL.Path, "/access_tokens") {
			return true
		}
		safe, _ := req.Context().Value(retrySafeKey{}).(bool)
		return safe
	}
	return false
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) { return t.roundTrip(req, "") }

func (t *Transport) roundTrip(req *http.Request, key string) (*http.Response, error) {
	ctx := req.Context()
	st := t.st()
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	retries, limitWaits := 0, 0
	for attempt := 0; ; attempt++ {
		if err := t.waitHold(ctx, req, key); err != nil {
			return nil, err
		}
		r := req.Clone(ctx)
		// GitHub asks every client to name itself; go-github's default
		// and ghinstallation's token requests would not say which
		// compatbot (and which build) sent them.
		r.Header.Set("User-Agent", UserAgent)
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			r.ContentLength = int64(len(body))
		}
		st.calls.Add(1)
		if attempt > 0 {
			st.retries.Add(1)
		}
		countCall(ctx)
		resp, err := base.RoundTrip(r)
		st.response(limitHolder(r, key), resp)
		if err != nil {
			if ctx.Err() != nil || !retryable(req) || retries >= t.maxRetries() {
				return nil, err
			}
			retries++
			if err := sleep(ctx, t.backoff(retries)); err != nil {
				return nil, err
			}
			continue
		}
		t.noteLimit(resp, key)

		var wait time.Duration
		switch {
		case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests:
			d, limited := t.rateLimitWait(resp)
			if !limited {
				return resp, nil
			}
			if d > t.maxWait() || limitWaits >= 3 {
				st.limited.Add(1)
				t.holdUntil(key, time.Now().Add(d))
				return resp, nil
			}
			limitWaits++
			st.waits.Add(1)
			wait = d
			// The installation's other requests wait as well rather
			// than spend themselves against the limit.
			t.holdUntil(key, time.Now().Add(d))
		case resp.StatusCode >= 500:
			if !retryable(req) || retries >= t.maxRetries() {
				return resp, nil
			}
			retries++
			wait = t.backoff(retries)
		case resp.StatusCode == http.StatusNotFound && req.Method == http.MethodGet:
			ev, ok := ctx.Value(eventTimeKey{}).(time.Time)
			if !ok || time.Since(ev) > t.freshWindow() || retries >= t.maxRetries() {
				return resp, nil
			}
			retries++
			wait = t.backoff(retries)
		default:
			return resp, nil
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// waitHold blocks while a limit of key is known to be hit.
func (t *Transport) waitHold(ctx context.Context, req *http.Request, key string) error {
	t.mu.Lock()
	until := t.holds[key]
	if !until.IsZero() && time.Until(until) <= 0 {
		delete(t.holds, key) // keeps the map to the keys held now
	}
	t.mu.Unlock()
	d := time.Until(until)
	if d <= 0 {
		return nil
	}
	if d > t.maxWait() {
		t.st().limited.Add(1)
		return &RateLimitError{Until: until, URL: req.URL.Redacted()}
	}
	t.st().waits.Add(1)
	return sleep(ctx, d)
}

// holdUntil holds key's requests until until.
func (t *Transport) holdUntil(key string, until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.holds == nil {
		t.holds = map[string]time.Time{}
	}
	if until.After(t.holds[key]) {
		t.holds[key] = until
	}
}

// noteLimit remembers an exhausted primary limit of key so its later
// requests wait rather than spend themselves against it.
func (t *Transport) noteLimit(resp *http.Response, key string) {
	if resp.Header.Get("X-RateLimit-Remaining") != "0" {
		return
	}
	reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil {
		return
	}
	t.holdUntil(key, time.Unix(reset, 0))
}

// rateLimitWait says whether a 403/429 is a rate limit and how long to wait.
func (t *Transport) rateLimitWait(resp *http.Response) (time.Duration, bool) {
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && s >= 0 {
			return time.Duration(s) * time.Second, true
		}
		if when, err := http.ParseTime(ra); err == nil {
			return max(time.Until(when), 0), true
		}
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			// The reset is in whole seconds; a second's margin avoids
			// arriving just before it.
			return max(time.Until(time.Unix(reset, 0)), 0) + time.Second, true
		}
	}
	if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests {
		// Peek at the body for GitHub's secondary-limit message, keeping it
		// readable for the caller.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		if bytes.Contains(bytes.ToLower(b), []byte("secondary rate limit")) {
			if t.SecondaryWait > 0 {
				return t.SecondaryWait, true
			}
			return time.Minute, true
		}
	}
	return 0, false
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

var errNoCredentials = errors.New("ghclient: either an app id with a private key or a token is required")

// limitHolder is whose rate limit a response reports: requests signed with
// the App's JWT (token and installation lookups) spend the App's own
// budget, not the installation's they were made for.
func limitHolder(req *http.Request, key string) string {
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok && strings.Count(tok, ".") == 2 {
		return "app"
	}
	return key
}

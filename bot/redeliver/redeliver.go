// Package redeliver recovers webhook deliveries compatbot never stored: a
// restart, an outage of its host or a full disk makes GitHub's attempt fail
// (no answer, or a 5xx), and GitHub does not retry on its own. At start and
// periodically, the App's delivery log (GET /app/hook/deliveries) is read
// back over a window, and every delivery whose attempts all failed and
// whose id the intake has not stored is redelivered (POST
// /app/hook/deliveries/{id}/attempts). The redelivery reaches /webhook
// with its original X-GitHub-Delivery, so the intake's deduplication holds
// even when two compatbot runs ask for the same one.
package redeliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"
)

// Options configure a Recoverer.
type Options struct {
	// App is a client authenticated as the App (ghclient.Factory.AppClient).
	App *github.Client
	// Stored reports whether the intake holds a delivery id (any state).
	Stored func(ctx context.Context, guid string) (bool, error)
	// Window is how far back the log is read; default 72h, GitHub's
	// redelivery limit (older deliveries cannot be redelivered).
	Window time.Duration
	// Interval between runs of Run; default 10 minutes.
	Interval time.Duration
	// Retry is how long a redelivery asked for is left to arrive before
	// it is asked for again; default 1 hour.
	Retry time.Duration
	// MaxPerRun bounds the redeliveries asked for in one pass (they cost
	// the App's rate limit); default 100.
	MaxPerRun int
	// Clock defaults to time.Now.
	Clock  func() time.Time
	Logger *slog.Logger
}

// Recoverer asks GitHub to redeliver what was lost.
type Recoverer struct {
	o     Options
	mu    sync.Mutex
	asked map[string]time.Time // guid -> when redelivery was asked
}

// New checks o and fills in the defaults.
func New(o Options) (*Recoverer, error) {
	if o.App == nil || o.Stored == nil {
		return nil, errors.New("redeliver: App and Stored are required")
	}
	if o.Window <= 0 {
		o.Window = 72 * time.Hour
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Minute
	}
	if o.Retry <= 0 {
		o.Retry = time.Hour
	}
	if o.MaxPerRun <= 0 {
		o.MaxPerRun = 100
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Recoverer{o: o, asked: map[string]time.Time{}}, nil
}

// Report is what one pass found and did.
type Report struct {
	Seen        int      // deliveries (distinct ids) in the window
	Failed      int      // of those, never answered with 2xx
	Stored      int      // failed on GitHub's side but stored (answered too late)
	Redelivered []string // ids asked to be redelivered
	Pending     int      // asked for less than Retry ago: left to arrive
}

// delivery is what the log says about one id over its attempts.
type delivery struct {
	guid     string
	ok       bool
	latestID int64 // the newest attempt, the one to redeliver
	event    string
}

// RunOnce reads the log back over the window and asks for the redelivery
// of every failed delivery the intake has not stored.
func (r *Recoverer) RunOnce(ctx context.Context) (Report, error) {
	var rep Report
	now := r.o.Clock()
	since := now.Add(-r.o.Window)
	byGUID := map[string]*delivery{}
	var order []*delivery // newest first, as GitHub lists them
	opt := &github.ListCursorOptions{PerPage: 100}
pages:
	for {
		page, resp, err := r.o.App.Apps.ListHookDeliveries(ctx, opt)
		if err != nil {
			return rep, fmt.Errorf("redeliver: list the App's deliveries: %w", err)
		}
		for _, hd := range page {
			if hd.GetDeliveredAt().Before(since) {
				break pages // newest first: the rest is older
			}
			d := byGUID[hd.GetGUID()]
			if d == nil {
				d = &delivery{guid: hd.GetGUID(), latestID: hd.GetID(), event: hd.GetEvent()}
				byGUID[d.guid] = d
				order = append(order, d)
			}
			if c := hd.GetStatusCode(); c >= 200 && c < 300 {
				d.ok = true
			}
		}
		if resp.Cursor == "" || len(page) == 0 {
			break
		}
		opt.Cursor = resp.Cursor
	}
	rep.Seen = len(order)
	r.mu.Lock()
	for g, at := range r.asked {
		if now.Sub(at) > r.o.Window {
			delete(r.asked, g) // out of the window: never asked again
		}
	}
	r.mu.Unlock()
	// Oldest first, so the intake gets them in the order they happened
	// (it serialises per repository and PR in order of receipt).
	for i := len(order) - 1; i >= 0; i-- {
		d := order[i]
		if d.ok {
			continue
		}
		rep.Failed++
		stored, err := r.o.Stored(ctx, d.guid)
		if err != nil {
			return rep, err
		}
		if stored {
			rep.Stored++
			continue
		}
		r.mu.Lock()
		at, asked := r.asked[d.guid]
		r.mu.Unlock()
		if asked && now.Sub(at) < r.o.Retry {
			rep.Pending++
			continue
		}
		if len(rep.Redelivered) >= r.o.MaxPerRun {
			continue // the next pass
		}
		if _, _, err := r.o.App.Apps.RedeliverHookDelivery(ctx, d.latestID); err != nil {
			// go-github reports GitHub's 202 as an AcceptedError: the
			// redelivery is queued.
			var acc *github.AcceptedError
			if !errors.As(err, &acc) {
				return rep, fmt.Errorf("redeliver: %s (%s): %w", d.guid, d.event, err)
			}
		}
		r.mu.Lock()
		r.asked[d.guid] = now
		r.mu.Unlock()
		rep.Redelivered = append(rep.Redelivered, d.guid)
		r.o.Logger.Info("redelivery asked for a delivery compatbot never stored", "delivery", d.guid, "event", d.event)
	}
	return rep, nil
}

// Run calls RunOnce now and every Interval until ctx ends; failures are
// logged and the next pass tries again.
func (r *Recoverer) Run(ctx context.Context) {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		rep, err := r.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			r.o.Logger.Warn("missed-delivery recovery failed", "error", err)
		} else if err == nil && (len(rep.Redelivered) > 0 || rep.Pending > 0) {
			r.o.Logger.Info("missed-delivery recovery", "seen", rep.Seen, "failed", rep.Failed, "redelivered", len(rep.Redelivered), "pending", rep.Pending)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

package redeliver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/bot/githubfake"
	"github.com/compatbot/compatbot/bot/intake"
	"github.com/compatbot/compatbot/bot/metrics"
	"github.com/compatbot/compatbot/workflow/state"
)

const appID = 321

var secret = []byte("hook-secret")

// world is the GitHub double with its delivery log, and compatbot's real
// intake (real SQLite, real HTTP) as the App's webhook URL.
type world struct {
	gh   *githubfake.Server
	db   *state.DB
	app  *ghclient.Factory
	now  time.Time
	mu   sync.Mutex
	hook string // the intake's URL
}

func newWorld(t *testing.T) *world {
	t.Helper()
	gh, key := githubfake.New(appID)
	t.Cleanup(gh.Close)
	gh.AddRepo("eessi", "compat-layer", 5, "file:///nonexistent")
	db, err := state.Open(filepath.Join(t.TempDir(), "compatbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	in, err := intake.New(context.Background(), intake.Options{DB: db, Secrets: [][]byte{secret}, Metrics: metrics.NewRegistry(),
		Processor: intake.ProcessorFunc(func(context.Context, *intake.Delivery) error { return nil }),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	hook := httptest.NewServer(in)
	t.Cleanup(hook.Close)
	gh.SetHook(hook.URL, secret)
	f, err := ghclient.New(ghclient.Config{APIURL: gh.APIURL(), AppID: appID, PrivateKey: key, Limits: ghclient.Limits{Backoff: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return &world{gh: gh, db: db, app: f, now: time.Now(), hook: hook.URL}
}

func (w *world) recoverer(t *testing.T) *Recoverer {
	t.Helper()
	app, err := w.app.AppClient()
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{App: app, Stored: func(ctx context.Context, id string) (bool, error) { return intake.Stored(ctx, w.db, id) },
		Clock: func() time.Time { w.mu.Lock(); defer w.mu.Unlock(); return w.now }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func guid(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

func payload(n int) []byte {
	return fmt.Appendf(nil, `{"action":"opened","number":%d,"pull_request":{"number":%d},"repository":{"full_name":"eessi/compat-layer"},"installation":{"id":5}}`, n, n)
}

func (w *world) stored(t *testing.T, id string) bool {
	t.Helper()
	ok, err := intake.Stored(context.Background(), w.db, id)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// A restart or outage lost some deliveries: only those GitHub could not
// deliver and compatbot never stored are redelivered, across pages of the
// log, oldest first, and they reach the real intake.
func TestRecoversMissedDeliveries(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	add := func(n, status int, age time.Duration) {
		w.gh.AddHookDelivery(githubfake.HookDelivery{GUID: guid(n), Event: "pull_request", Action: "opened", StatusCode: status,
			DeliveredAt: w.now.Add(-age), Payload: payload(n), Installation: 5})
	}
	add(1, 0, 80*time.Hour)      // lost, but beyond GitHub's 3-day redelivery window
	add(2, 0, 3*time.Hour)       // lost while compatbot was down
	add(3, 503, 2*time.Hour)     // refused (disk full), then redelivered by hand:
	add(3, 202, time.Hour)       //   the later attempt succeeded
	add(4, 502, time.Hour)       // GitHub saw a proxy error, but the intake stored it
	add(5, 200, time.Hour)       // fine
	for n := 100; n < 250; n++ { // more than a page of fine deliveries
		add(n, 202, 50*time.Minute)
	}
	add(6, 0, 10*time.Minute) // lost most recently
	// Delivery 4 reached the intake (its answer got lost on the way back).
	if err := deliverTo(w, guid(4), payload(4)); err != nil {
		t.Fatal(err)
	}

	r := w.recoverer(t)
	rep, err := r.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{guid(2), guid(6)}; !slices.Equal(rep.Redelivered, want) {
		t.Errorf("redelivered %v, want %v (oldest first)", rep.Redelivered, want)
	}
	if rep.Stored != 1 || rep.Seen != 155 {
		t.Errorf("report %+v: want 155 seen (two pages), 1 failed but stored", rep)
	}
	for n, want := range map[int]bool{1: false, 2: true, 6: true} {
		if got := w.stored(t, guid(n)); got != want {
			t.Errorf("delivery %d stored = %v, want %v", n, got, want)
		}
	}
	if n := w.gh.CallCount("GET /app/hook/deliveries"); n != 2 {
		t.Errorf("%d list calls, want 2 (two pages)", n)
	}
	for _, c := range w.gh.Calls() {
		if strings.HasPrefix(c.Path, "/app/hook/") && c.Status >= 400 {
			t.Errorf("%s %s answered %d", c.Method, c.Path, c.Status)
		}
	}
	// The redeliveries succeeded: a second pass asks for nothing.
	rep, err = r.RunOnce(ctx)
	if err != nil || len(rep.Redelivered) != 0 || rep.Pending != 0 {
		t.Errorf("second pass: %+v, %v; want nothing to do", rep, err)
	}
}

// A redelivery that fails again (compatbot still down) is not asked for
// on every pass, only again after Retry.
func TestRedeliveryRetriedAfterRetryInterval(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.gh.SetHook("http://127.0.0.1:1/webhook", secret) // nothing listens
	w.gh.AddHookDelivery(githubfake.HookDelivery{GUID: guid(7), Event: "issue_comment", StatusCode: 0, DeliveredAt: w.now.Add(-time.Minute), Payload: payload(7)})
	r := w.recoverer(t)
	for _, step := range []struct {
		advance             time.Duration
		redelivered, pendin int
	}{
		{0, 1, 0},
		{10 * time.Minute, 0, 1},
		{time.Hour, 1, 0},
	} {
		w.mu.Lock()
		w.now = w.now.Add(step.advance)
		w.mu.Unlock()
		rep, err := r.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Redelivered) != step.redelivered || rep.Pending != step.pendin {
			t.Errorf("after +%s: %+v, want %d redelivered, %d pending", step.advance, rep, step.redelivered, step.pendin)
		}
	}
	if n := w.gh.CallCount("POST /app/hook/deliveries/{id}/attempts"); n != 2 {
		t.Errorf("%d redelivery requests, want 2", n)
	}
}

// The delivery log is the App's: GitHub refuses an installation token.
func TestDeliveryLogNeedsTheAppJWT(t *testing.T) {
	w := newWorld(t)
	inst, err := w.app.Client(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	_, resp, err := inst.Apps.ListHookDeliveries(context.Background(), nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("list with an installation token: %v, want 401", err)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without App and Stored succeeded")
	}
}

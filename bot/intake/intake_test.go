package intake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compatbot/compatbot/bot/metrics"
	"github.com/compatbot/compatbot/bot/webhook"
	"github.com/compatbot/compatbot/workflow/state"
)

var secret = []byte("current-secret")

type fixture struct {
	t      *testing.T
	db     *state.DB
	in     *Intake
	srv    *httptest.Server
	reg    *metrics.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

// newFixture runs a real intake on a real SQLite file behind a real HTTP
// server; run says whether to start processing.
func newFixture(t *testing.T, p Processor, opts Options, run bool) *fixture {
	t.Helper()
	db, err := state.Open(filepath.Join(t.TempDir(), "compatbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, reg: metrics.NewRegistry(), done: make(chan struct{})}
	opts.DB, opts.Processor, opts.Metrics = db, p, f.reg
	if opts.Secrets == nil {
		opts.Secrets = [][]byte{secret, []byte("old-secret")}
	}
	if opts.BackoffBase == 0 {
		opts.BackoffBase = 10 * time.Millisecond
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	f.in, err = New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.in)
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	if run {
		go func() { defer close(f.done); f.in.Run(ctx) }()
	} else {
		close(f.done)
	}
	t.Cleanup(f.stop)
	return f
}

func (f *fixture) stop() {
	f.srv.Close()
	f.cancel()
	<-f.done
	f.in.Close()
	f.db.Close()
}

func payloadFor(repo string, pr int) []byte {
	return []byte(fmt.Sprintf(`{"action":"synchronize","number":%d,"pull_request":{"number":%d,"head":{"sha":"0123456789abcdef"}},"repository":{"full_name":%q},"installation":{"id":7}}`, pr, pr, repo))
}

// post sends a delivery signed with key (nil: unsigned).
func (f *fixture) post(event, id string, body []byte, key []byte, hdr ...string) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if event != "" {
		req.Header.Set("X-GitHub-Event", event)
	}
	if id != "" {
		req.Header.Set("X-GitHub-Delivery", id)
	}
	if key != nil {
		req.Header.Set("X-Hub-Signature-256", webhook.Sign(body, key))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fixture) count() int {
	var n int
	if err := f.db.QueryRow(`SELECT count(*) FROM intake_deliveries`).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) get(id string) *Record {
	f.t.Helper()
	r, err := f.in.Get(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// waitState polls until delivery id reaches st.
func (f *fixture) waitState(id, st string) *Record {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := f.in.Get(context.Background(), id)
		if err == nil && r.State == st {
			return r
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("delivery %s: state %v, want %s", id, r, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fixture) metrics() string {
	var b bytes.Buffer
	f.reg.Write(&b)
	return b.String()
}

type recorder struct {
	mu    sync.Mutex
	calls []Delivery
	fn    func(d *Delivery) error
}

func (r *recorder) Process(ctx context.Context, d *Delivery) error {
	r.mu.Lock()
	r.calls = append(r.calls, *d)
	fn := r.fn
	r.mu.Unlock()
	if fn != nil {
		return fn(d)
	}
	return nil
}

func (r *recorder) n() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func TestSignatures(t *testing.T) {
	f := newFixture(t, &recorder{}, Options{}, false)
	body := payloadFor("o/r", 1)
	tests := []struct {
		name   string
		key    []byte
		hdr    []string
		status int
	}{
		{"unsigned", nil, nil, 401},
		{"unknown secret", []byte("guess"), nil, 401},
		{"malformed", nil, []string{"X-Hub-Signature-256", "sha256=xyz"}, 401},
		{"sha1 only", nil, []string{"X-Hub-Signature", "sha1=0000000000000000000000000000000000000000"}, 401},
		{"current secret", secret, nil, 202},
		{"rotated-out secret still configured", []byte("old-secret"), nil, 202},
	}
	stored := 0
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := f.post("pull_request", fmt.Sprintf("sig-%d", i), body, tc.key, tc.hdr...)
			if code != tc.status {
				t.Fatalf("status %d (%s), want %d", code, msg, tc.status)
			}
			if code == 202 {
				stored++
			}
			if n := f.count(); n != stored {
				t.Errorf("%d deliveries stored, want %d", n, stored)
			}
		})
	}
	if m := f.metrics(); !strings.Contains(m, `compatbot_webhook_rejected_total{reason="signature"} 4`) {
		t.Errorf("metrics do not count 4 signature rejections:\n%s", m)
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t, &recorder{}, Options{MaxBodyBytes: 4096}, false)
	big := []byte(`{"action":"opened","x":"` + strings.Repeat("a", 5000) + `"}`)
	tests := []struct {
		name, event, id string
		body            []byte
		status          int
		reason          string
	}{
		{"oversize", "pull_request", "a", big, 413, "larger than 4096"},
		{"malformed json", "pull_request", "b", []byte(`{"action":`), 400, "not valid JSON"},
		{"not an object", "pull_request", "c", []byte(`[1,2]`), 400, "not a JSON object"},
		{"no event header", "", "d", payloadFor("o/r", 1), 400, "missing X-GitHub-Event"},
		{"no delivery header", "pull_request", "", payloadFor("o/r", 1), 400, "missing X-GitHub-Delivery"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := f.post(tc.event, tc.id, tc.body, secret)
			if code != tc.status || !strings.Contains(msg, tc.reason) {
				t.Errorf("got %d %q, want %d with %q", code, msg, tc.status, tc.reason)
			}
		})
	}
	if n := f.count(); n != 0 {
		t.Errorf("%d deliveries stored from bad requests", n)
	}
}

func TestFormEncodedDelivery(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, rec, Options{}, true)
	payload := payloadFor("o/r", 5)
	form := []byte("payload=" + url.QueryEscape(string(payload)))
	code, msg := f.post("pull_request", "form-1", form, secret, "Content-Type", "application/x-www-form-urlencoded")
	if code != 202 {
		t.Fatalf("status %d %s", code, msg)
	}
	r := f.waitState("form-1", StateDone)
	if string(r.Payload) != string(payload) || r.Key != "o/r#5" || r.Action != "synchronize" || r.Installation != 7 {
		t.Errorf("stored %+v, payload %s", r, r.Payload)
	}
	if rec.n() != 1 || string(rec.calls[0].Payload) != string(payload) {
		t.Errorf("processor saw %d calls", rec.n())
	}
}

// eventsRecorder is a processor that says which events it handles.
type eventsRecorder struct {
	recorder
	events []string
}

func (e *eventsRecorder) Events() []string { return e.events }

// A processor's Events method replaces DefaultEvents when Options.Events
// is not set.
func TestProcessorEventsDecide(t *testing.T) {
	p := &eventsRecorder{events: []string{"push"}}
	f := newFixture(t, p, Options{}, true)
	if code, msg := f.post("pull_request", "pr1", payloadFor("o/r", 1), secret); code != 202 || !strings.Contains(msg, "ignored") {
		t.Errorf("pull_request, not in the processor's events: %d %q", code, msg)
	}
	if code, msg := f.post("push", "push1", []byte(`{"repository":{"full_name":"o/r"}}`), secret); code != 202 || msg != "accepted\n" {
		t.Errorf("push, in the processor's events: %d %q", code, msg)
	}
	f.waitState("push1", StateDone)
	if r := f.get("pr1"); r.State != StateIgnored {
		t.Errorf("pr1: state %s, want ignored", r.State)
	}
	if p.n() != 1 {
		t.Errorf("processor called %d times, want once (for push)", p.n())
	}
}

func TestUnknownEventAndPingAreStoredIgnored(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, rec, Options{}, true)
	if code, msg := f.post("deployment_status", "u1", []byte(`{"brand_new_field":{"x":1}}`), secret); code != 202 || !strings.Contains(msg, "ignored") {
		t.Errorf("unknown event: %d %q", code, msg)
	}
	if code, msg := f.post("ping", "p1", []byte(`{"zen":"Design for failure.","hook_id":1}`), secret); code != 200 || !strings.Contains(msg, "pong") {
		t.Errorf("ping: %d %q", code, msg)
	}
	// An accepted delivery after them, processed, shows the pool ran.
	f.post("pull_request", "pr1", payloadFor("o/r", 1), secret)
	f.waitState("pr1", StateDone)
	for _, id := range []string{"u1", "p1"} {
		if r := f.get(id); r.State != StateIgnored || r.Attempt != 0 {
			t.Errorf("%s: state %s attempts %d, want ignored, 0", id, r.State, r.Attempt)
		}
	}
	if rec.n() != 1 {
		t.Errorf("processor called %d times, want once (ignored events are not processed)", rec.n())
	}
}

func TestRedeliveryIsNotProcessedTwice(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, rec, Options{}, true)
	body := payloadFor("o/r", 2)
	if code, _ := f.post("pull_request", "dup", body, secret); code != 202 {
		t.Fatalf("first: %d", code)
	}
	f.waitState("dup", StateDone)
	code, msg := f.post("pull_request", "dup", body, secret)
	if code != 200 || !strings.Contains(msg, "duplicate") {
		t.Errorf("redelivery: %d %q, want 200 duplicate", code, msg)
	}
	// Give a wrongly queued second copy the time to run.
	f.post("pull_request", "after", body, secret)
	f.waitState("after", StateDone)
	if rec.n() != 2 {
		t.Errorf("processor called %d times, want 2 (dup once + after)", rec.n())
	}
	if !strings.Contains(f.metrics(), "compatbot_webhook_duplicates_total 1") {
		t.Error("duplicate not counted in metrics")
	}
}

func TestTransientFailureRetriesWithBackoff(t *testing.T) {
	var times []time.Time
	rec := &recorder{fn: func(d *Delivery) error {
		times = append(times, time.Now())
		if d.Attempt < 3 {
			return fmt.Errorf("GitHub answered 502 (attempt %d)", d.Attempt)
		}
		return nil
	}}
	base := 40 * time.Millisecond
	f := newFixture(t, rec, Options{BackoffBase: base}, true)
	f.post("pull_request", "flaky", payloadFor("o/r", 3), secret)
	r := f.waitState("flaky", StateDone)
	if r.Attempt != 3 || r.LastError != "" {
		t.Errorf("attempts %d last error %q, want 3 and none", r.Attempt, r.LastError)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(times) != 3 {
		t.Fatalf("%d attempts", len(times))
	}
	// Backoff is jittered over the upper half of base*2^(n-1).
	for i, min := range []time.Duration{base / 2, base} {
		if gap := times[i+1].Sub(times[i]); gap < min {
			t.Errorf("retry %d after %v, want at least %v", i+1, gap, min)
		}
	}
	if m := f.metrics(); !strings.Contains(m, `compatbot_deliveries_processed_total{outcome="retry"} 2`) {
		t.Errorf("metrics:\n%s", m)
	}
}

func TestPermanentFailureDeadLetterThenRetry(t *testing.T) {
	fail := true
	var mu sync.Mutex
	rec := &recorder{fn: func(d *Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return Permanent(errors.New("set file sets/2025.06/linux-x86_64 is not UTF-8"))
		}
		return nil
	}}
	f := newFixture(t, rec, Options{}, true)
	f.post("pull_request", "bad", payloadFor("o/r", 4), secret)
	r := f.waitState("bad", StateDead)
	if r.Attempt != 1 || !strings.Contains(r.LastError, "not UTF-8") {
		t.Errorf("dead after %d attempts with %q, want 1 and the error", r.Attempt, r.LastError)
	}
	dead, err := f.in.List(context.Background(), StateDead, 0)
	if err != nil || len(dead) != 1 || dead[0].ID != "bad" {
		t.Fatalf("List(dead) = %v, %v", dead, err)
	}

	// A maintainer fixes the cause and retries from another process: a
	// second connection, as `compatbot deliveries retry` opens.
	mu.Lock()
	fail = false
	mu.Unlock()
	other, err := state.Open(f.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	st, err := OpenStore(context.Background(), other)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Retry(context.Background(), "bad"); err != nil {
		t.Fatal(err)
	}
	r = f.waitState("bad", StateDone)
	if r.Attempt != 1 || r.LastError != "" {
		t.Errorf("after retry: attempts %d error %q", r.Attempt, r.LastError)
	}
	if err := st.Retry(context.Background(), "bad"); err == nil || !strings.Contains(err.Error(), "is done") {
		t.Errorf("retry of a done delivery: %v", err)
	}
	if err := st.Retry(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("retry of an unknown delivery: %v", err)
	}
}

func TestAttemptsExhaustedIsDead(t *testing.T) {
	rec := &recorder{fn: func(d *Delivery) error { return errors.New("connection refused") }}
	f := newFixture(t, rec, Options{MaxAttempts: 3, BackoffBase: time.Millisecond}, true)
	f.post("issue_comment", "hopeless", []byte(`{"action":"created","issue":{"number":1},"repository":{"full_name":"o/r"}}`), secret)
	r := f.waitState("hopeless", StateDead)
	if r.Attempt != 3 || r.LastError != "connection refused" || rec.n() != 3 {
		t.Errorf("attempts %d (calls %d) error %q", r.Attempt, rec.n(), r.LastError)
	}
}

func TestPanicIsDeadNotACrash(t *testing.T) {
	rec := &recorder{fn: func(d *Delivery) error { panic("nil map") }}
	f := newFixture(t, rec, Options{}, true)
	f.post("pull_request", "boom", payloadFor("o/r", 1), secret)
	r := f.waitState("boom", StateDead)
	if !strings.Contains(r.LastError, "processor panic: nil map") {
		t.Errorf("last error %q", r.LastError)
	}
}

// Deliveries of one key never overlap and run in order of receipt, while
// different keys run in parallel.
func TestPerKeySerialisation(t *testing.T) {
	var mu sync.Mutex
	active := map[string]bool{}
	order := map[string][]string{}
	running, maxRunning := 0, 0
	var overlap []string
	rec := &recorder{fn: func(d *Delivery) error {
		mu.Lock()
		if active[d.Key] {
			overlap = append(overlap, d.ID)
		}
		active[d.Key] = true
		running++
		maxRunning = max(maxRunning, running)
		order[d.Key] = append(order[d.Key], d.ID)
		n := len(order[d.Key])
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		active[d.Key] = false
		running--
		mu.Unlock()
		if n%4 == 0 && d.Attempt == 1 {
			// A retry must hold back the key's later deliveries.
			return errors.New("transient")
		}
		return nil
	}}
	f := newFixture(t, rec, Options{Workers: 4, BackoffBase: 2 * time.Millisecond}, true)
	const perKey = 15
	keys := []string{"o/r#1", "o/r#2", "o/r#3", "o/other"}
	var wg sync.WaitGroup
	want := map[string][]string{}
	for ki, k := range keys {
		for i := 0; i < perKey; i++ {
			want[k] = append(want[k], fmt.Sprintf("%d-%02d", ki, i))
		}
		ids := want[k]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, id := range ids {
				repo, pr, _ := strings.Cut(k, "#")
				body := []byte(fmt.Sprintf(`{"action":"x","repository":{"full_name":%q}}`, repo))
				if pr != "" {
					body = payloadFor(repo, int(pr[0]-'0'))
				}
				if code, msg := f.post("pull_request", id, body, secret); code != 202 {
					t.Errorf("%s: %d %s", id, code, msg)
				}
			}
		}()
	}
	wg.Wait()
	for _, k := range keys {
		f.waitState(want[k][perKey-1], StateDone)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(overlap) > 0 {
		t.Errorf("deliveries overlapping another of their key: %v", overlap)
	}
	for _, k := range keys {
		// Every fourth call fails once and is retried at once: the retry
		// must come before the next delivery of that key.
		var got []string
		for i, id := range order[k] {
			if i > 0 && order[k][i-1] == id {
				continue
			}
			got = append(got, id)
		}
		if strings.Join(got, " ") != strings.Join(want[k], " ") {
			t.Errorf("key %s ran\n %v\nwant\n %v", k, order[k], want[k])
		}
	}
	if maxRunning < 2 {
		t.Errorf("at most %d deliveries ran at once: keys were not processed in parallel", maxRunning)
	}
}

func TestShutdownReleasesInFlight(t *testing.T) {
	started := make(chan struct{})
	blocking := ProcessorFunc(func(ctx context.Context, d *Delivery) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	f := newFixture(t, blocking, Options{ShutdownGrace: 50 * time.Millisecond}, true)
	f.post("pull_request", "long", payloadFor("o/r", 9), secret)
	<-started
	f.cancel()
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the shutdown grace")
	}
	r := f.get("long")
	if r.State != StateQueued || r.Attempt != 0 {
		t.Errorf("after shutdown: state %s attempts %d, want queued 0 (released)", r.State, r.Attempt)
	}
}

func TestRestartRequeuesInterrupted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.db")
	db, _ := state.Open(path)
	if _, err := OpenStore(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	// Rows as a kill -9 leaves them: one mid-run, one mid-run on its last
	// attempt, one queued behind the first.
	now := time.Now().UnixNano()
	for _, r := range []struct {
		id, key, state string
		attempts       int
	}{{"a", "o/r#1", "running", 1}, {"b", "o/r#2", "running", 3}, {"c", "o/r#1", "queued", 0}} {
		if _, err := db.Exec(`INSERT INTO intake_deliveries(id, dkey, event, key, state, attempts, received_at) VALUES (?, ?, 'pull_request', ?, ?, ?, ?)`,
			r.id, dedupKey(r.id), r.key, r.state, r.attempts, now); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db, _ = state.Open(path)
	defer db.Close()
	var mu sync.Mutex
	var order []string
	p := ProcessorFunc(func(ctx context.Context, d *Delivery) error {
		mu.Lock()
		order = append(order, fmt.Sprintf("%s@%d", d.ID, d.Attempt))
		mu.Unlock()
		return nil
	})
	in, err := New(context.Background(), Options{DB: db, Processor: p, MaxAttempts: 3, Metrics: metrics.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { in.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, _ := in.Get(ctx, "c")
		if r.State == StateDone || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	in.Close()
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(order, " ") != "a@2 c@1" {
		t.Errorf("processed %v, want a (second attempt) then c", order)
	}
	b, _ := in.Get(context.Background(), "b")
	if b.State != StateDead || !strings.Contains(b.LastError, "interrupted") {
		t.Errorf("b: %s %q, want dead: interrupted on its last attempt", b.State, b.LastError)
	}
}

func TestReplay(t *testing.T) {
	rec := &recorder{fn: func(d *Delivery) error {
		if d.Action == "bad" {
			return Permanent(errors.New("no such PR"))
		}
		return nil
	}}
	f := newFixture(t, rec, Options{}, false)
	ctx := context.Background()
	r, err := f.in.Replay(ctx, &Delivery{ID: "r1", Event: "pull_request", Action: "opened", Key: "o/r#1", Payload: payloadFor("o/r", 1)})
	if err != nil || r.State != StateDone || r.Attempt != 1 {
		t.Fatalf("Replay = %+v, %v", r, err)
	}
	r, err = f.in.Replay(ctx, &Delivery{ID: "r2", Event: "pull_request", Action: "bad", Key: "o/r#1", Payload: []byte(`{}`)})
	if err != nil || r.State != StateDead || r.LastError != "no such PR" {
		t.Fatalf("Replay = %+v, %v", r, err)
	}
	r, err = f.in.Replay(ctx, &Delivery{ID: "r3", Event: "star", Payload: []byte(`{}`)})
	if err != nil || r.State != StateIgnored {
		t.Fatalf("Replay of an unhandled event = %+v, %v", r, err)
	}
	if _, err := f.in.Replay(ctx, &Delivery{ID: "r1", Event: "pull_request", Payload: []byte(`{}`)}); err == nil {
		t.Fatal("replaying a stored delivery id succeeded")
	}
	if rec.n() != 2 {
		t.Errorf("processor called %d times, want 2", rec.n())
	}
}

func TestMetricsExposition(t *testing.T) {
	f := newFixture(t, &recorder{}, Options{}, true)
	f.post("pull_request", "m1", payloadFor("o/r", 1), secret)
	f.post("pull_request", "m2", payloadFor("o/r", 1), nil)
	f.waitState("m1", StateDone)
	// The outcome is counted just after its commit, which a poller of the
	// database can see first.
	var m string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m = f.metrics(); strings.Contains(m, `outcome="done"} 1`) && strings.Contains(m, "queue_depth 0") {
			break
		}
	}
	for _, want := range []string{
		`compatbot_webhook_received_total{event="pull_request",state="queued"} 1`,
		`compatbot_webhook_rejected_total{reason="signature"} 1`,
		`compatbot_deliveries_processed_total{outcome="done"} 1`,
		`compatbot_webhook_ack_seconds_count 1`,
		"# TYPE compatbot_intake_queue_depth gauge\ncompatbot_intake_queue_depth 0",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

func TestDedupKey(t *testing.T) {
	tests := []struct{ id, want string }{
		{"72d3162e-cc78-11e3-81ab-4c9367dc0958", "1e3cc7872d3162e81ab4c9367dc0958"},
		{"72D3162E-cc78-11e3-81ab-4c9367dc0958", "=72D3162E-cc78-11e3-81ab-4c9367dc0958"}, // GitHub sends lower case
		{"72d3162e-cc78-41e3-81ab-4c9367dc0958", "=72d3162e-cc78-41e3-81ab-4c9367dc0958"}, // v4: no time order
		{"replay-0011", "=replay-0011"},
	}
	for _, tc := range tests {
		if got := dedupKey(tc.id); got != tc.want {
			t.Errorf("dedupKey(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
	// Ids made a tick apart sort in time order once reordered, even when
	// the low field wraps.
	a, b := v1UUID(0x1ef_0000_ffffffff, 1), v1UUID(0x1ef_0001_00000000, 1)
	if !(a > b) || !(dedupKey(a) < dedupKey(b)) {
		t.Errorf("%s then %s: keys %s, %s not in time order", a, b, dedupKey(a), dedupKey(b))
	}
}

func TestPruneKeepsRecentAndDead(t *testing.T) {
	now := time.Now()
	clock := now
	var mu sync.Mutex
	fail := map[string]bool{"old-dead": true}
	p := ProcessorFunc(func(ctx context.Context, d *Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		if fail[d.ID] {
			return Permanent(errors.New("broken"))
		}
		return nil
	})
	f := newFixture(t, p, Options{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }}, true)
	setClock := func(c time.Time) { mu.Lock(); clock = c; mu.Unlock() }
	setClock(now.Add(-40 * 24 * time.Hour))
	f.post("pull_request", "old-done", payloadFor("o/r", 1), secret)
	f.post("star", "old-ignored", []byte(`{}`), secret)
	f.post("pull_request", "old-dead", payloadFor("o/r", 2), secret)
	f.waitState("old-done", StateDone)
	f.waitState("old-dead", StateDead)
	setClock(now)
	f.post("pull_request", "new-done", payloadFor("o/r", 1), secret)
	f.waitState("new-done", StateDone)

	n, err := f.in.Prune(context.Background(), now.Add(-30*24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want the 2 old done/ignored deliveries", n, err)
	}
	for id, want := range map[string]bool{"old-done": false, "old-ignored": false, "old-dead": true, "new-done": true} {
		_, err := f.in.Get(context.Background(), id)
		if (err == nil) != want {
			t.Errorf("%s kept = %v, want %v", id, err == nil, want)
		}
	}
	var orphans int
	f.db.QueryRow(`SELECT count(*) FROM intake_payloads WHERE seq NOT IN (SELECT seq FROM intake_deliveries)`).Scan(&orphans)
	if orphans != 0 {
		t.Errorf("%d payloads left without their delivery", orphans)
	}
}

func TestProcessTimeoutRetries(t *testing.T) {
	p := ProcessorFunc(func(ctx context.Context, d *Delivery) error {
		if d.Attempt == 1 {
			<-ctx.Done() // a hung GitHub call that honours its context
			return ctx.Err()
		}
		return nil
	})
	f := newFixture(t, p, Options{ProcessTimeout: 50 * time.Millisecond, BackoffBase: time.Millisecond}, true)
	f.post("pull_request", "slow", payloadFor("o/r", 1), secret)
	r := f.waitState("slow", StateDone)
	if r.Attempt != 2 {
		t.Errorf("attempts %d, want 2 (timed out, then done)", r.Attempt)
	}
}

package intake

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/compatbot/compatbot/bot/metrics"
	"github.com/compatbot/compatbot/bot/webhook"
	"github.com/compatbot/compatbot/workflow/state"
)

// DefaultEvents are the events compatbot acts on; others are stored as
// ignored.
var DefaultEvents = []string{"pull_request", "issue_comment", "check_run", "check_suite", "installation", "installation_repositories"}

// Options configure an Intake. Zero values take the defaults noted.
type Options struct {
	DB        *state.DB
	Processor Processor
	// Secrets verify X-Hub-Signature-256; several allow rotation.
	Secrets      [][]byte
	MaxBodyBytes int64 // default webhook.DefaultMaxBody (25 MiB)
	// UnverifiedBytes and UnverifiedRequests bound what requests cost
	// before their signature is checked (webhook.NewLimiter; defaults
	// 32 MiB and 256).
	UnverifiedBytes    int64
	UnverifiedRequests int
	// MinFreeBytes is the free space the database's filesystem must keep
	// for a delivery to be accepted (default DefaultMinFreeBytes; negative:
	// not checked). Below it deliveries get 503, which GitHub shows as
	// failed and a maintainer can redeliver: nothing is acknowledged that
	// might not be stored, and the disk is not filled to the last byte
	// that builds and checkpoints need.
	MinFreeBytes int64
	// UnverifiedReadTimeout bounds how long a request may take to send its
	// body (default 10s, GitHub's own delivery timeout): a sender without
	// the secret sending slowly would otherwise hold its share of the
	// unverified budget until the server's read timeout.
	UnverifiedReadTimeout time.Duration
	Workers               int // default 4
	MaxAttempts           int // default 8
	BackoffBase           time.Duration
	BackoffMax            time.Duration
	// Events the processor handles (default: what the processor's
	// Events() []string method returns when it has one, else
	// DefaultEvents); every other verified delivery is stored as ignored
	// and acknowledged.
	Events []string
	// ProcessTimeout bounds one processing attempt (default 30m; negative:
	// none), so a hung call cannot hold its key and a worker for ever; a
	// timed-out attempt is retried like any transient failure.
	ProcessTimeout time.Duration
	// ShutdownGrace is how long Run lets running processors finish after
	// its context ends before cancelling theirs (default 10s).
	ShutdownGrace time.Duration
	// PollInterval is how often a running intake looks for deliveries
	// requeued by another process (deliveries retry); default 1s.
	PollInterval time.Duration
	MaxBatch     int // deliveries per commit, default 256
	// CommitDelay is how long the writer waits for more work before a
	// commit when submitters are concurrent (default 100µs; negative: no
	// wait).
	CommitDelay time.Duration
	// Retention is how long done and ignored deliveries are kept (default
	// 30 days; negative: forever). Dead ones are kept until retried. It
	// must stay above GitHub's redelivery window (3 days), since a pruned
	// delivery id is no longer recognised as a duplicate.
	Retention time.Duration
	// PruneInterval is how often Run prunes (default 1h).
	PruneInterval time.Duration
	// CheckpointInterval is how often the WAL is copied into the database
	// file (default 1s).
	CheckpointInterval time.Duration
	Metrics            *metrics.Registry // default metrics.Default
	Logger             *slog.Logger      // default slog.Default()
	Now                func() time.Time  // for tests; default time.Now
}

// DefaultMinFreeBytes is the default Options.MinFreeBytes.
const DefaultMinFreeBytes = 256 << 20

// Intake receives, stores and processes webhook deliveries.
type Intake struct {
	*Store
	opts   Options
	lim    *webhook.Limiter
	disk   diskCheck
	events map[string]bool
	w      *writer
	stmts  *stmtCache // the writer's INSERT statements
	s      *sched
	log    *slog.Logger
	debug  bool

	received  *metrics.CounterVec
	dups      *metrics.Counter
	pruned    *metrics.Counter
	rejected  *metrics.CounterVec
	processed *metrics.CounterVec
	ackHist   *metrics.Histogram
	batchHist *metrics.Histogram

	stopCkpt  chan struct{}
	ckptDone  chan struct{}
	closeOnce sync.Once

	runMu   sync.Mutex
	running bool
	gen     int64 // generation counter seen by the last rescan
}

// New opens the intake's tables in opts.DB and starts its database writer.
// It does not process anything until Run; ServeHTTP may be used at once.
func New(ctx context.Context, opts Options) (*Intake, error) {
	if opts.DB == nil {
		return nil, errors.New("intake: no database")
	}
	if opts.Processor == nil {
		return nil, errors.New("intake: no processor")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = webhook.DefaultMaxBody
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.UnverifiedReadTimeout <= 0 {
		opts.UnverifiedReadTimeout = 10 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = 2 * time.Second
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 10 * time.Minute
	}
	if opts.Events == nil {
		if el, ok := opts.Processor.(interface{ Events() []string }); ok {
			opts.Events = el.Events()
		}
	}
	if opts.Events == nil {
		opts.Events = DefaultEvents
	}
	if opts.ProcessTimeout == 0 {
		opts.ProcessTimeout = 30 * time.Minute
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 10 * time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.Retention == 0 {
		opts.Retention = 30 * 24 * time.Hour
	}
	if opts.PruneInterval <= 0 {
		opts.PruneInterval = time.Hour
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = time.Second
	}
	if opts.CommitDelay == 0 {
		opts.CommitDelay = 100 * time.Microsecond
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.Default
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st, err := OpenStore(ctx, opts.DB)
	if err != nil {
		return nil, err
	}
	in := &Intake{Store: st, opts: opts, events: map[string]bool{}, s: newSched(), log: opts.Logger,
		lim: webhook.NewLimiter(max(opts.UnverifiedBytes, opts.MaxBodyBytes), opts.UnverifiedRequests, 0)}
	in.disk.dir, in.disk.min = opts.DB.Dir(), opts.MinFreeBytes
	if in.disk.min == 0 {
		in.disk.min = DefaultMinFreeBytes
	}
	// Checked once: boxing the arguments of a disabled Debug call still
	// allocates on every request.
	in.debug = opts.Logger.Enabled(ctx, slog.LevelDebug)
	for _, e := range opts.Events {
		in.events[e] = true
	}
	reg := opts.Metrics
	in.received = reg.Counter("compatbot_webhook_received_total", "Verified webhook deliveries stored, by event and whether they are processed or ignored.", "event", "state")
	in.pruned = reg.Counter("compatbot_intake_pruned_total", "Done and ignored deliveries deleted after the retention period.").With()
	in.dups = reg.Counter("compatbot_webhook_duplicates_total", "Redeliveries of a delivery id already stored: acknowledged, not processed again.").With()
	in.rejected = reg.Counter("compatbot_webhook_rejected_total", "Webhook requests refused, by reason (signature, too_large, malformed, missing_header, content_type, method, read, busy, disk, storage).", "reason")
	in.processed = reg.Counter("compatbot_deliveries_processed_total", "Processing attempts by outcome (done, retry, dead, released).", "outcome")
	in.ackHist = reg.Histogram("compatbot_webhook_ack_seconds", "Time from request to acknowledgement, the delivery durable on disk.",
		[]float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, 1})
	in.batchHist = reg.Histogram("compatbot_intake_commit_batch_size", "Writes per database transaction (group commit).",
		[]float64{1, 2, 4, 8, 16, 32, 64, 128, 256})
	reg.GaugeFunc("compatbot_intake_queue_depth", "Deliveries waiting to be processed or running.", func() float64 { return float64(in.s.depth()) })

	w, err := newWriter(ctx, opts.DB.DB, opts.MaxBatch, opts.CommitDelay, func(n int) { in.batchHist.Observe(float64(n)) })
	if err != nil {
		return nil, err
	}
	in.w = w
	in.stmts = newStmtCache(w.conn)
	w.insertMany = in.stmts.insertMany
	// No checkpoint inside a commit: it would copy the WAL into the
	// database file and fsync it while every waiting webhook holds its
	// acknowledgement. The checkpointer goroutine copies the bulk beside
	// the writer and has the writer finish between two batches.
	if _, err := w.conn.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`); err != nil {
		w.close()
		return nil, err
	}
	in.stopCkpt = make(chan struct{})
	in.ckptDone = make(chan struct{})
	go in.checkpointer()
	return in, nil
}

// Close stops the database writer; call it after Run has returned. It does
// not close the database.
func (in *Intake) Close() error {
	var err error
	in.closeOnce.Do(func() {
		in.w.close(func() { err = in.stmts.close() })
		close(in.stopCkpt)
		<-in.ckptDone
		// Leave a short WAL behind for the next start.
		in.opts.DB.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	})
	return err
}

// checkpointer copies the WAL into the database file off the
// acknowledgement path. PASSIVE never blocks the writer; pages rewritten by
// many commits between two checkpoints are copied once.
func (in *Intake) checkpointer() {
	defer close(in.ckptDone)
	t := time.NewTicker(in.opts.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-in.stopCkpt:
			return
		case <-t.C:
			if err := in.checkpoint(); err != nil {
				in.log.Warn("intake: WAL checkpoint", "error", err)
			}
		}
	}
}

// checkpoint copies the WAL into the database file: the bulk from a
// connection of its own, concurrently with the writer, then the rest from
// the writer's (see writer.checkpoint). The first step's report that it
// copied every frame says nothing about frames committed while it ran, so
// the second step runs whenever the WAL is not empty.
func (in *Intake) checkpoint() error {
	var busy, logFrames, copied int
	if err := in.opts.DB.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &copied); err != nil {
		return err
	}
	if logFrames <= 0 {
		return nil
	}
	if err := in.w.checkpoint(); err != nil && !errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}

type insertResult struct {
	seq       int64
	duplicate bool
}

// insert stores d durably in state st and, once committed, indexes it for
// processing when queued.
func (in *Intake) insert(d *Delivery, st string) (insertResult, error) {
	attempts, started := 0, int64(0)
	if st == StateRunning {
		attempts, started = 1, d.ReceivedAt.UnixNano()
	}
	ins := &insertOp{d: d, dkey: dedupKey(d.ID), st: st, attempts: attempts, started: started}
	o := &op{ins: ins}
	if st == StateQueued {
		o.after = func() {
			if !ins.res.duplicate {
				in.s.add(d.Key, ins.res.seq, time.Time{})
			}
		}
	}
	err := in.w.do(o)
	return ins.res, err
}

// ServeHTTP is the webhook endpoint: verify, store durably, acknowledge.
// Processing happens later, from the database.
func (in *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// Best effort: a ResponseWriter that cannot set deadlines (a test
	// recorder) is read without one.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(start.Add(in.opts.UnverifiedReadTimeout))
	req, werr := webhook.ReadLimited(r, in.opts.Secrets, in.opts.MaxBodyBytes, in.lim)
	if werr != nil {
		// The deadline stays, so net/http's draining of an unread body
		// ends with it, and the connection is not kept: a refused
		// sender gets nothing more from this one.
		w.Header().Set("Connection", "close")
		in.rejected.With(werr.Reason).Inc()
		in.log.Warn("webhook refused", "status", werr.Status, "reason", werr.Reason, "error", werr.Message,
			"delivery", r.Header.Get("X-GitHub-Delivery"), "remote", r.RemoteAddr)
		http.Error(w, werr.Message, werr.Status)
		return
	}
	// Read and verified: the deadline must not outlive this request on a
	// kept-alive connection (net/http sets none of its own when the
	// server has no timeouts).
	rc.SetReadDeadline(time.Time{})
	if err := in.disk.ok(); err != nil {
		req.Release()
		in.rejected.With("disk").Inc()
		in.log.Error("webhook not stored: disk nearly full", "delivery", req.ID, "event", req.Event, "error", err)
		http.Error(w, "delivery not stored: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	d := &Delivery{ID: req.ID, Event: req.Event, Action: req.Info.Action, Payload: req.Payload,
		Key: req.Info.Key(), Installation: req.Info.Installation, ReceivedAt: in.opts.Now()}
	st := StateQueued
	if !in.events[d.Event] {
		st = StateIgnored
	}
	res, err := in.insert(d, st)
	// Once committed nothing holds on to the payload: processing reads it
	// back from the database.
	req.Release()
	if err != nil {
		// Not acknowledged, so GitHub shows the failure and a maintainer
		// can redeliver once the database is healthy.
		in.rejected.With("storage").Inc()
		in.log.Error("webhook not stored", "delivery", d.ID, "event", d.Event, "error", err)
		http.Error(w, "delivery not stored: database unavailable", http.StatusServiceUnavailable)
		return
	}
	in.ackHist.Observe(time.Since(start).Seconds())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case res.duplicate:
		in.dups.Inc()
		in.log.Info("webhook duplicate", "delivery", d.ID, "event", d.Event)
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "duplicate delivery: already stored")
	case d.Event == "ping":
		in.received.With(d.Event, st).Inc()
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "pong")
	case st == StateIgnored:
		in.received.With(d.Event, st).Inc()
		if in.debug {
			in.log.Debug("webhook ignored", "delivery", d.ID, "event", d.Event)
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "ignored: compatbot does not handle this event\n")
	default:
		in.received.With(d.Event, st).Inc()
		if in.debug {
			in.log.Debug("webhook accepted", "delivery", d.ID, "event", d.Event, "action", d.Action, "key", d.Key)
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "accepted\n")
	}
}

// Replay stores d (as if it had just been received) and processes it once,
// synchronously, with the intake's processor, outside the worker pool. An
// event the intake does not handle is stored as ignored and not processed.
// A failure leaves the delivery in retry or dead like any other, so a
// running server picks it up.
func (in *Intake) Replay(ctx context.Context, d *Delivery) (*Record, error) {
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = in.opts.Now()
	}
	st := StateRunning
	if !in.events[d.Event] {
		st = StateIgnored
	}
	res, err := in.insert(d, st)
	if err != nil {
		return nil, err
	}
	if res.duplicate {
		return nil, fmt.Errorf("delivery %s is already stored; use another --delivery id or `compatbot deliveries retry`", d.ID)
	}
	if st == StateRunning {
		d.Attempt = 1
		in.process(ctx, ctx, d, res.seq, false)
	}
	return in.Get(ctx, d.ID)
}

func (in *Intake) backoff(attempt int) time.Duration {
	d := in.opts.BackoffBase
	for i := 1; i < attempt && d < in.opts.BackoffMax; i++ {
		d *= 2
	}
	if d > in.opts.BackoffMax {
		d = in.opts.BackoffMax
	}
	// Full jitter over the upper half: retries of deliveries that failed
	// together (GitHub down) spread out instead of stampeding back.
	return d/2 + rand.N(d/2+1)
}

// Run processes deliveries from the database until ctx ends, then lets
// running processors finish for up to ShutdownGrace before cancelling them;
// a delivery whose processor returns because of that is released back to
// the queue. Deliveries left running by a crash are requeued first.
func (in *Intake) Run(ctx context.Context) error {
	in.runMu.Lock()
	if in.running {
		in.runMu.Unlock()
		return errors.New("intake: Run called twice")
	}
	in.running = true
	in.runMu.Unlock()

	if err := in.recover(); err != nil {
		return err
	}
	if err := in.rescan(true); err != nil {
		return err
	}

	procCtx, cancelProc := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelProc()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(in.opts.PollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := in.rescan(false); err != nil && !errors.Is(err, ErrClosed) {
					in.log.Error("intake: looking for requeued deliveries", "error", err)
				}
			}
		}
	}()

	if in.opts.Retention > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(in.opts.PruneInterval)
			defer t.Stop()
			for {
				if n, err := in.Prune(ctx, in.opts.Now().Add(-in.opts.Retention)); err != nil {
					if !errors.Is(err, ErrClosed) && ctx.Err() == nil {
						in.log.Error("intake: pruning old deliveries", "error", err)
					}
				} else if n > 0 {
					in.log.Info("intake: pruned old deliveries", "count", n, "retention", in.opts.Retention)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}

	var workers sync.WaitGroup
	sem := make(chan struct{}, in.opts.Workers)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
dispatch:
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break dispatch
		}
		for {
			key, seq, wait := in.s.next(in.opts.Now())
			if seq != 0 {
				workers.Add(1)
				go func() {
					defer workers.Done()
					defer func() { <-sem }()
					in.runOne(ctx, procCtx, key, seq)
				}()
				break
			}
			var tc <-chan time.Time
			if wait >= 0 {
				timer.Reset(wait)
				tc = timer.C
			}
			select {
			case <-in.s.wake:
			case <-tc:
			case <-ctx.Done():
				<-sem
				break dispatch
			}
			timer.Stop()
		}
	}
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(in.opts.ShutdownGrace):
		in.log.Warn("intake: cancelling processors still running after the shutdown grace period")
		cancelProc()
		<-done
	}
	wg.Wait()
	return nil
}

// Prune deletes done and ignored deliveries received before cutoff, with
// their payloads, in batches so webhook inserts interleave; it returns how
// many it deleted.
func (in *Intake) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	const batch = 1000
	var total int64
	for ctx.Err() == nil {
		var n int64
		o := &op{run: func(ctx context.Context, c *sql.Conn) error {
			sel := `SELECT seq FROM intake_deliveries WHERE state IN ('done', 'ignored') AND received_at < ? ORDER BY seq LIMIT ` + fmt.Sprint(batch)
			if _, err := c.ExecContext(ctx, `DELETE FROM intake_payloads WHERE seq IN (`+sel+`)`, cutoff.UnixNano()); err != nil {
				return err
			}
			r, err := c.ExecContext(ctx, `DELETE FROM intake_deliveries WHERE seq IN (`+sel+`)`, cutoff.UnixNano())
			if err != nil {
				return err
			}
			n, err = r.RowsAffected()
			return err
		}}
		if err := in.w.do(o); err != nil {
			return total, err
		}
		total += n
		in.pruned.Add(float64(n))
		if n < batch {
			break
		}
	}
	return total, ctx.Err()
}

// recover requeues deliveries a crash left running; one that has used its
// attempts is dead instead, so a delivery that crashes the process cannot
// crash it forever.
func (in *Intake) recover() error {
	var n int64
	o := &op{run: func(ctx context.Context, c *sql.Conn) error {
		r, err := c.ExecContext(ctx, `UPDATE intake_deliveries SET
			state = CASE WHEN attempts >= ? THEN 'dead' ELSE 'queued' END,
			last_error = 'interrupted: the process stopped while it was running' WHERE state = 'running'`, in.opts.MaxAttempts)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	}}
	if err := in.w.do(o); err != nil {
		return fmt.Errorf("intake: requeue interrupted deliveries: %w", err)
	}
	if n > 0 {
		in.log.Warn("intake: requeued deliveries interrupted by a restart", "count", n)
	}
	return nil
}

// rescan indexes pending deliveries the scheduler does not know, when
// another process has changed the queue (or always, on start). It runs as a
// writer op so it sees exactly the commits the index has seen.
func (in *Intake) rescan(force bool) error {
	type row struct {
		key  string
		seq  int64
		next int64
	}
	var rows []row
	var gen int64
	var last int64 = -1
	o := &op{run: func(ctx context.Context, c *sql.Conn) error {
		rows = rows[:0]
		if err := c.QueryRowContext(ctx, `SELECT value FROM intake_meta WHERE name = 'generation'`).Scan(&gen); err != nil {
			return err
		}
		if !force && gen == in.seenGen() {
			return nil
		}
		rs, err := c.QueryContext(ctx, `SELECT key, seq, next_attempt_at FROM intake_deliveries WHERE state IN ('queued', 'retry') ORDER BY seq`)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var r row
			if err := rs.Scan(&r.key, &r.seq, &r.next); err != nil {
				return err
			}
			rows = append(rows, r)
		}
		last = gen
		return rs.Err()
	}}
	o.after = func() {
		if last < 0 {
			return
		}
		in.setSeenGen(last)
		for _, r := range rows {
			in.s.add(r.key, r.seq, fromNanos(r.next))
		}
	}
	return in.w.do(o)
}

func (in *Intake) seenGen() int64 {
	in.runMu.Lock()
	defer in.runMu.Unlock()
	return in.gen
}

func (in *Intake) setSeenGen(g int64) {
	in.runMu.Lock()
	in.gen = g
	in.runMu.Unlock()
}

// runOne claims seq, processes it and records the outcome.
func (in *Intake) runOne(runCtx, procCtx context.Context, key string, seq int64) {
	var d *Delivery
	o := &op{run: func(ctx context.Context, c *sql.Conn) error {
		d = nil
		now := in.opts.Now().UnixNano()
		r, err := c.ExecContext(ctx, `UPDATE intake_deliveries SET state = 'running', attempts = attempts + 1, started_at = ?
			WHERE seq = ? AND state IN ('queued', 'retry')`, now, seq)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil || n == 0 {
			return err
		}
		var x Delivery
		var recv int64
		err = c.QueryRowContext(ctx, `SELECT id, event, action, key, installation, coalesce(p.payload, x''), attempts, received_at
			FROM intake_deliveries d LEFT JOIN intake_payloads p USING (seq) WHERE d.seq = ?`, seq).
			Scan(&x.ID, &x.Event, &x.Action, &x.Key, &x.Installation, &x.Payload, &x.Attempt, &recv)
		x.ReceivedAt = fromNanos(recv)
		d = &x
		return err
	}}
	if err := in.w.do(o); err != nil {
		in.log.Error("intake: claiming a delivery", "seq", seq, "error", err)
		// Leave it pending; try again after a pause rather than spin.
		in.s.finish(key, seq, false, in.opts.Now().Add(in.opts.BackoffBase))
		return
	}
	if d == nil {
		// Its state changed under us (another process finished it).
		in.s.finish(key, seq, true, time.Time{})
		return
	}
	in.process(runCtx, procCtx, d, seq, true)
}

// process runs the processor on a claimed delivery and records the outcome.
func (in *Intake) process(runCtx, procCtx context.Context, d *Delivery, seq int64, indexed bool) {
	start := time.Now()
	err := in.call(procCtx, d)
	elapsed := time.Since(start)

	outcome, st, next := "done", StateDone, int64(0)
	var msg string
	switch {
	case err == nil:
	case runCtx.Err() != nil && (procCtx.Err() != nil || errors.Is(err, context.Canceled)):
		outcome, st = "released", StateQueued
	case IsPermanent(err):
		outcome, st = "dead", StateDead
	case d.Attempt >= in.opts.MaxAttempts:
		outcome, st = "dead", StateDead
	default:
		outcome, st = "retry", StateRetry
		next = in.opts.Now().Add(in.backoff(d.Attempt)).UnixNano()
	}
	if err != nil {
		msg = err.Error()
	}
	o := &op{run: func(ctx context.Context, c *sql.Conn) error {
		undo := 0
		if st == StateQueued {
			undo = 1 // a release is not an attempt
		}
		_, err := c.ExecContext(ctx, `UPDATE intake_deliveries SET state = ?, last_error = ?, next_attempt_at = ?,
			finished_at = ?, run_ns = run_ns + ?, attempts = attempts - ? WHERE seq = ?`,
			st, msg, next, in.opts.Now().UnixNano(), int64(elapsed), undo, seq)
		return err
	}}
	if indexed {
		o.after = func() {
			in.s.finish(d.Key, seq, st != StateRetry && st != StateQueued, fromNanos(next))
		}
	}
	if werr := in.w.do(o); werr != nil {
		// The row still says running: a restart requeues it. Keep the key
		// blocked meanwhile so order holds.
		in.log.Error("intake: recording an outcome", "delivery", d.ID, "outcome", outcome, "error", werr)
		return
	}
	in.processed.With(outcome).Inc()
	lvl := slog.LevelInfo
	if st == StateDead {
		lvl = slog.LevelError
	} else if st == StateRetry {
		lvl = slog.LevelWarn
	}
	in.log.Log(runCtx, lvl, "delivery processed", "delivery", d.ID, "event", d.Event, "action", d.Action, "key", d.Key,
		"attempt", d.Attempt, "outcome", outcome, "duration", elapsed, "error", msg)
}

// call runs the processor, turning a panic into a permanent error so one
// bad delivery cannot take the server down.
func (in *Intake) call(ctx context.Context, d *Delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Permanent(fmt.Errorf("processor panic: %v\n%s", p, debug.Stack()))
		}
	}()
	if in.opts.ProcessTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, in.opts.ProcessTimeout)
		defer cancel()
		defer func() {
			if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				err = fmt.Errorf("processing took longer than %v: %w", in.opts.ProcessTimeout, err)
			}
		}()
	}
	return in.opts.Processor.Process(ctx, d)
}

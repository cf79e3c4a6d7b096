package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/compatbot/compatbot/bot/config"
	"github.com/compatbot/compatbot/bot/intake"
	"github.com/compatbot/compatbot/bot/metrics"
	"github.com/compatbot/compatbot/internal/buildinfo"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/state"
)

func init() {
	register(command{Name: "serve", Summary: "run the GitHub App: webhook intake, processing, /healthz, /metrics", Run: serveCmd})
}

const serveUsage = `Usage:
  compatbot serve --config FILE

Runs the GitHub App server: POST /webhook (GitHub deliveries), /healthz,
/readyz, /metrics. Stops cleanly on SIGTERM or SIGINT: no new requests,
running deliveries finish or go back to the queue.
`

// processorFactory builds what processes stored deliveries. mux is the
// server's router, for processors that serve pages (logs, reports). The
// binary passes wireProcessor (wire.go); tests pass their own.
type processorFactory func(cfg *config.Config, db *state.DB, mux *http.ServeMux) (intake.Processor, error)

func serveCmd(args []string, stdout, stderr io.Writer) int {
	return serveMain(wireProcessor, args, stdout, stderr)
}

func serveMain(newProcessor processorFactory, args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	fl.SetOutput(stderr)
	cfgPath := fl.String("config", "", "the configuration file (YAML)")
	fl.Usage = func() { fmt.Fprint(stderr, serveUsage); fl.PrintDefaults() }
	if err := fl.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *cfgPath == "" || fl.NArg() > 0 {
		fl.Usage()
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot serve: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return serve(ctx, cfg, newProcessor, stderr, nil)
}

// newLogger builds the server's logger from the log section.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(cfg.Log.Level))
	o := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// openDB opens the embedded database under data_dir, creating both.
func openDB(cfg *config.Config) (*state.DB, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	return state.Open(filepath.Join(cfg.DataDir, dbFile))
}

// dbFile is the one database in data_dir: deliveries, check runs,
// commands, builds, the deploy journal and history.
const dbFile = "compatbot.db"

// serve runs the server until ctx ends; ready, if set, is told the address
// once it accepts connections.
func serve(ctx context.Context, cfg *config.Config, newProcessor processorFactory, stderr io.Writer, ready func(addr string)) int {
	// Cancelled on every way out, so processing stops also when the HTTP
	// server fails.
	ctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		fmt.Fprintf(stderr, "compatbot serve: data_dir: %v\n", err)
		return 1
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot serve: %v\n", err)
		return 1
	}
	defer unlock()
	log := newLogger(cfg, stderr)
	slog.SetDefault(log)
	// Every sets check of this server reads pull requests' set files
	// within these.
	sets.SetLimits(cfg.SetsLimits.Limits())
	db, err := openDB(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot serve: %v\n", err)
		return 1
	}
	defer db.Close()

	mux := http.NewServeMux()
	proc, err := newProcessor(cfg, db, mux)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot serve: %v\n", err)
		return 1
	}
	// The processor may own work that outlives a delivery (builds running
	// in the background): it stops them, after the intake and before the
	// database closes, so they are left for Recover on the next start.
	if c, ok := proc.(io.Closer); ok {
		defer func() {
			if err := c.Close(); err != nil {
				log.Warn("closing the processor", "error", err)
			}
		}()
	}
	in, err := intake.New(ctx, intakeOptions(cfg, db, proc, metrics.Default, log))
	if err != nil {
		fmt.Fprintf(stderr, "compatbot serve: %v\n", err)
		return 1
	}

	var serving atomic.Bool
	mux.Handle("/webhook", in)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !serving.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		// The version lets an operator (or a probe) see which build
		// answers without shelling into the host.
		fmt.Fprintf(w, "ok %s\n", buildinfo.Get().Short())
	})
	mux.Handle("GET /readyz", readyHandler(db, cfg.Intake.MinFreeBytes))
	mux.Handle("GET /metrics", metrics.Default.Handler())

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		in.Close()
		fmt.Fprintf(stderr, "compatbot serve: listen: %v\n", err)
		return 1
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// A 25 MiB delivery over a slow link still fits; GitHub itself
		// gives up after 10 s.
		ReadTimeout:    60 * time.Second,
		WriteTimeout:   60 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		if err := in.Run(ctx); err != nil {
			log.Error("processing stopped", "error", err)
		}
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	serving.Store(true)
	// Once /webhook answers: the redeliveries it asks for arrive there.
	redelivering := startRedelivery(ctx, cfg, db, log)
	addr := ln.Addr().String()
	log.Info("compatbot serving", "version", buildinfo.Get().Short(), "addr", addr, "public_url", cfg.PublicURL, "data_dir", cfg.DataDir)
	fmt.Fprintf(stderr, "compatbot serve: listening on http://%s\n", addr)
	if ready != nil {
		ready(addr)
	}

	code := 0
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		log.Error("http server stopped", "error", err)
		code = 1
	}
	serving.Store(false)
	stopAll()
	log.Info("shutting down: no new requests; running deliveries finish or go back to the queue")
	shCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "error", err)
	}
	<-runDone
	redelivering()
	if err := in.Close(); err != nil {
		log.Warn("closing intake", "error", err)
	}
	log.Info("stopped")
	return code
}

// intakeOptions is the intake of cfg (serve's, or replay's: the same
// attempts, backoff and timeout) on db with proc.
func intakeOptions(cfg *config.Config, db *state.DB, proc intake.Processor, reg *metrics.Registry, log *slog.Logger) intake.Options {
	return intake.Options{
		DB: db, Processor: proc, Secrets: cfg.GitHub.WebhookSecret.Bytes(),
		MaxBodyBytes: cfg.Intake.MaxBodyBytes, UnverifiedBytes: cfg.Intake.UnverifiedBytes, UnverifiedRequests: cfg.Intake.UnverifiedRequests,
		MinFreeBytes: cfg.Intake.MinFreeBytes,
		Workers:      cfg.Intake.Workers, MaxAttempts: cfg.Intake.MaxAttempts,
		BackoffBase: cfg.Intake.BackoffBase.D(), BackoffMax: cfg.Intake.BackoffMax.D(), Retention: cfg.Intake.Retention.D(),
		ProcessTimeout: cfg.Intake.ProcessTimeout.D(),
		Metrics:        reg, Logger: log,
	}
}

// readyHandler answers 200 while deliveries can be stored: the database
// commits a write, and its filesystem has minFree bytes free (negative:
// not checked), the same bound below which the intake answers 503.
func readyHandler(db *state.DB, minFree int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.CheckWritable(ctx); err != nil {
			http.Error(w, "database cannot be written: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if minFree >= 0 {
			if err := intake.LowDisk(db.Dir(), minFree); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
}

// lockDataDir makes sure one server owns data_dir: a second one would
// requeue the first one's running deliveries as if it had crashed. The
// lock is a flock, so the kernel drops it when the process dies, kill -9
// included.
func lockDataDir(dir string) (func(), error) {
	path := filepath.Join(dir, "serve.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another compatbot serve is using data_dir %s (lock %s held)", dir, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return func() { f.Close() }, nil
}

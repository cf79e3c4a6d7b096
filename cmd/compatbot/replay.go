package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/compatbot/compatbot/bot/config"
	"github.com/compatbot/compatbot/bot/intake"
	"github.com/compatbot/compatbot/bot/metrics"
	"github.com/compatbot/compatbot/bot/webhook"
)

func init() {
	register(command{Name: "replay", Summary: "feed a saved webhook payload through intake and processing", Run: replayCmd})
}

const replayUsage = `Usage:
  compatbot replay FILE.json --event NAME [--config FILE] [--delivery ID]

Stores FILE.json as a delivery of event NAME (as the webhook would, minus
the signature) and processes it at once with the server's processor,
printing the outcome. Exit 0 when it is done (or ignored: an event
compatbot does not handle), 1 when it failed (left in retry or dead, where
a running server or 'compatbot deliveries retry' takes it up).
`

func replayCmd(args []string, stdout, stderr io.Writer) int {
	return replayMain(wireProcessor, args, stdout, stderr)
}

func replayMain(newProcessor processorFactory, args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("replay", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, replayUsage); fl.PrintDefaults() }
	cfgPath := fl.String("config", "", "the configuration file (YAML); default: ./var as data_dir")
	event := fl.String("event", "", "the X-GitHub-Event of the delivery (pull_request, issue_comment, ...)")
	id := fl.String("delivery", "", "the delivery id to store it under (default: replay-<random>)")
	pos, err := parseInterleaved(fl, args)
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if len(pos) != 1 || *event == "" {
		fl.Usage()
		return 2
	}
	payload, err := os.ReadFile(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "compatbot replay: %v\n", err)
		return 2
	}
	info, err := webhook.Decode(payload)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot replay: %s: %v\n", pos[0], err)
		return 2
	}
	var cfg *config.Config
	if *cfgPath == "" {
		wd, _ := os.Getwd()
		cfg = config.Default(wd)
	} else if cfg, err = config.Load(*cfgPath); err != nil {
		fmt.Fprintf(stderr, "compatbot replay: %v\n", err)
		return 2
	}
	if *id == "" {
		var b [8]byte
		rand.Read(b[:])
		*id = "replay-" + hex.EncodeToString(b[:])
	}
	ctx := context.Background()
	log := newLogger(cfg, stderr)
	db, err := openDB(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot replay: %v\n", err)
		return 1
	}
	defer db.Close()
	proc, err := newProcessor(cfg, db, http.NewServeMux())
	if err != nil {
		fmt.Fprintf(stderr, "compatbot replay: %v\n", err)
		return 1
	}
	// As in serve: builds the replayed delivery started stop (left to
	// Recover) before the database closes.
	if c, ok := proc.(io.Closer); ok {
		defer c.Close()
	}
	in, err := intake.New(ctx, intakeOptions(cfg, db, proc, metrics.NewRegistry(), log))
	if err != nil {
		fmt.Fprintf(stderr, "compatbot replay: %v\n", err)
		return 1
	}
	defer in.Close()
	d := &intake.Delivery{ID: *id, Event: *event, Action: info.Action, Payload: payload, Key: info.Key(), Installation: info.Installation}
	r, err := in.Replay(ctx, d)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot replay: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "delivery %s (%s", r.ID, r.Event)
	if r.Action != "" {
		fmt.Fprintf(stdout, ".%s", r.Action)
	}
	fmt.Fprintf(stdout, ", key %s): %s", r.Key, r.State)
	if r.State != intake.StateIgnored {
		fmt.Fprintf(stdout, " after %d attempt(s) in %s", r.Attempt, r.RunTime.Round(time.Microsecond))
	}
	fmt.Fprintln(stdout)
	if r.LastError != "" {
		fmt.Fprintf(stdout, "error: %s\n", r.LastError)
	}
	if r.State == intake.StateRetry {
		fmt.Fprintf(stdout, "next attempt by a running server at %s\n", r.NextAttemptAt.UTC().Format(time.RFC3339))
	}
	switch r.State {
	case intake.StateDone, intake.StateIgnored:
		return 0
	}
	return 1
}

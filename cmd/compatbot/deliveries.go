package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/compatbot/compatbot/bot/intake"
	"github.com/compatbot/compatbot/workflow/state"
)

func init() {
	register(command{Name: "deliveries", Summary: "list, show and retry stored webhook deliveries (dead letters)", Run: deliveriesCmd})
}

const deliveriesUsage = `Usage:
  compatbot deliveries list  [--config FILE] [--state STATE] [--limit N] [--json]
  compatbot deliveries show  [--config FILE] ID
  compatbot deliveries retry [--config FILE] ID...

list shows stored deliveries, oldest first (the newest --limit, default 50;
0 for all). STATE is one of queued, running, done, retry, dead, ignored.
retry puts dead (or waiting) deliveries back in the queue with a fresh
attempt budget; a running server picks them up within a second.
Without --config the database is ./var/compatbot.db.
`

func deliveriesCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, deliveriesUsage)
		return 2
	}
	sub := args[0]
	fl := flag.NewFlagSet("deliveries "+sub, flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, deliveriesUsage); fl.PrintDefaults() }
	cfgPath := fl.String("config", "", "the configuration file (YAML)")
	stateF := fl.String("state", "", "list only deliveries in this state")
	limit := fl.Int("limit", 50, "list at most the newest N (0: all)")
	asJSON := fl.Bool("json", false, "list as JSON, one object per line")
	switch sub {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, deliveriesUsage)
		return 0
	case "list", "show", "retry":
	default:
		fmt.Fprintf(stderr, "compatbot deliveries: unknown subcommand %q\n\n", sub)
		fmt.Fprint(stderr, deliveriesUsage)
		return 2
	}
	pos, err := parseInterleaved(fl, args[1:])
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	switch {
	case sub == "list" && len(pos) > 0:
		fmt.Fprintf(stderr, "compatbot deliveries list: unexpected argument %q\n", pos[0])
		return 2
	case sub == "show" && len(pos) != 1:
		fmt.Fprintln(stderr, "compatbot deliveries show: want exactly one delivery ID")
		return 2
	case sub == "retry" && len(pos) == 0:
		fmt.Fprintln(stderr, "compatbot deliveries retry: want at least one delivery ID")
		return 2
	}
	st, db, err := openStore(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot deliveries: %v\n", err)
		return 2
	}
	defer db.Close()
	ctx := context.Background()
	switch sub {
	case "list":
		recs, err := st.List(ctx, *stateF, *limit)
		if err != nil {
			fmt.Fprintf(stderr, "compatbot deliveries list: %v\n", err)
			return 2
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			for _, r := range recs {
				enc.Encode(recordJSON(r))
			}
			return 0
		}
		printRecords(stdout, recs)
	case "show":
		r, err := st.Get(ctx, pos[0])
		if err != nil {
			fmt.Fprintf(stderr, "compatbot deliveries show: %v\n", err)
			return 1
		}
		j := recordJSON(r)
		j["payload"] = json.RawMessage(r.Payload)
		if !json.Valid(r.Payload) {
			j["payload"] = string(r.Payload)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(j)
	case "retry":
		if err := st.Retry(ctx, pos...); err != nil {
			fmt.Fprintf(stderr, "compatbot deliveries retry: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "requeued %d deliver%s: %s\n", len(pos), plural(len(pos), "y", "ies"), strings.Join(pos, " "))
	}
	return 0
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// openStore opens the deliveries table of the configured database without
// creating one: a mistyped data_dir should not look like an empty queue.
func openStore(cfgPath string) (*intake.Store, *state.DB, error) {
	cfg, err := loadLocalConfig(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(cfg.DataDir, dbFile)
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("no database at %s (data_dir %s): %w", path, cfg.DataDir, err)
	}
	db, err := state.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := intake.OpenStore(context.Background(), db)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return st, db, nil
}

func printRecords(w io.Writer, recs []*intake.Record) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEVENT\tKEY\tSTATE\tATTEMPTS\tRECEIVED\tLAST ERROR")
	for _, r := range recs {
		ev := r.Event
		if r.Action != "" {
			ev += "." + r.Action
		}
		msg := r.LastError
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if len(msg) > 80 {
			msg = msg[:77] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, ev, r.Key, r.State, r.Attempt,
			r.ReceivedAt.UTC().Format(time.RFC3339), msg)
	}
	tw.Flush()
}

func recordJSON(r *intake.Record) map[string]any {
	m := map[string]any{
		"id": r.ID, "event": r.Event, "action": r.Action, "key": r.Key, "installation": r.Installation,
		"state": r.State, "attempts": r.Attempt, "last_error": r.LastError,
		"received_at": r.ReceivedAt.UTC().Format(time.RFC3339Nano), "run_time": r.RunTime.String(),
	}
	for k, t := range map[string]time.Time{"next_attempt_at": r.NextAttemptAt, "started_at": r.StartedAt, "finished_at": r.FinishedAt} {
		if !t.IsZero() {
			m[k] = t.UTC().Format(time.RFC3339Nano)
		}
	}
	return m
}

// parseInterleaved parses flags that may come before, between or after
// positional arguments (flag stops at the first positional).
func parseInterleaved(fl *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fl.Parse(args); err != nil {
			return nil, err
		}
		if fl.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fl.Arg(0))
		args = fl.Args()[1:]
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/compatbot/compatbot/bot/config"
	"github.com/compatbot/compatbot/workflow/changelog"
	"github.com/compatbot/compatbot/workflow/state"
)

func init() {
	register(command{Name: "history", Summary: "list what was published and rolled back, newest first", Run: historyCmd})
}

const historyUsage = `Usage:
  compatbot history [--config FILE] [--env test|prod] [--json]

Lists every publish and rollback the bot made, newest first: date, env,
action, tag, revision, PR, author, approver and deployer. It is the same
history the bot commits to changelog/<version>.md, read from the bot's
database (<data_dir>/compatbot.db). Without --config, data_dir is ./var.

Exit status: 0 listed (also when empty), 2 usage or database errors.

Examples:
  compatbot history --config /etc/compatbot.yml --env prod
  compatbot history --json | jq .tag
`

// loadLocalConfig reads --config without requiring credentials, or gives
// the defaults rooted at the current directory.
func loadLocalConfig(path string) (*config.Config, error) {
	if path == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		return config.Default(wd), nil
	}
	return config.LoadLocal(path)
}

// openDeployDB opens the database of an existing data_dir, where deploy
// keeps its journal and history; it does not create one where the bot never
// ran.
func openDeployDB(cfg *config.Config) (*state.DB, error) {
	p := filepath.Join(cfg.DataDir, dbFile)
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("no database at %s (has compatbot served with this data_dir?): %w", p, err)
	}
	return state.Open(p)
}

func historyCmd(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("history", historyUsage, stdout, stderr)
	cfgPath := fl.String("config", "", "the configuration `FILE` (YAML)")
	target := fl.String("env", "", "only this environment: test or prod")
	// --target was the flag's name when "target" also meant test/prod; it
	// now names a version/os-arch only, and stays here as an alias.
	fl.StringVar(target, "target", "", "same as --env (deprecated)")
	asJSON := fl.Bool("json", false, "one JSON object per entry")
	if code, done := parseFlags(fl, args, stdout); done {
		return code
	}
	if *target != "" && *target != "test" && *target != "prod" {
		fmt.Fprintf(stderr, "compatbot history: --env %q: want test or prod\n", *target)
		return 2
	}
	cfg, err := loadLocalConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot history: %v\n", err)
		return 2
	}
	db, err := openDeployDB(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot history: %v\n", err)
		return 2
	}
	defer db.Close()
	entries, err := changelog.List(context.Background(), db, *target)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot history: %v\n", err)
		return 2
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, e := range entries {
			if err := enc.Encode(historyJSON(e)); err != nil {
				return 2
			}
		}
		return 0
	}
	if len(entries) == 0 {
		fmt.Fprintln(stdout, "No publishes or rollbacks yet.")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATE (UTC)\tENV\tACTION\tTAG\tREVISION\tPR\tAUTHOR\tAPPROVER\tDEPLOYER")
	for _, e := range entries {
		pr := "-"
		if e.PR > 0 {
			pr = fmt.Sprintf("#%d", e.PR)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e.Date.UTC().Format("2006-01-02 15:04:05"), e.Target, e.Action, e.Tag, e.Revision, pr,
			dashIfEmpty(e.Author), dashIfEmpty(e.Approver), dashIfEmpty(e.Deployer))
	}
	tw.Flush()
	return 0
}

func dashIfEmpty(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// historyEntry is an entry as --json prints it: lower_snake_case keys like
// every other JSON compatbot prints (the database keeps its own form).
type historyEntry struct {
	Date     time.Time                     `json:"date"`
	Version  string                        `json:"version"`
	Env      string                        `json:"env"`
	Action   string                        `json:"action"`
	Tag      string                        `json:"tag"`
	Revision uint64                        `json:"revision"`
	PR       int                           `json:"pr"`
	PRURL    string                        `json:"pr_url"`
	Author   string                        `json:"author"`
	Approver string                        `json:"approver"`
	Deployer string                        `json:"deployer"`
	Changes  map[string][]changelog.Change `json:"changes"`
}

func historyJSON(e changelog.Entry) historyEntry {
	return historyEntry{Date: e.Date, Version: e.Version, Env: e.Target, Action: e.Action, Tag: e.Tag, Revision: e.Revision,
		PR: e.PR, PRURL: e.PRURL, Author: e.Author, Approver: e.Approver, Deployer: e.Deployer, Changes: e.Changes}
}

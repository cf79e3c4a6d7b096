// Package handlers turns GitHub webhook deliveries into compatbot's work:
// pull request events run the "compat sets" check, check_run/check_suite
// events re-run it, and PR comments carry the slash commands (/deploy,
// /rebuild, /rollback, /status, /help). Handler implements
// intake.Processor; each event kind has its own file.
//
// Every step is idempotent, because the intake may process a delivery again
// after a crash: check runs are found-or-created per (repo, SHA, name,
// trigger), commands are recorded per (repo, comment id, line) with their
// outcome, and the reply to a comment is recorded before it is posted and
// looked up by its marker if the post's outcome was lost.
package handlers

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/compatbot/compatbot/workflow/prflow"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/compatbot/compatbot/bot/checks"
	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/bot/intake"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/setscheck"
	"github.com/compatbot/compatbot/workflow/state"
	"github.com/google/go-github/v60/github"
)

// Clients hands out GitHub clients per App installation; *ghclient.Factory
// is the implementation.
type Clients interface {
	Client(ctx context.Context, installationID int64) (*github.Client, error)
	InstallationToken(ctx context.Context, installationID int64) (string, error)
}

// GitFetcher keeps local bare copies of repositories; *gitrepo.Cache is the
// implementation.
type GitFetcher interface {
	Fetch(ctx context.Context, remoteURL, token string, refspecs ...string) (gitDir string, err error)
}

// Options configure a Handler.
type Options struct {
	DB       *state.DB
	Clients  Clients
	GitCache GitFetcher
	// PublicURL is the server's public base, for links in check runs.
	PublicURL string
	// BotLogin is the App's own login (e.g. "compatbot[bot]"); its comments
	// are ignored like every bot's.
	BotLogin string
	// Deployer acts on /deploy and /rollback; nil records the request and
	// answers what would happen.
	Deployer Deployer
	// Builder is called after a passing sets check; nil builds nothing.
	Builder Builder
	// Targets adds the deploy targets' state to /status; nil leaves it out.
	Targets TargetStatus
	// ObserveCalls, if set, is told how many GitHub API requests each
	// processed delivery cost (for a /metrics histogram).
	ObserveCalls func(event string, calls int)
	Logger       *slog.Logger
	Now          func() time.Time
}

// Handler processes deliveries. Create it with New.
type Handler struct {
	opts Options
	runs *checks.Runs
	log  *slog.Logger
	now  func() time.Time
}

var migrations = []string{`
CREATE TABLE pr_heads (
	repo TEXT NOT NULL,
	pr INTEGER NOT NULL,
	sha TEXT NOT NULL,
	seen_at INTEGER NOT NULL,
	PRIMARY KEY (repo, pr, sha)
);
CREATE TABLE commands (
	repo TEXT NOT NULL,
	comment_id INTEGER NOT NULL,
	line INTEGER NOT NULL,
	pr INTEGER NOT NULL,
	command TEXT NOT NULL,
	user TEXT NOT NULL,
	sha TEXT NOT NULL,
	outcome TEXT NOT NULL,
	reaction TEXT NOT NULL DEFAULT '',
	section TEXT NOT NULL,
	delivery_id TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (repo, comment_id, line)
);
CREATE TABLE comment_replies (
	repo TEXT NOT NULL,
	comment_id INTEGER NOT NULL,
	state TEXT NOT NULL,
	reply_id INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (repo, comment_id)
);
CREATE TABLE command_requests (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	kind TEXT NOT NULL,
	repo TEXT NOT NULL,
	pr INTEGER NOT NULL,
	sha TEXT NOT NULL,
	target TEXT NOT NULL,
	tag TEXT NOT NULL DEFAULT '',
	user TEXT NOT NULL,
	time INTEGER NOT NULL,
	state TEXT NOT NULL,
	comment_id INTEGER NOT NULL,
	line INTEGER NOT NULL,
	UNIQUE (repo, comment_id, line)
);
CREATE TABLE builds (
	repo TEXT NOT NULL,
	head_sha TEXT NOT NULL,
	trigger TEXT NOT NULL,
	state TEXT NOT NULL,
	PRIMARY KEY (repo, head_sha, trigger)
);`, `
-- A head is current from each time it is seen: pr_heads kept only the
-- first, so a force-push back to an earlier head left every later command
-- judged stale.
CREATE TABLE pr_head_history (
	repo TEXT NOT NULL,
	pr INTEGER NOT NULL,
	sha TEXT NOT NULL,
	seen_at INTEGER NOT NULL,
	PRIMARY KEY (repo, pr, seen_at, sha)
);
INSERT INTO pr_head_history(repo, pr, sha, seen_at) SELECT repo, pr, sha, seen_at FROM pr_heads;
DROP TABLE pr_heads;`, `
-- One record per fact: a deploy or rollback command is the lifecycle's
-- (prflow_deploy_calls, created by prflow.EnsureSchema before this runs),
-- and whether builds were requested is what prflow_builds holds.
INSERT OR IGNORE INTO prflow_deploy_calls(repo, comment_id, line, env, pr, head_sha, state, kind, tag, user, created_at)
	SELECT repo, comment_id, line, target, pr, sha, CASE state WHEN 'submitted' THEN 'done' ELSE state END, kind, tag, user, time FROM command_requests;
DROP TABLE command_requests;
DROP TABLE builds;`}

// New checks opts and prepares the database tables.
func New(opts Options) (*Handler, error) {
	if opts.DB == nil || opts.Clients == nil || opts.GitCache == nil {
		return nil, errors.New("handlers: DB, Clients and GitCache are required")
	}
	ctx := context.Background()
	// The lifecycle's tables first: the handlers' migrations hand their
	// deploy records over to them.
	if err := prflow.EnsureSchema(ctx, opts.DB); err != nil {
		return nil, err
	}
	if err := opts.DB.EnsureSchema(ctx, "handlers", migrations...); err != nil {
		return nil, err
	}
	runs, err := checks.New(ctx, opts.DB, opts.PublicURL)
	if err != nil {
		return nil, err
	}
	h := &Handler{opts: opts, runs: runs, log: opts.Logger, now: opts.Now}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h, nil
}

// Reports serves the full check reports at /reports/{id}; mount it as
// mux.Handle("GET /reports/{id}", h.Reports()).
func (h *Handler) Reports() http.Handler { return h.runs.Handler() }

// Process handles one delivery (intake.Processor). Unknown events and
// actions are acknowledged and ignored. A malformed payload is a permanent
// error; GitHub and git failures are transient and retried by the intake.
func (h *Handler) Process(ctx context.Context, d *intake.Delivery) error {
	ctx = ghclient.WithCounter(ctx)
	ctx = ghclient.WithEventTime(ctx, d.ReceivedAt)
	start := h.now()
	var err error
	switch d.Event {
	case "pull_request":
		err = h.pullRequest(ctx, d)
	case "check_run":
		err = h.checkRun(ctx, d)
	case "check_suite":
		err = h.checkSuite(ctx, d)
	case "issue_comment":
		err = h.issueComment(ctx, d)
	case "installation", "installation_repositories":
		err = h.installationChanged(ctx, d) // installation.go
	default:
		h.log.Debug("event ignored", "delivery", d.ID, "event", d.Event)
		return nil
	}
	if h.opts.ObserveCalls != nil {
		h.opts.ObserveCalls(d.Event, ghclient.CallsFrom(ctx))
	}
	h.log.Info("delivery processed", "delivery", d.ID, "event", d.Event, "action", d.Action, "key", d.Key,
		"attempt", d.Attempt, "api_calls", ghclient.CallsFrom(ctx), "duration", h.now().Sub(start), "error", err)
	return err
}

// Payload parts shared by the events; fields GitHub may leave out are
// pointers or zero values that the handlers check.
type user struct {
	Login string `json:"login"`
	Type  string `json:"type"`
}

type repository struct {
	FullName      string `json:"full_name"`
	CloneURL      string `json:"clone_url"`
	DefaultBranch string `json:"default_branch"`
}

type installation struct {
	ID int64 `json:"id"`
}

type ref struct {
	Ref string `json:"ref"`
	SHA string `json:"sha"`
}

type prRef struct {
	Number int `json:"number"`
	Head   ref `json:"head"`
	Base   ref `json:"base"`
}

func decode(d *intake.Delivery, v any) error {
	if err := json.Unmarshal(d.Payload, v); err != nil {
		return intake.Permanent(fmt.Errorf("%s delivery %s: malformed payload: %w", d.Event, d.ID, err))
	}
	return nil
}

// target is one PR (or commit) the sets check runs for.
type target struct {
	repo         repository
	installation int64
	pr           int
	headSHA      string
	headRef      string // fetched as refs/pull/N/head, or a branch when pr is 0
	baseRef      string // branch name
	baseHint     string // GitHub's base.sha, a hint for the merge base
	allowLibc    bool   // the PR has AllowLibcUpdateLabel
}

// configBranch is where the repo config comes from: the default branch,
// never the PR.
func (t target) configBranch() string {
	if t.repo.DefaultBranch != "" {
		return t.repo.DefaultBranch
	}
	return t.baseRef
}

// readPR reads what t changes: its merge base with the base branch against
// its head, both read with the default branch's config. After a merge the
// base branch contains the PR, and the merge base still tells what the PR
// changed.
func readPR(ctx context.Context, gitDir string, t target) (*setscheck.Revisions, error) {
	mb, err := gitrepo.PRBase(ctx, gitDir, "refs/heads/"+t.baseRef, t.headSHA, t.baseHint)
	if err != nil {
		return nil, fmt.Errorf("merge base of %s with %s: %w", short(t.headSHA), t.baseRef, err)
	}
	return setscheck.LoadPR(ctx, gitDir, setscheck.PR{Config: "refs/heads/" + t.configBranch(), Base: mb, Head: t.headSHA})
}

func (h *Handler) client(ctx context.Context, inst int64) (*github.Client, error) {
	c, err := h.opts.Clients.Client(ctx, inst)
	if err != nil {
		return nil, intake.Permanent(err)
	}
	return c, nil
}

func validRepo(r repository) error {
	o, n, ok := strings.Cut(r.FullName, "/")
	if !ok || o == "" || n == "" || strings.Contains(n, "/") {
		return intake.Permanent(fmt.Errorf("payload repository.full_name %q is not owner/name", r.FullName))
	}
	if r.CloneURL == "" {
		return intake.Permanent(fmt.Errorf("payload repository.clone_url is missing"))
	}
	return nil
}

// fetch brings the base branch, the head and the other branches named into
// the git cache; refs are checked by the cache (they come from payloads).
func (h *Handler) fetch(ctx context.Context, t target, branches ...string) (string, error) {
	tok, err := h.opts.Clients.InstallationToken(ctx, t.installation)
	if err != nil {
		return "", err
	}
	branchSpec := func(b string) string { return "+refs/heads/" + b + ":refs/heads/" + b }
	specs := []string{branchSpec(t.baseRef)}
	if t.pr > 0 {
		specs = append(specs, fmt.Sprintf("+refs/pull/%d/head:refs/pull/%d/head", t.pr, t.pr))
	} else if t.headRef != "" && t.headRef != t.baseRef {
		specs = append(specs, branchSpec(t.headRef))
	}
	for _, b := range branches {
		if b != t.baseRef {
			specs = append(specs, branchSpec(b))
		}
	}
	if def := t.configBranch(); def != t.baseRef && !slices.Contains(branches, def) {
		specs = append(specs, branchSpec(def))
	}
	dir, err := h.opts.GitCache.Fetch(ctx, t.repo.CloneURL, tok, specs...)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", t.repo.FullName, err)
	}
	return dir, nil
}

// recordHead remembers that pr's head became sha at time at, for the
// staleness check of commands. Every time a head is seen is kept: a
// force-push back to an earlier head makes that head current again.
func (h *Handler) recordHead(ctx context.Context, repo string, pr int, sha string, at time.Time) error {
	_, err := h.opts.DB.ExecContext(ctx, `INSERT INTO pr_head_history(repo, pr, sha, seen_at) VALUES(?,?,?,?) ON CONFLICT DO NOTHING`,
		repo, pr, sha, at.Unix())
	return err
}

// headAt is the head sha recorded for pr at time at ("" if none known).
func (h *Handler) headAt(ctx context.Context, repo string, pr int, at time.Time) (string, error) {
	var sha string
	err := h.opts.DB.QueryRowContext(ctx, `SELECT sha FROM pr_head_history WHERE repo=? AND pr=? AND seen_at<=? ORDER BY seen_at DESC, rowid DESC LIMIT 1`, repo, pr, at.Unix()).Scan(&sha)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	return sha, nil
}

func changedTargets(rev *setscheck.Revisions) []sets.Target {
	if rev == nil {
		return nil
	}
	var ts []sets.Target
	for _, d := range sets.Diff(rev.Base, rev.Head) {
		if len(d.Changes) > 0 {
			ts = append(ts, d.Target)
		}
	}
	return ts
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

var (
	_ intake.Processor = (*Handler)(nil)
	_ Clients          = (*ghclient.Factory)(nil)
	_ GitFetcher       = (*gitrepo.Cache)(nil)
)

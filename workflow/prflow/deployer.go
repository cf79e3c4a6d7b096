package prflow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/setscheck"
	"github.com/compatbot/compatbot/workflow/state"
)

// Core is what the Deployer drives: *deploy.Engine.
type Core interface {
	DeployTest(ctx context.Context, req deploy.Request) (deploy.Result, error)
	DeployProd(ctx context.Context, req deploy.Request) (deploy.Result, error)
	CheckProd(ctx context.Context, req deploy.Request) error
	RollbackFor(ctx context.Context, env, tag string, from deploy.Request) (deploy.Result, error)
	Lineage(ctx context.Context, env string, target sets.Target) (string, error)
	Holds(ctx context.Context, env string, target sets.Target) (deploy.TargetStatus, error)
}

// Deployer implements the bot's Deployer port: it deploys exactly the digests
// this package recorded as built and tested for the PR's head, through
// workflow/deploy, and mirrors each deploy as a GitHub Deployment
// (environment compat-test or compat-prod) with statuses in_progress →
// success/failure. Its tables must exist: call EnsureSchema (or New)
// on DB first.
type Deployer struct {
	DB          *state.DB
	Core        Core
	Deployments Deployments // nil: no GitHub Deployments
	// Rebuild, when set, starts the rebuild on the production base of a
	// target whose /deploy prod is refused because production moved on
	// since its artifact was built (the Builder implements it).
	Rebuild ProdRebuilder
	// Builds builds a merge commit whose sets differ from the tested
	// head's (the Builder); nil refuses such merges.
	Builds interface {
		Build(ctx context.Context, req BuildRequest) error
	}
	// Comments tells a PR how its merge deploy ended; nil: not told.
	Comments Commenter
	Logger   *slog.Logger
}

// ProdRebuilder starts a rebuild of a PR head's target on production's
// current tree (lineage prodLineage), with sources from the mirror only,
// and answers with one Markdown line for the PR. *Builder implements it.
type ProdRebuilder interface {
	RebuildOnProd(ctx context.Context, repo string, pr int, sha string, t sets.Target, prodLineage string) (string, error)
}

// DeploymentEnv is the GitHub Deployment environment of a compatbot
// environment.
func DeploymentEnv(env string) string { return "compat-" + env }

// DeployTest implements the bot's Deployer port.
func (d *Deployer) DeployTest(ctx context.Context, req DeployRequest) (string, error) {
	return d.deploy(ctx, deploy.EnvTest, req)
}

// DeployProd implements the bot's Deployer port.
func (d *Deployer) DeployProd(ctx context.Context, req DeployRequest) (string, error) {
	return d.deploy(ctx, deploy.EnvProd, req)
}

func (d *Deployer) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

type call struct {
	state        string
	deploymentID int64
	reply        string
}

func (d *Deployer) call(ctx context.Context, repo string, commentID int64, line int) (call, bool, error) {
	var c call
	err := d.DB.QueryRowContext(ctx, `SELECT state, deployment_id, reply FROM prflow_deploy_calls WHERE repo=? AND comment_id=? AND line=?`, repo, commentID, line).
		Scan(&c.state, &c.deploymentID, &c.reply)
	if errors.Is(err, sql.ErrNoRows) {
		return call{}, false, nil
	}
	return c, err == nil, err
}

// deploy runs one /deploy (or merge) request and keeps its record: a
// refusal is recorded with its reason, so the request shows in /status and
// a repeated call answers the same.
func (d *Deployer) deploy(ctx context.Context, env string, req DeployRequest) (string, error) {
	reply, err := d.deployOnce(ctx, env, req)
	var r *Refusal
	if errors.As(err, &r) {
		if _, dbErr := d.DB.ExecContext(bgCtx(ctx), `INSERT INTO prflow_deploy_calls(repo, comment_id, line, env, pr, head_sha, state, reply, kind, user, created_at)
			VALUES(?,?,?,?,?,?, 'refused', ?, 'deploy', ?, ?) ON CONFLICT DO UPDATE SET state='refused', reply=excluded.reply`,
			req.Repo, req.CommentID, req.Line, env, req.PR, req.HeadSHA, r.Reason, req.Requester, time.Now().Unix()); dbErr != nil {
			return "", dbErr
		}
	}
	return reply, err
}

func (d *Deployer) deployOnce(ctx context.Context, env string, req DeployRequest) (string, error) {
	if err := rememberInstallation(ctx, d.DB, req.Repo, req.Installation); err != nil {
		return "", err
	}
	prev, seen, err := d.call(ctx, req.Repo, req.CommentID, req.Line)
	if err != nil {
		return "", err
	}
	switch {
	case seen && (prev.state == "done" || prev.state == "awaiting-build"):
		return prev.reply, nil
	case seen && prev.state == "refused":
		return "", &Refusal{Reason: prev.reply}
	case seen && prev.state == "running":
		// The process died inside the deploy: deploy.Recover settled it
		// on start and the Notifier told the PR.
		reply := fmt.Sprintf("`/deploy %s` of %s was interrupted by a restart of compatbot; how it ended is posted in a separate comment on this PR.", env, short(req.HeadSHA))
		_, err := d.DB.ExecContext(ctx, `UPDATE prflow_deploy_calls SET state='done', reply=? WHERE repo=? AND comment_id=? AND line=?`, reply, req.Repo, req.CommentID, req.Line)
		return reply, err
	}
	items, headOuts, err := d.items(ctx, env, req)
	if err != nil {
		return "", err
	}
	if env == deploy.EnvTest {
		differ, err := d.mergeDiffers(ctx, req, headOuts)
		if err != nil {
			return "", err
		}
		if len(differ) > 0 {
			return d.buildMerge(ctx, req, differ)
		}
	}
	var rebased []string
	if env == deploy.EnvTest {
		// Publishing an artifact again on top of itself (a /deploy test,
		// then the merge) would change test's lineage without changing
		// its content, and test's lineage is what later PRs are built on.
		var todo []deploy.Item
		var there []string
		for _, it := range items {
			lin, err := d.Core.Lineage(ctx, env, it.Target)
			if err != nil {
				return "", err
			}
			if it.BaseEnv != "" && lin != it.BaseLineage {
				rebased = append(rebased, it.Target.String())
			}
			if lin == deploy.NextLineage(it.BaseLineage, it.Digest) {
				there = append(there, fmt.Sprintf("%s (`%s`)", it.Target, shortDigest(it.Digest)))
				continue
			}
			todo = append(todo, it)
		}
		if len(todo) == 0 {
			return fmt.Sprintf("Already on test: the artifacts of %s are what the test repository has now for %s. Nothing was published again.",
				short(req.HeadSHA), strings.Join(there, ", ")), nil
		}
		items = todo
	}
	dreq := deploy.Request{Repo: req.Repo, PR: req.PR, HeadSHA: req.HeadSHA, Author: req.Author, Requester: req.Requester, Merged: req.Merged, Items: items}
	if env == deploy.EnvProd {
		// Refuse before creating a GitHub Deployment: a refused command
		// is answered on the PR and must not show as a failed deploy
		// in the repository's Deployments.
		if err := d.Core.CheckProd(ctx, dreq); err != nil {
			return "", d.prodRefusal(ctx, req, items, err)
		}
	}
	if _, err := d.DB.ExecContext(ctx, `INSERT INTO prflow_deploy_calls(repo, comment_id, line, env, pr, head_sha, state, kind, user, created_at) VALUES(?,?,?,?,?,?, 'preparing', 'deploy', ?, ?) ON CONFLICT DO NOTHING`,
		req.Repo, req.CommentID, req.Line, env, req.PR, req.HeadSHA, req.Requester, time.Now().Unix()); err != nil {
		return "", err
	}
	depID := prev.deploymentID
	if d.Deployments != nil && depID == 0 {
		var targets []string
		for _, it := range items {
			targets = append(targets, fmt.Sprintf("%s %s-%s (%d changes)", it.Target.Version, it.Target.OS, it.Target.Arch, len(it.Changes)))
		}
		depID, err = d.Deployments.CreateDeployment(ctx, req.Repo, req.HeadSHA, DeploymentEnv(env),
			fmt.Sprintf("PR #%d by @%s: %s", req.PR, req.Requester, strings.Join(targets, ", ")))
		if err != nil {
			return "", err
		}
		if _, err := d.DB.ExecContext(ctx, `UPDATE prflow_deploy_calls SET deployment_id=? WHERE repo=? AND comment_id=? AND line=?`, depID, req.Repo, req.CommentID, req.Line); err != nil {
			return "", err
		}
	}
	d.status(ctx, req.Repo, depID, "in_progress", "publishing to "+env)
	if _, err := d.DB.ExecContext(ctx, `UPDATE prflow_deploy_calls SET state='running' WHERE repo=? AND comment_id=? AND line=?`, req.Repo, req.CommentID, req.Line); err != nil {
		return "", err
	}
	var res deploy.Result
	if env == deploy.EnvProd {
		res, err = d.Core.DeployProd(ctx, dreq)
	} else {
		res, err = d.Core.DeployTest(ctx, dreq)
	}
	if r, ok := deploy.IsRefusal(err); ok {
		// Only when the rules stopped holding after CheckProd (another
		// deploy got to production first), or for test's own checks.
		d.status(ctx, req.Repo, depID, "failure", "refused")
		d.forget(ctx, req)
		if env == deploy.EnvProd {
			return "", d.prodRefusal(ctx, req, items, err)
		}
		return "", &Refusal{Reason: r.Reason}
	}
	var step *deploy.StepError
	if err != nil && !errors.As(err, &step) && res.RequestID == 0 {
		// Not accepted (the queue wait ended, the database failed): the
		// delivery is retried and may deploy then.
		d.status(ctx, req.Repo, depID, "error", "not started: "+err.Error())
		d.forget(ctx, req)
		return "", err
	}
	reply := deploy.ReplyText(res, err)
	if len(rebased) > 0 && res.OK() {
		reply += fmt.Sprintf("\n\nThe artifact of %s was rebuilt on production's tree, so test's tree for it was first made production's tree: test now has exactly what production will have after `/deploy prod`. Changes that were only on test for it (this PR's earlier artifact, other PRs not promoted yet) are no longer on test.",
			strings.Join(rebased, ", "))
	}
	st, desc := "success", fmt.Sprintf("published to %s and verified", env)
	if !res.OK() {
		st, desc = "failure", "deploy failed; see the PR comment"
	}
	d.status(ctx, req.Repo, depID, st, desc)
	_, dbErr := d.DB.ExecContext(bgCtx(ctx), `UPDATE prflow_deploy_calls SET state='done', reply=?, request_id=? WHERE repo=? AND comment_id=? AND line=?`, reply, res.RequestID, req.Repo, req.CommentID, req.Line)
	return reply, dbErr
}

// prodRefusal turns deploy's answer to a /deploy prod that is refused
// (or failed before it started) into the command's answer. A merged PR
// refused because production moved on gets its rebuild on the production
// base started, and the refusal says so.
func (d *Deployer) prodRefusal(ctx context.Context, req DeployRequest, items []deploy.Item, err error) error {
	r, ok := deploy.IsRefusal(err)
	if !ok {
		return err
	}
	reason := r.Reason
	if req.Merged {
		more, rerr := d.rebuildOnProd(ctx, req, items)
		if rerr != nil {
			return rerr
		}
		reason += more
	}
	return &Refusal{Reason: reason}
}

// rebuildOnProd starts the rebuild on the production base of every item
// built on a tree production no longer has, and says so for the refusal.
// The rebuilt artifact goes through test again: it is a new digest.
func (d *Deployer) rebuildOnProd(ctx context.Context, req DeployRequest, items []deploy.Item) (string, error) {
	if d.Rebuild == nil {
		return "", nil
	}
	var lines []string
	for _, it := range items {
		lin, err := d.Core.Lineage(ctx, deploy.EnvProd, it.Target)
		if err != nil {
			return "", err
		}
		if lin == it.BaseLineage {
			continue
		}
		line, err := d.Rebuild.RebuildOnProd(ctx, req.Repo, req.PR, req.HeadSHA, it.Target, lin)
		if err != nil {
			return "", fmt.Errorf("prflow: rebuild %s on the production base: %w", it.Target, err)
		}
		lines = append(lines, "- "+line)
	}
	if len(lines) == 0 {
		return "", nil
	}
	return fmt.Sprintf("\n\n**Rebuild on the production base**\n\n%s\n\nThe rebuilt artifact is a new digest, so it must go through test again: when its check run passes, write `/deploy test`, then `/deploy prod`.",
		strings.Join(lines, "\n")), nil
}

func (d *Deployer) forget(ctx context.Context, req DeployRequest) {
	if _, err := d.DB.ExecContext(bgCtx(ctx), `DELETE FROM prflow_deploy_calls WHERE repo=? AND comment_id=? AND line=?`, req.Repo, req.CommentID, req.Line); err != nil {
		d.logger().Warn("prflow: forgetting a deploy call failed", "error", err)
	}
}

// status sets a Deployment's status; a failure is logged, not fatal: the
// PR comment is the authoritative answer.
func (d *Deployer) status(ctx context.Context, repo string, id int64, st, desc string) {
	if d.Deployments == nil || id == 0 {
		return
	}
	if err := d.Deployments.SetDeploymentStatus(bgCtx(ctx), repo, id, st, desc); err != nil {
		d.logger().Warn("prflow: deployment status failed", "repo", repo, "deployment", id, "state", st, "error", err)
	}
}

// items turns the recorded builds of the pinned head into deploy items,
// refusing when any target changed by the PR has no passing build of
// exactly that head: deploying it would publish an untested digest. It
// also returns the head's recorded outcomes, for the merge comparison.
func (d *Deployer) items(ctx context.Context, env string, req DeployRequest) ([]deploy.Item, map[sets.Target]Outcome, error) {
	if len(req.Targets) == 0 {
		return nil, nil, &Refusal{Reason: "this PR changes no package set, so there is nothing to deploy."}
	}
	headOuts, err := outcomes(ctx, d.DB, req.Repo, req.PR, req.HeadSHA)
	if err != nil {
		return nil, nil, err
	}
	outs := maps.Clone(headOuts)
	if req.Merged && req.MergeSHA != "" && req.MergeSHA != req.HeadSHA {
		// What test got from a merge whose sets differed from the tested
		// head's is the merge commit's build: production gets that.
		merged, err := outcomes(ctx, d.DB, req.Repo, req.PR, req.MergeSHA)
		if err != nil {
			return nil, nil, err
		}
		for t, o := range merged {
			if o.Trigger == TriggerMerge && o.Digest != "" {
				outs[t] = o
			}
		}
	}
	targets := append([]sets.Target(nil), req.Targets...)
	sort.Slice(targets, func(i, j int) bool { return targets[i].String() < targets[j].String() })
	var items []deploy.Item
	var why []string
	for _, t := range targets {
		o, ok := outs[t]
		switch {
		case !ok:
			why = append(why, fmt.Sprintf("- %s was never built at %s", t, short(req.HeadSHA)))
		case o.Conclusion == "":
			why = append(why, fmt.Sprintf("- %s is still being built at %s", t, short(req.HeadSHA)))
		case o.Digest == "":
			why = append(why, fmt.Sprintf("- %s: its build at %s ended %s (%s)", t, short(req.HeadSHA), o.Conclusion, o.Title))
		default:
			built := req.HeadSHA
			if o.Trigger == TriggerMerge {
				built = req.MergeSHA
			}
			it := deploy.Item{Target: t, Digest: o.Digest, BaseLineage: o.BaseLineage, SetsSHA: built, Changes: o.Changes}
			if ch, ok, err := d.changesSinceHeld(ctx, env, req, t, built); err != nil {
				return nil, nil, err
			} else if ok {
				it.Changes = ch
			}
			if isProdBase(o.Trigger) {
				// Built on production's tree: test gets production's tree
				// plus this artifact (deploy's rebase rule).
				it.BaseEnv = deploy.EnvProd
			}
			items = append(items, it)
		}
	}
	if len(why) > 0 {
		return nil, nil, &Refusal{Reason: fmt.Sprintf("untested digest: compatbot deploys only what it built and tested for commit %s, and for this PR that is not everything:\n\n%s\n\nWait for the builds, or fix them and push; then write `/deploy %s` again.",
			short(req.HeadSHA), strings.Join(why, "\n"), env)}
	}
	return items, headOuts, nil
}

// Rollback implements the bot's Deployer port.
func (d *Deployer) Rollback(ctx context.Context, req RollbackRequest) (string, error) {
	if err := rememberInstallation(ctx, d.DB, req.Repo, req.Installation); err != nil {
		return "", err
	}
	prev, seen, err := d.call(ctx, req.Repo, req.CommentID, req.Line)
	if err != nil {
		return "", err
	}
	if seen && prev.state == "done" {
		return prev.reply, nil
	}
	if seen && prev.state == "refused" {
		return "", &Refusal{Reason: prev.reply}
	}
	if _, err := d.DB.ExecContext(ctx, `INSERT INTO prflow_deploy_calls(repo, comment_id, line, env, pr, head_sha, state, kind, tag, user, created_at) VALUES(?,?,?,?,?, '', 'running', 'rollback', ?, ?, ?) ON CONFLICT DO NOTHING`,
		req.Repo, req.CommentID, req.Line, req.Env, req.PR, req.Tag, req.Requester, time.Now().Unix()); err != nil {
		return "", err
	}
	res, err := d.Core.RollbackFor(ctx, req.Env, req.Tag, deploy.Request{Repo: req.Repo, PR: req.PR, Requester: req.Requester})
	if r, ok := deploy.IsRefusal(err); ok {
		if _, err := d.DB.ExecContext(bgCtx(ctx), `UPDATE prflow_deploy_calls SET state='refused', reply=? WHERE repo=? AND comment_id=? AND line=?`, r.Reason, req.Repo, req.CommentID, req.Line); err != nil {
			return "", err
		}
		return "", &Refusal{Reason: r.Reason}
	}
	if err != nil && res.RequestID == 0 {
		d.forget(ctx, DeployRequest{Repo: req.Repo, CommentID: req.CommentID, Line: req.Line})
		return "", err
	}
	reply := deploy.ReplyText(res, err)
	_, dbErr := d.DB.ExecContext(bgCtx(ctx), `UPDATE prflow_deploy_calls SET state='done', reply=?, request_id=? WHERE repo=? AND comment_id=? AND line=?`, reply, res.RequestID, req.Repo, req.CommentID, req.Line)
	return reply, dbErr
}

// Recovered settles the Deployments of deploys that deploy.Recover
// finished or aborted after a restart: use it as Notifier.OnOutcome.
func (d *Deployer) Recovered(ctx context.Context, env string, req deploy.Request, res deploy.Result) {
	if !res.Recovered || req.HeadSHA == "" {
		return
	}
	rows, err := d.DB.QueryContext(ctx, `SELECT comment_id, line, deployment_id FROM prflow_deploy_calls WHERE repo=? AND pr=? AND head_sha=? AND env=? AND state='running'`,
		req.Repo, req.PR, req.HeadSHA, env)
	if err != nil {
		d.logger().Warn("prflow: recovered deploy lookup failed", "error", err)
		return
	}
	type rc struct {
		comment int64
		line    int
		dep     int64
	}
	var calls []rc
	for rows.Next() {
		var c rc
		if err := rows.Scan(&c.comment, &c.line, &c.dep); err == nil {
			calls = append(calls, c)
		}
	}
	rows.Close()
	st := "success"
	if !res.OK() {
		st = "failure"
	}
	for _, c := range calls {
		d.status(ctx, req.Repo, c.dep, st, "settled after a restart of compatbot")
	}
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// changesSinceHeld is what deploying the set of commit to for t changes in
// env: the sets diff from the commit env's target holds now (desired
// against actual). ok is false when that commit is not known (a target
// never deployed, or deployed before compatbot kept it): the build's own
// changes, from the PR's merge base, then say it.
func (d *Deployer) changesSinceHeld(ctx context.Context, env string, req DeployRequest, t sets.Target, to string) ([]sets.Change, bool, error) {
	held, err := d.Core.Holds(ctx, env, t)
	if err != nil {
		return nil, false, err
	}
	if held.SetsSHA == "" || req.GitDir == "" {
		return nil, false, nil
	}
	// Builds layer on the published tree, so a commit that does not
	// descend from the held one (another PR's head) is not "the held set
	// plus a diff": its own changes describe it.
	if in, err := gitrepo.IsAncestor(ctx, req.GitDir, held.SetsSHA, to); err != nil || !in {
		return nil, false, nil
	}
	cfg := req.ConfigSHA
	if cfg == "" {
		cfg = to
	}
	rev, err := setscheck.LoadPR(ctx, req.GitDir, setscheck.PR{Config: cfg, Base: held.SetsSHA, Head: to})
	if err != nil {
		// The held commit is gone from the repository (a force-pushed
		// branch): fall back rather than refuse the deploy.
		d.logger().Warn("prflow: the commit a target holds cannot be read", "env", env, "target", t.String(), "sha", held.SetsSHA, "error", err)
		return nil, false, nil
	}
	for _, td := range sets.Diff(rev.Base, rev.Head) {
		if td.Target == t {
			return td.Changes, true, nil
		}
	}
	return []sets.Change{}, true, nil
}

// CommandRecord is one /deploy or /rollback command (or merge deploy) as
// the lifecycle keeps it: the one record of that request. RequestID links
// the deploy journal's transaction once there is one.
type CommandRecord struct {
	ID        int64
	Kind      string // "deploy" or "rollback"
	Env       string // "test" or "prod"
	Tag       string // a rollback's target tag ("" = the one before the last deploy)
	HeadSHA   string
	User      string
	Time      time.Time
	State     string // preparing, running, awaiting-build, done, refused
	RequestID int64
}

// Requests lists the newest limit commands of PR pr, newest first.
func (d *Deployer) Requests(ctx context.Context, repo string, pr, limit int) ([]CommandRecord, error) {
	rows, err := d.DB.QueryContext(ctx, `SELECT rowid, kind, env, tag, head_sha, user, created_at, state, request_id FROM prflow_deploy_calls
		WHERE repo=? AND pr=? ORDER BY created_at DESC, rowid DESC LIMIT ?`, repo, pr, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CommandRecord
	for rows.Next() {
		var c CommandRecord
		var at int64
		if err := rows.Scan(&c.ID, &c.Kind, &c.Env, &c.Tag, &c.HeadSHA, &c.User, &at, &c.State, &c.RequestID); err != nil {
			return nil, err
		}
		c.Time = time.Unix(at, 0)
		out = append(out, c)
	}
	return out, rows.Err()
}

package deploy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/publish"
)

// DeployTest publishes req's artifacts to the test environment, one
// transaction per item, and runs the verifier on each published tree.
//
// Errors: *Refusal when the request is invalid; *StepError (with the
// Result filled) when a step failed; ctx's error when it ended while the
// request was queued.
func (d *Engine) DeployTest(ctx context.Context, req Request) (Result, error) {
	return d.deploy(ctx, EnvTest, req)
}

// DeployProd promotes req's artifacts to production. It is refused unless
// the PR is merged, every item's exact digest was published to test and
// passed verification there, and production's current lineage for the
// target is the item's BaseLineage (the artifact was built on what
// production has now). The rules are checked when the request arrives and
// again when its turn in the queue comes.
func (d *Engine) DeployProd(ctx context.Context, req Request) (Result, error) {
	return d.deploy(ctx, EnvProd, req)
}

// CheckProd applies DeployProd's rules now, without queueing or
// publishing anything: a *Refusal says why DeployProd would refuse req.
// DeployProd checks again (the rules may stop holding in between); this
// lets a caller refuse before it announces a deploy, e.g. as a GitHub
// Deployment.
func (d *Engine) CheckProd(ctx context.Context, req Request) error {
	_, err := d.admit(ctx, EnvProd, req)
	return err
}

// admit checks req for env as it arrives (a *Refusal when it is invalid
// or, for production, breaks the promotion rules) and returns the target
// paths it publishes to.
func (d *Engine) admit(ctx context.Context, env string, req Request) ([]string, error) {
	pub, err := d.publisher(env)
	if err != nil {
		return nil, err
	}
	paths, err := validateRequest(req, d.layouts[env])
	if err != nil {
		return nil, &Refusal{Reason: "Cannot deploy: " + err.Error()}
	}
	if env == EnvProd {
		if err := d.checkProd(ctx, pub, req); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

func (d *Engine) deploy(ctx context.Context, env string, req Request) (Result, error) {
	paths, err := d.admit(ctx, env, req)
	if err != nil {
		return Result{}, err
	}
	t, pos, err := d.enqueue(env, func() (int64, error) { return d.insertDeploy(ctx, env, req, paths) })
	if err != nil {
		return Result{}, fmt.Errorf("deploy: queue: %w", err)
	}
	d.failpointHere("after-enqueue")
	if pos > 0 && d.notify != nil {
		d.notify.Queued(ctx, env, req, pos)
	}
	if err := d.waitTurn(ctx, env, t); err != nil {
		d.abortQueued(ctx, t.id, "the request was cancelled while queued")
		return Result{}, err
	}
	defer d.release(env, t)
	return d.run(ctx, env, t.id, req)
}

func validateRequest(req Request, layout publish.Layout) ([]string, error) {
	if req.Repo == "" || strings.Count(req.Repo, "/") != 1 {
		return nil, fmt.Errorf("repository %q: want owner/name", req.Repo)
	}
	if req.PR <= 0 {
		return nil, fmt.Errorf("PR number %d: must be positive", req.PR)
	}
	if err := validSHA(req.HeadSHA); err != nil {
		return nil, err
	}
	if req.Requester == "" {
		return nil, errors.New("the request names no requester")
	}
	if len(req.Items) == 0 {
		return nil, errors.New("the PR's build produced nothing to deploy")
	}
	seen := map[string]bool{}
	var paths []string
	for i, it := range req.Items {
		p, err := layout.Path(it.Target)
		if err != nil {
			return nil, fmt.Errorf("item %d: %v", i+1, err)
		}
		if seen[p] {
			return nil, fmt.Errorf("item %d: %s is listed twice", i+1, it.Target)
		}
		seen[p] = true
		if _, err := artifact.ParseDigest(it.Digest); err != nil {
			return nil, fmt.Errorf("item %d (%s): artifact digest %q: want sha256:<64 hex digits> (lower-case)", i+1, it.Target, it.Digest)
		}
		if _, err := TagName(it.Target, req.PR, req.HeadSHA); err != nil {
			return nil, fmt.Errorf("item %d: %v", i+1, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// checkProd applies the promotion rules; every failing item is named.
func (d *Engine) checkProd(ctx context.Context, pub publish.Publisher, req Request) error {
	if !req.Merged {
		return &Refusal{Reason: fmt.Sprintf("Refusing `/deploy prod` of PR #%d: the PR is not merged. Production only gets merged changes.", req.PR)}
	}
	cur, _, err := pub.Current(ctx)
	if err != nil {
		return fmt.Errorf("deploy prod: read the current production tree: %w", err)
	}
	var reasons []string
	for _, it := range req.Items {
		why, err := d.testedVerdict(ctx, it)
		if err != nil {
			return err
		}
		if why != "" {
			reasons = append(reasons, why)
			continue
		}
		p, err := d.TargetPath(EnvProd, it.Target)
		if err != nil {
			return err
		}
		lin, err := ReadLineage(filepath.Join(cur, filepath.FromSlash(p)))
		if err != nil {
			return fmt.Errorf("deploy prod: %s: %w", it.Target, err)
		}
		if lin != it.BaseLineage {
			reasons = append(reasons, fmt.Sprintf("**%s**: production has moved on since this artifact was built (production lineage `%s`, artifact built on `%s`). Rebuild on the production base (sources from the mirror only) and deploy to test again.",
				it.Target, lineageShort(lin), lineageShort(it.BaseLineage)))
		}
	}
	if len(reasons) > 0 {
		return &Refusal{Reason: fmt.Sprintf("Refusing `/deploy prod` of PR #%d:\n\n- %s", req.PR, strings.Join(reasons, "\n- "))}
	}
	return nil
}

// testedVerdict says why it.Digest may not go to production ("" if it
// may): it must have been published to test and passed verification.
func (d *Engine) testedVerdict(ctx context.Context, it Item) (string, error) {
	var passed, failed int
	var summary sql.NullString
	err := d.db.QueryRowContext(ctx, `SELECT
		COUNT(CASE WHEN state = ? THEN 1 END),
		COUNT(CASE WHEN state = ? AND failed_step = 'verify' THEN 1 END),
		(SELECT verify_summary || CASE WHEN error != '' THEN ' ' || error ELSE '' END FROM deploy_items
		  WHERE env = ? AND version = ? AND os = ? AND arch = ? AND digest = ? AND state = ? AND failed_step = 'verify'
		  ORDER BY request_id DESC LIMIT 1)
		FROM deploy_items WHERE env = ? AND version = ? AND os = ? AND arch = ? AND digest = ?`,
		stVerified, stFailed,
		EnvTest, it.Target.Version, it.Target.OS, it.Target.Arch, it.Digest, stFailed,
		EnvTest, it.Target.Version, it.Target.OS, it.Target.Arch, it.Digest).Scan(&passed, &failed, &summary)
	if err != nil {
		return "", fmt.Errorf("deploy prod: look up test deploys: %w", err)
	}
	switch {
	case passed > 0:
		return "", nil
	case failed > 0:
		return fmt.Sprintf("**%s**: artifact `%s` failed its tests on `test` (%s). Fix the PR and deploy to test again.",
			it.Target, short(it.Digest, 12), oneLine(summary.String)), nil
	default:
		return fmt.Sprintf("**%s**: artifact `%s` was never deployed to `test` with passing tests. Run `/deploy test` first.",
			it.Target, short(it.Digest, 12)), nil
	}
}

func (d *Engine) abortQueued(ctx context.Context, id int64, why string) {
	d.execTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`UPDATE deploy_items SET state = ?, error = ?, updated = ? WHERE request_id = ? AND state = ?`, stAborted, why, d.now(), id, stQueued); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE deploy_requests SET state = ?, updated = ? WHERE id = ?`, reqAborted, d.now(), id)
		return err
	})
}

// run does a deploy whose turn has come: rules again (prod), then one
// transaction per item, stopping at the first failure.
func (d *Engine) run(ctx context.Context, env string, id int64, req Request) (Result, error) {
	pub, err := d.publisher(env)
	if err != nil {
		return Result{}, err
	}
	res := Result{RequestID: id, Env: env, Kind: kindDeploy, Repo: req.Repo, PR: req.PR, HeadSHA: req.HeadSHA, Requester: req.Requester}
	if err := d.setRequestState(ctx, id, reqRunning, nil); err != nil {
		return res, err
	}
	if env == EnvProd {
		// The base may have moved while the request waited.
		if err := d.checkProd(ctx, pub, req); err != nil {
			d.abortQueued(ctx, id, err.Error())
			st := reqFailed
			if _, ok := IsRefusal(err); ok {
				st = reqRefused
			}
			res.Error = err.Error()
			d.setRequestState(ctx, id, st, &res)
			return res, err
		}
	}
	var firstErr error
	for i, it := range req.Items {
		p, _ := d.TargetPath(env, it.Target) // checked by admit
		ir := ItemResult{Target: it.Target, Path: p, Digest: it.Digest, State: stQueued}
		if firstErr != nil {
			ir.State, ir.Error = stAborted, "not attempted because an earlier target failed"
			d.setItem(ctx, id, i, &ir)
			res.Items = append(res.Items, ir)
			continue
		}
		if err := d.runItem(ctx, env, pub, id, i, req, it, &ir); err != nil {
			firstErr = err
		}
		res.Items = append(res.Items, ir)
	}
	if err := d.FlushChangelog(ctx); err != nil {
		res.Notes = append(res.Notes, "The changelog commit is pending and will be retried: "+oneLine(err.Error()))
	}
	st := reqDone
	if firstErr != nil {
		st = reqFailed
	}
	if err := d.setRequestState(ctx, id, st, &res); err != nil && firstErr == nil {
		firstErr = err
	}
	return res, firstErr
}

// runItem publishes one item in one transaction. ir is filled as it goes.
func (d *Engine) runItem(ctx context.Context, env string, pub publish.Publisher, id int64, idx int, req Request, it Item, ir *ItemResult) error {
	fail := func(step string, err error) error {
		ir.State, ir.FailedStep, ir.Error = stAborted, step, err.Error()
		if jerr := d.setItem(ctx, id, idx, ir); jerr != nil {
			err = errors.Join(err, jerr)
		}
		return &StepError{Env: env, Target: it.Target, Step: step, Err: err}
	}
	tags, err := pub.Tags(ctx)
	if err != nil {
		return fail("list tags", err)
	}
	cur, _, err := pub.Current(ctx)
	if err != nil {
		return fail("read current tree", err)
	}
	prev, err := ReadLineage(filepath.Join(cur, filepath.FromSlash(ir.Path)))
	if err != nil {
		return fail("read lineage", err)
	}
	rebaseFrom, err := d.rebaseSource(ctx, env, it, ir.Path, prev)
	if err != nil {
		return fail("rebase", err)
	}
	if rebaseFrom != "" {
		prev = it.BaseLineage
	}
	base, err := TagName(it.Target, req.PR, req.HeadSHA)
	if err != nil {
		return fail("tag", err)
	}
	ir.Tag = uniqueTag(base, tags)
	ir.LineageBefore, ir.LineageAfter = prev, NextLineage(prev, it.Digest)
	// The tag must be durable before the transaction opens: it is how
	// Recover learns whether a crashed deploy got published.
	if err := d.setItem(ctx, id, idx, ir); err != nil {
		return fail("journal", err)
	}

	tx, err := pub.Transaction(ctx, ir.Path)
	if err != nil {
		return fail("open transaction", err)
	}
	d.failpointHere("after-tx-open")
	abort := func(step string, err error) error {
		if aerr := tx.Abort(bg(ctx)); aerr != nil {
			err = fmt.Errorf("%w (and the abort failed: %v)", err, aerr)
		}
		return fail(step, err)
	}
	ir.State = stTxOpen
	if err := d.setItem(ctx, id, idx, ir); err != nil {
		return abort("journal", err)
	}
	d.failpointHere("before-apply")
	if rtx, ok := tx.(publish.RemoteTx); ok {
		// The tree is on the publisher host (remote.go).
		if err := d.applyRemote(ctx, rtx, rebaseFrom, it.Digest, ir.LineageAfter); err != nil {
			return abort("apply", err)
		}
	} else {
		if rebaseFrom != "" {
			if err := replaceTree(tx.Dir(), rebaseFrom); err != nil {
				return abort("rebase", err)
			}
		}
		if err := d.artifacts.ApplyDigest(ctx, it.Digest, tx.Dir()); err != nil {
			return abort("apply", err)
		}
		if err := writeMarkers(tx.Dir(), ir.LineageAfter, it.Digest); err != nil {
			return abort("apply", fmt.Errorf("write lineage: %w", err))
		}
	}
	d.failpointHere("after-apply")
	ir.State = stApplied
	if err := d.setItem(ctx, id, idx, ir); err != nil {
		return abort("journal", err)
	}
	d.failpointHere("before-publish")
	rev, err := tx.Publish(ctx, ir.Tag, publishMessage(req, it, ir))
	if err != nil {
		// A publish can fail after its commit point (e.g. a late fsync
		// error); the tag list is the truth.
		if r, ok := tagRevision(bg(ctx), pub, ir.Tag); ok {
			rev = r
		} else {
			return abort("publish", err)
		}
	}
	d.failpointHere("after-publish")
	ir.State, ir.Revision = stPublished, rev
	if err := d.markPublished(ctx, env, id, idx, req, it, ir); err != nil {
		ir.Error = err.Error()
	}
	d.failpointHere("after-journal-published")
	return d.verifyItem(ctx, env, pub, id, idx, it, ir)
}

func tagRevision(ctx context.Context, pub publish.Publisher, tag string) (publish.Revision, bool) {
	if tag == "" {
		return 0, false
	}
	tags, err := pub.Tags(ctx)
	if err != nil {
		return 0, false
	}
	for _, t := range tags {
		if t.Name == tag {
			return t.Revision, true
		}
	}
	return 0, false
}

// markPublished journals the publish and queues its changelog entry in
// one database transaction, so neither can exist without the other.
func (d *Engine) markPublished(ctx context.Context, env string, id int64, idx int, req Request, it Item, ir *ItemResult) error {
	return d.execTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`UPDATE deploy_items SET tag = ?, lineage_before = ?, lineage_after = ?, state = ?, revision = ?, updated = ? WHERE request_id = ? AND idx = ?`,
			ir.Tag, ir.LineageBefore, ir.LineageAfter, stPublished, int64(ir.Revision), d.now(), id, idx); err != nil {
			return err
		}
		return d.queueChangelog(tx, d.publishEntry(env, req, it, ir))
	})
}

// verifyItem runs the verifier on the published tree; the tree stays
// published whatever it says (a failed test is fixed by a new deploy or a
// rollback, not by pretending).
func (d *Engine) verifyItem(ctx context.Context, env string, pub publish.Publisher, id int64, idx int, it Item, ir *ItemResult) error {
	var passed bool
	var summary string
	cur, _, err := pub.Current(ctx)
	if err == nil {
		passed, summary, err = d.verify.Verify(ctx, env, it.Target, filepath.Join(cur, filepath.FromSlash(ir.Path)))
	}
	d.failpointHere("after-verify")
	ir.VerifySummary = summary
	switch {
	case err != nil:
		ir.State, ir.FailedStep, ir.Error = stFailed, "verify", err.Error()
	case !passed:
		ir.State, ir.FailedStep = stFailed, "verify"
	default:
		ir.State, ir.VerifyPassed = stVerified, true
	}
	if jerr := d.setItem(ctx, id, idx, ir); jerr != nil {
		return &StepError{Env: env, Target: it.Target, Step: "journal", Err: jerr}
	}
	if ir.State != stVerified {
		if err == nil {
			err = fmt.Errorf("tests failed: %s", summary)
		}
		return &StepError{Env: env, Target: it.Target, Step: "verify", Err: err}
	}
	return nil
}

// publishMessage is the tag description: it names the PR, its author and
// who approved the deploy. Those come from GitHub logins; control
// characters are dropped so the message stays one line for cvmfs_server.
func publishMessage(req Request, it Item, ir *ItemResult) string {
	msg := fmt.Sprintf("%s PR #%d (%s@%s) by %s, approved by %s: artifact %s, lineage %s",
		it.Target, req.PR, req.Repo, short(req.HeadSHA, 7), req.Author, req.approver(), it.Digest, ir.LineageAfter)
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, msg)
}

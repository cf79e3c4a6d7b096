package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/publish"
)

// Recovered is one request Recover settled.
type Recovered struct {
	RequestID int64
	Env       string
	Kind      string // "deploy" or "rollback"
	// Outcome: "published" (the crash came after the publish; verification
	// was run again), "aborted" (the transaction was aborted, nothing was
	// published), "rolled-back", "rollback-failed", or "resumed" (the
	// request was still queued and has now run).
	Outcome string
	Result  Result
	Err     error
}

// Recover settles what a crash left behind. Call it once on start, before
// serving requests. For each environment it first lets the publisher
// recover (an open transaction is aborted, or finished if it had reached
// its commit point). Then every deploy that was running is settled: an
// item whose tag the publisher has was published, so it is journalled as
// such and verified again; an item that was mid-transaction is journalled
// as aborted with the step it was in; the items after it are not
// attempted. A rollback that was running is done if its tag is now the
// newest, failed otherwise. Requests still queued are then run in their
// original order. Each PR is told through Notify.Outcome.
//
// It refuses to start (CheckLayouts) when an environment's layout no
// longer finds the trees compatbot published there.
func (d *Engine) Recover(ctx context.Context) ([]Recovered, error) {
	for _, env := range d.Envs() {
		if _, err := d.targets[env].Recover(ctx); err != nil {
			return nil, fmt.Errorf("recover %s: %w", env, err)
		}
	}
	if err := d.CheckLayouts(ctx); err != nil {
		return nil, err
	}
	type reqRow struct {
		id                  int64
		env, kind, st, body string
		rbTag, fromTag      string
	}
	rows, err := d.db.QueryContext(ctx, `SELECT id, env, kind, state, request, rollback_tag, from_tag FROM deploy_requests WHERE state IN (?, ?) ORDER BY id`, reqRunning, reqQueued)
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	var todo []reqRow
	for rows.Next() {
		var r reqRow
		if err := rows.Scan(&r.id, &r.env, &r.kind, &r.st, &r.body, &r.rbTag, &r.fromTag); err != nil {
			rows.Close()
			return nil, err
		}
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	var out []Recovered
	type resume struct {
		reqRow
		t   *ticket
		req Request
	}
	var queued []resume
	for _, r := range todo {
		var req Request
		if err := json.Unmarshal([]byte(r.body), &req); err != nil {
			return out, fmt.Errorf("recover: request %d: %w", r.id, err)
		}
		pub, ok := d.targets[r.env]
		if !ok {
			d.setRequestState(ctx, r.id, reqAborted, nil)
			continue
		}
		if r.st == reqQueued {
			// Queue it now, before anything new can arrive, so the order
			// survives the restart.
			t, _, err := d.enqueue(r.env, func() (int64, error) { return r.id, nil })
			if err != nil {
				return out, err
			}
			queued = append(queued, resume{r, t, req})
			continue
		}
		var rec Recovered
		if r.kind == kindRollback {
			rec = d.recoverRollback(ctx, r.env, pub, r.id, req, r.rbTag, r.fromTag)
		} else {
			rec = d.recoverDeploy(ctx, r.env, pub, r.id, req)
		}
		out = append(out, rec)
		if d.notify != nil {
			d.notify.Outcome(ctx, r.env, req, rec.Result)
		}
	}
	for _, q := range queued {
		if err := d.waitTurn(ctx, q.env, q.t); err != nil {
			return out, err
		}
		var res Result
		var err error
		if q.kind == kindRollback {
			res, err = d.runRollback(ctx, q.env, d.targets[q.env], q.id, q.rbTag, q.req)
		} else {
			res, err = d.run(ctx, q.env, q.id, q.req)
		}
		d.release(q.env, q.t)
		if res.Kind == "" {
			// Refused before it ran: still a result the PR can be shown.
			res = Result{RequestID: q.id, Env: q.env, Kind: q.kind, Repo: q.req.Repo, PR: q.req.PR, HeadSHA: q.req.HeadSHA, Requester: q.req.Requester}
			if err != nil {
				res.Error = err.Error()
			}
		}
		res.Recovered = true
		out = append(out, Recovered{RequestID: q.id, Env: q.env, Kind: q.kind, Outcome: "resumed", Result: res, Err: err})
		if d.notify != nil {
			d.notify.Outcome(ctx, q.env, q.req, res)
		}
	}
	// A failed commit stays pending; the next flush retries it.
	_ = d.FlushChangelog(ctx)
	return out, nil
}

// stepUnderWay names the step an item was in when the journal stopped at
// state st.
func stepUnderWay(st string) string {
	switch st {
	case stTxOpen:
		return "apply"
	case stApplied:
		return "publish"
	default:
		return "open transaction"
	}
}

func (d *Engine) recoverDeploy(ctx context.Context, env string, pub publish.Publisher, id int64, req Request) Recovered {
	res := Result{RequestID: id, Env: env, Kind: kindDeploy, Repo: req.Repo, PR: req.PR, HeadSHA: req.HeadSHA, Requester: req.Requester, Recovered: true}
	rec := Recovered{RequestID: id, Env: env, Kind: kindDeploy, Outcome: "aborted"}
	items, err := d.loadItems(ctx, id)
	if err != nil {
		rec.Err = err
		rec.Result = res
		return rec
	}
	tags, tagErr := pub.Tags(ctx)
	stopped := false
	var firstErr error
	for i, ir := range items {
		if i >= len(req.Items) {
			break
		}
		it := req.Items[i]
		switch ir.State {
		case stVerified, stFailed, stAborted:
			res.Items = append(res.Items, ir)
			continue
		}
		if stopped {
			ir.State, ir.Error = stAborted, "not attempted: compatbot restarted during the deploy; run the deploy again"
			d.setItem(ctx, id, i, &ir)
			res.Items = append(res.Items, ir)
			continue
		}
		published := ir.State == stPublished
		if !published && ir.Tag != "" && tagErr == nil {
			for _, t := range tags {
				if t.Name == ir.Tag {
					published, ir.Revision = true, t.Revision
				}
			}
		}
		if published {
			if ir.State != stPublished {
				ir.State = stPublished
				if err := d.markPublished(ctx, env, id, i, req, it, &ir); err != nil {
					ir.Error = err.Error()
				}
			}
			rec.Outcome = "published"
			if err := d.verifyItem(ctx, env, pub, id, i, it, &ir); err != nil && firstErr == nil {
				firstErr = err
			}
		} else {
			step := stepUnderWay(ir.State)
			why := "compatbot stopped during this step (crash or restart); the open transaction was aborted on restart"
			if tagErr != nil {
				why += fmt.Sprintf(" (the tag list could not be read: %v)", tagErr)
			}
			ir.State, ir.FailedStep, ir.Error = stAborted, step, why
			d.setItem(ctx, id, i, &ir)
			stopped = true
			if firstErr == nil {
				firstErr = &StepError{Env: env, Target: it.Target, Step: step, Err: fmt.Errorf("%s", why)}
			}
		}
		res.Items = append(res.Items, ir)
	}
	st := reqDone
	if !res.OK() {
		st = reqFailed
	}
	d.setRequestState(ctx, id, st, &res)
	rec.Result, rec.Err = res, firstErr
	return rec
}

func (d *Engine) recoverRollback(ctx context.Context, env string, pub publish.Publisher, id int64, req Request, tag, fromTag string) Recovered {
	res := Result{RequestID: id, Env: env, Kind: kindRollback, Repo: req.Repo, PR: req.PR, Requester: req.Requester, Tag: tag, FromTag: fromTag, Recovered: true}
	rec := Recovered{RequestID: id, Env: env, Kind: kindRollback}
	tags, err := pub.Tags(ctx)
	if err == nil && len(tags) > 0 && tags[0].Name == tag {
		// The rollback had been refused if tag was already newest, so
		// tag at the top means it happened.
		res.Revision = tags[0].Revision
		rec.Outcome = "rolled-back"
		rec.Result, rec.Err = d.finishRollback(ctx, env, pub, id, &res)
		rec.Result.Recovered = true
		return rec
	}
	res.Error = "compatbot stopped (crash or restart) before the rollback completed; the published tree is unchanged. Run the rollback again."
	if err != nil {
		res.Error += fmt.Sprintf(" (the tag list could not be read: %v)", err)
	}
	d.setRequestState(ctx, id, reqFailed, &res)
	rec.Outcome, rec.Result = "rollback-failed", res
	rec.Err = &StepError{Env: env, Step: "rollback", Err: fmt.Errorf("%s", res.Error)}
	return rec
}

func (d *Engine) loadItems(ctx context.Context, id int64) ([]ItemResult, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT version, os, arch, path, digest, tag, lineage_before, lineage_after, state, failed_step, error, revision, verify_summary
		FROM deploy_items WHERE request_id = ? ORDER BY idx`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ItemResult
	for rows.Next() {
		var ir ItemResult
		var rev int64
		if err := rows.Scan(&ir.Target.Version, &ir.Target.OS, &ir.Target.Arch, &ir.Path, &ir.Digest, &ir.Tag, &ir.LineageBefore, &ir.LineageAfter,
			&ir.State, &ir.FailedStep, &ir.Error, &rev, &ir.VerifySummary); err != nil {
			return nil, err
		}
		ir.Revision = publish.Revision(rev)
		ir.VerifyPassed = ir.State == stVerified
		out = append(out, ir)
	}
	return out, rows.Err()
}

// CheckLayouts compares each environment's layout with where the journal
// says its targets were last published. A target whose recorded path is
// not the layout's is an error when the current tree still has it there
// and has nothing at the layout's path: builds would start from an empty
// lower layer, deploys would publish a second copy beside the first and
// production's promotion rule would read no lineage. That is what an
// upgrade from compatbot's fixed layout (publish.PreTemplateLayout) to
// the templated default does to a repository published before it, unless
// the config names the old layout. A tree moved in the repository (found
// at the layout's path) is no error.
func (d *Engine) CheckLayouts(ctx context.Context) error {
	for _, env := range d.Envs() {
		rows, err := d.db.QueryContext(ctx, `SELECT i.version, i.os, i.arch, i.path FROM deploy_items i
			WHERE i.env = ? AND i.revision > 0 AND i.request_id = (SELECT MAX(j.request_id) FROM deploy_items j
			  WHERE j.env = i.env AND j.version = i.version AND j.os = i.os AND j.arch = i.arch AND j.revision > 0)
			ORDER BY i.version, i.os, i.arch`, env)
		if err != nil {
			return fmt.Errorf("check the layout of %s: %w", env, err)
		}
		type rec struct {
			t    sets.Target
			path string
		}
		var recs []rec
		for rows.Next() {
			var r rec
			if err := rows.Scan(&r.t.Version, &r.t.OS, &r.t.Arch, &r.path); err != nil {
				rows.Close()
				return err
			}
			recs = append(recs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var cur string
		for _, r := range recs {
			want, err := d.TargetPath(env, r.t)
			if err != nil || want == r.path {
				continue
			}
			if cur == "" {
				if cur, _, err = d.targets[env].Current(ctx); err != nil {
					return fmt.Errorf("check the layout of %s: %w", env, err)
				}
			}
			if isDir(filepath.Join(cur, filepath.FromSlash(want))) || !isDir(filepath.Join(cur, filepath.FromSlash(r.path))) {
				continue
			}
			hint := "the layout it was published with"
			if old, err := publish.MustParseLayout(publish.PreTemplateLayout).Path(r.t); err == nil && old == r.path {
				hint = fmt.Sprintf("%q (compatbot's layout before it became a template)", publish.PreTemplateLayout)
			}
			return fmt.Errorf("%s: %s is published at %s, but the layout %q puts it at %s, where the published tree has nothing: "+
				"set the target's layout to %s, or move the trees in the repository first",
				env, r.t, r.path, d.layouts[env].String(), want, hint)
		}
	}
	return nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

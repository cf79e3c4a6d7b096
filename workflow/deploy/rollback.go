package deploy

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/compatbot/compatbot/workflow/changelog"
	"github.com/compatbot/compatbot/workflow/publish"
)

// Rollback republishes env's tree as it was at tag, removing newer tags
// (CVMFS's rollback: the whole repository goes back, every target in it).
// tag "" means the tag before the newest one, i.e. the state before the
// last deploy. Lineages come back with the tree, since they live in it.
//
// Errors: *Refusal for an unknown tag, the newest tag, or nothing to roll
// back to; otherwise the Result says what failed.
func (d *Engine) Rollback(ctx context.Context, env, tag, user string) (Result, error) {
	return d.RollbackFor(ctx, env, tag, Request{Requester: user})
}

// RollbackFor is Rollback asked from a PR: from.Requester is the user,
// from.Repo and from.PR say where the command came from, so queue and
// recovery notifications reach that PR.
func (d *Engine) RollbackFor(ctx context.Context, env, tag string, from Request) (Result, error) {
	user := from.Requester
	pub, err := d.publisher(env)
	if err != nil {
		return Result{}, err
	}
	if tag != "" {
		if err := publish.ValidateTag(tag); err != nil {
			return Result{}, &Refusal{Reason: "Cannot roll back: " + err.Error()}
		}
	}
	if user == "" {
		return Result{}, &Refusal{Reason: "Cannot roll back: the request names no user."}
	}
	t, pos, err := d.enqueue(env, func() (int64, error) { return d.insertRollback(ctx, env, tag, from) })
	if err != nil {
		return Result{}, fmt.Errorf("rollback: queue: %w", err)
	}
	if pos > 0 && d.notify != nil {
		d.notify.Queued(ctx, env, from, pos)
	}
	if err := d.waitTurn(ctx, env, t); err != nil {
		d.setRequestState(ctx, t.id, reqAborted, nil)
		return Result{}, err
	}
	defer d.release(env, t)
	return d.runRollback(ctx, env, pub, t.id, tag, from)
}

func (d *Engine) runRollback(ctx context.Context, env string, pub publish.Publisher, id int64, tag string, from Request) (Result, error) {
	res := Result{RequestID: id, Env: env, Kind: kindRollback, Repo: from.Repo, PR: from.PR, Requester: from.Requester, Tag: tag}
	refuse := func(reason string) (Result, error) {
		d.setRequestState(ctx, id, reqRefused, nil)
		return Result{}, &Refusal{Reason: reason}
	}
	failed := func(step string, err error) (Result, error) {
		res.Error = fmt.Sprintf("Failed at step %s: %v", step, err)
		d.setRequestState(ctx, id, reqFailed, &res)
		return res, &StepError{Env: env, Step: step, Err: err}
	}
	tags, err := pub.Tags(ctx)
	if err != nil {
		return failed("list tags", err)
	}
	if len(tags) == 0 {
		return refuse(fmt.Sprintf("Cannot roll back `%s`: it has no tags.", env))
	}
	if tag == "" {
		if len(tags) < 2 {
			return refuse(fmt.Sprintf("Cannot roll back `%s`: `%s` is its only tag, there is nothing before it.", env, tags[0].Name))
		}
		tag = tags[1].Name
	} else {
		found := false
		for _, t := range tags {
			found = found || t.Name == tag
		}
		if !found {
			return refuse(fmt.Sprintf("Cannot roll back `%s` to `%s`: no such tag. Newest tags: %s.", env, tag, tagList(tags, 5)))
		}
	}
	if tag == tags[0].Name {
		return refuse(fmt.Sprintf("Cannot roll back `%s` to `%s`: it is already the newest tag.", env, tag))
	}
	res.Tag, res.FromTag = tag, tags[0].Name
	// Before the rollback: with the resolved tag journalled, Recover can
	// tell a finished rollback (tag newest) from one that never happened.
	if _, err := d.db.ExecContext(bg(ctx), `UPDATE deploy_requests SET state = ?, rollback_tag = ?, from_tag = ?, updated = ? WHERE id = ?`,
		reqRunning, tag, res.FromTag, d.now(), id); err != nil {
		return failed("journal", err)
	}
	rev, err := pub.Rollback(ctx, tag)
	if err != nil {
		return failed("rollback", err)
	}
	d.failpointHere("after-rollback")
	res.Revision = rev
	return d.finishRollback(ctx, env, pub, id, &res)
}

// finishRollback journals a completed rollback with its changelog entries
// (one per version whose targets' lineage the rollback changed, or the
// tag's own version).
func (d *Engine) finishRollback(ctx context.Context, env string, pub publish.Publisher, id int64, res *Result) (Result, error) {
	targets, err := d.deployedTargets(bg(ctx), env)
	if err != nil {
		return *res, err
	}
	cur, _, err := pub.Current(bg(ctx))
	if err != nil {
		return *res, err
	}
	versions := map[string]bool{}
	res.Items = nil
	for _, t := range targets {
		p, err := d.TargetPath(env, t)
		if err != nil {
			continue
		}
		lin, err := ReadLineage(filepath.Join(cur, filepath.FromSlash(p)))
		if err != nil {
			lin = "unreadable: " + err.Error()
		}
		res.Items = append(res.Items, ItemResult{Target: t, Path: p, LineageAfter: lin, State: stPublished})
	}
	var tagPR int
	var tagRepo, tagVersion, body string
	err = d.db.QueryRowContext(bg(ctx), `SELECT r.request, i.version FROM deploy_items i JOIN deploy_requests r ON r.id = i.request_id
		WHERE i.env = ? AND i.tag = ? ORDER BY i.request_id DESC LIMIT 1`, env, res.Tag).Scan(&body, &tagVersion)
	switch {
	case err == nil:
		var req Request
		if json.Unmarshal([]byte(body), &req) == nil {
			tagPR, tagRepo = req.PR, req.Repo
		}
		versions[tagVersion] = true
	case err != sql.ErrNoRows:
		return *res, err
	default:
		// A tag compatbot did not make: its version is the name's first
		// element if it follows compatbot's scheme.
		if v, _, ok := strings.Cut(res.Tag, "-"); ok && publish.ValidTargetName(v) == nil {
			versions[v] = true
		}
	}
	// The rollback also changes every target deployed after the tag.
	for _, v := range d.versionsAfter(bg(ctx), env, res.Tag, res.FromTag) {
		versions[v] = true
	}
	if tagRepo == "" {
		tagRepo = d.lastRepo(bg(ctx), env)
	}
	err = d.execTx(ctx, func(tx *sql.Tx) error {
		for v := range versions {
			e := changelog.Entry{Date: d.clock().UTC(), Version: v, Target: env, Action: changelog.Rollback, Tag: res.Tag,
				Revision: uint64(res.Revision), PR: tagPR, PRURL: d.prURL(tagRepo, tagPR), Deployer: res.Requester,
				Changes: map[string][]changelog.Change{}}
			if err := d.queueChangelog(tx, pendingEntry{Repo: tagRepo, Entry: e}); err != nil {
				return err
			}
		}
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		_, err = tx.Exec(`UPDATE deploy_requests SET state = ?, result = ?, updated = ? WHERE id = ?`, reqDone, string(b), d.now(), id)
		return err
	})
	if err != nil {
		return *res, fmt.Errorf("journal: rollback %d: %w", id, err)
	}
	if err := d.FlushChangelog(ctx); err != nil {
		res.Notes = append(res.Notes, "The changelog commit is pending and will be retried: "+oneLine(err.Error()))
	}
	return *res, nil
}

// versionsAfter lists the versions of the deploys tagged after tag up to
// fromTag in env: those the rollback undid.
func (d *Engine) versionsAfter(ctx context.Context, env, tag, fromTag string) []string {
	rows, err := d.db.QueryContext(ctx, `SELECT DISTINCT version FROM deploy_items WHERE env = ? AND tag != '' AND revision > 0 AND request_id >
		COALESCE((SELECT MAX(request_id) FROM deploy_items WHERE env = ? AND tag = ?), 0)
		AND request_id <= COALESCE((SELECT MAX(request_id) FROM deploy_items WHERE env = ? AND tag = ?), 0)`,
		env, env, tag, env, fromTag)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var vs []string
	for rows.Next() {
		var v string
		if rows.Scan(&v) == nil {
			vs = append(vs, v)
		}
	}
	return vs
}

func (d *Engine) lastRepo(ctx context.Context, env string) string {
	var body string
	if d.db.QueryRowContext(ctx, `SELECT request FROM deploy_requests WHERE env = ? AND kind = ? ORDER BY id DESC LIMIT 1`, env, kindDeploy).Scan(&body) != nil {
		return ""
	}
	var req Request
	if json.Unmarshal([]byte(body), &req) != nil {
		return ""
	}
	return req.Repo
}

func tagList(tags []publish.Tag, n int) string {
	var names []string
	for i, t := range tags {
		if i == n {
			names = append(names, "…")
			break
		}
		names = append(names, "`"+t.Name+"`")
	}
	return strings.Join(names, ", ")
}

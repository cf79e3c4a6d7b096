package prflow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/setscheck"
)

// merge.go is what a merge deploys. GitHub has moved the base branch by
// the time the merge is reported, by a merge commit, a squash or a
// rebase. What was tested is known by what it was built from (the set
// file's bytes), not by a commit: when the merge's set files equal the
// tested head's, the tested digests go to test. When another PR landed on
// the same target in between, the merge commit's sets are new: compatbot
// builds and tests the merge commit and deploys that once it passes, and
// never deploys an untested digest.

// mergeDiffers lists the targets of req whose set file at the merge
// commit is not the one the head's passing build was made from.
func (d *Deployer) mergeDiffers(ctx context.Context, req DeployRequest, outs map[sets.Target]Outcome) ([]sets.Target, error) {
	if !req.Merged || req.MergeSHA == "" || req.MergeSHA == req.HeadSHA {
		return nil, nil
	}
	cfg := req.ConfigSHA
	if cfg == "" {
		cfg = req.MergeSHA
	}
	merged, err := setscheck.LoadWith(ctx, req.GitDir, cfg, req.MergeSHA)
	if err != nil {
		return nil, fmt.Errorf("prflow: read the sets of merge commit %s: %w", short(req.MergeSHA), err)
	}
	var differ []sets.Target
	for _, t := range req.Targets {
		o, ok := outs[t]
		if !ok || o.SetDigest == "" {
			continue // refused as untested by items
		}
		var path string
		for _, sf := range merged.Sets {
			if sf.Target() == t {
				path = sf.Path
			}
		}
		if path == "" {
			differ = append(differ, t)
			continue
		}
		dg, err := setDigest(ctx, req.GitDir, req.MergeSHA, path)
		if err != nil {
			return nil, err
		}
		if dg != o.SetDigest {
			differ = append(differ, t)
		}
	}
	sort.Slice(differ, func(i, j int) bool { return differ[i].String() < differ[j].String() })
	return differ, nil
}

// buildMerge starts the build of the merge commit for the targets whose
// sets it changed and records the deploy to test that waits for it.
func (d *Deployer) buildMerge(ctx context.Context, req DeployRequest, differ []sets.Target) (string, error) {
	if d.Builds == nil {
		return "", &Refusal{Reason: fmt.Sprintf("the merge commit %s has other sets than the tested head %s for %s (another PR changed them in between), and this server does not build, so nothing tested can be deployed.",
			short(req.MergeSHA), short(req.HeadSHA), targetList(differ))}
	}
	var names []string
	for _, t := range differ {
		names = append(names, t.String())
	}
	reply := fmt.Sprintf("The base branch changed the sets of %s between the tested head %s and the merge (another PR landed on the same target), so the tested artifacts are not what the merge commit describes. compatbot is building and testing the merge commit %s; it goes to test when its builds pass, and this PR is told.",
		strings.Join(names, ", "), short(req.HeadSHA), short(req.MergeSHA))
	wait := req
	wait.HeadSHA, wait.MergeSHA, wait.Targets, wait.Line = req.MergeSHA, "", req.Targets, 1
	js, err := json.Marshal(wait)
	if err != nil {
		return "", err
	}
	if _, err := d.DB.ExecContext(ctx, `INSERT INTO prflow_deploy_calls(repo, comment_id, line, env, pr, head_sha, state, reply, request) VALUES(?,?,?,?,?,?, 'awaiting-build', ?, ?) ON CONFLICT DO NOTHING`,
		req.Repo, req.CommentID, req.Line, deploy.EnvTest, req.PR, req.MergeSHA, reply, string(js)); err != nil {
		return "", err
	}
	if err := d.Builds.Build(ctx, BuildRequest{Repo: req.Repo, Installation: req.Installation, PR: req.PR, BaseRef: req.BaseRef,
		BaseSHA: req.BaseSHA, HeadSHA: req.MergeSHA, ConfigSHA: req.ConfigSHA, GitDir: req.GitDir, Targets: req.Targets, Trigger: TriggerMerge}); err != nil {
		return "", fmt.Errorf("prflow: build merge commit %s: %w", short(req.MergeSHA), err)
	}
	return reply, nil
}

// MergeBuilt deploys a merge commit to test once every build of it has
// passed, or tells the PR that it will not be deployed when one did not.
// The Builder calls it after each merge build; it is also safe to call
// again (after a restart) for the same commit.
func (d *Deployer) MergeBuilt(ctx context.Context, repo string, pr int, sha string) {
	if err := d.mergeBuilt(ctx, repo, pr, sha); err != nil {
		d.logger().Error("prflow: deploying a built merge commit failed", "repo", repo, "pr", pr, "sha", sha, "error", err)
	}
}

func (d *Deployer) mergeBuilt(ctx context.Context, repo string, pr int, sha string) error {
	ctx = bgCtx(ctx)
	var commentID int64
	var line int
	var js string
	err := d.DB.QueryRowContext(ctx, `SELECT comment_id, line, request FROM prflow_deploy_calls WHERE repo=? AND pr=? AND head_sha=? AND state='awaiting-build'`, repo, pr, sha).
		Scan(&commentID, &line, &js)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	var req DeployRequest
	if err := json.Unmarshal([]byte(js), &req); err != nil {
		return fmt.Errorf("recorded merge deploy of %s: %w", short(sha), err)
	}
	outs, err := outcomes(ctx, d.DB, repo, pr, sha)
	if err != nil {
		return err
	}
	var failed []string
	for _, t := range req.Targets {
		o, ok := outs[t]
		if !ok || o.Conclusion == "" {
			return nil // still building: the last build to end deploys
		}
		if o.Conclusion != report.Success || o.Digest == "" {
			failed = append(failed, fmt.Sprintf("%s ended %s (%s)", t, o.Conclusion, o.Title))
		}
	}
	// Claim the wait, so two builds ending together deploy once.
	res, err := d.DB.ExecContext(ctx, `UPDATE prflow_deploy_calls SET state='done' WHERE repo=? AND comment_id=? AND line=? AND state='awaiting-build'`, repo, commentID, line)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	var body string
	if len(failed) > 0 {
		body = fmt.Sprintf("The merge commit %s was built and tested and did not pass, so it was **not deployed to test**:\n\n- %s\n\nFix it in a new PR.", short(sha), strings.Join(failed, "\n- "))
	} else {
		reply, err := d.deploy(ctx, deploy.EnvTest, req)
		var refusal *Refusal
		switch {
		case errors.As(err, &refusal):
			body = fmt.Sprintf("The merge commit %s passed its builds, but the deploy to test was refused: %s", short(sha), refusal.Reason)
		case err != nil:
			// Back to waiting: a restart (ResumeMergeDeploys) tries again.
			d.DB.ExecContext(ctx, `UPDATE prflow_deploy_calls SET state='awaiting-build' WHERE repo=? AND comment_id=? AND line=?`, repo, commentID, line)
			return err
		default:
			body = fmt.Sprintf("The merge commit %s passed its builds and tests and was deployed to test.\n\n%s", short(sha), reply)
		}
	}
	if d.Comments != nil {
		if err := d.Comments.Comment(ctx, repo, pr, body); err != nil {
			d.logger().Warn("prflow: telling the PR about its merge deploy failed", "repo", repo, "pr", pr, "error", err)
		}
	}
	return nil
}

// ResumeMergeDeploys finishes the merge deploys whose builds ended while
// compatbot was down. Call it on start, after the Builder's Recover.
func (d *Deployer) ResumeMergeDeploys(ctx context.Context) error {
	rows, err := d.DB.QueryContext(ctx, `SELECT repo, pr, head_sha FROM prflow_deploy_calls WHERE state='awaiting-build'`)
	if err != nil {
		return err
	}
	type key struct {
		repo string
		pr   int
		sha  string
	}
	var ks []key
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.repo, &k.pr, &k.sha); err != nil {
			rows.Close()
			return err
		}
		ks = append(ks, k)
	}
	rows.Close()
	for _, k := range ks {
		d.MergeBuilt(ctx, k.repo, k.pr, k.sha)
	}
	return nil
}

func targetList(ts []sets.Target) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.String())
	}
	return strings.Join(s, ", ")
}

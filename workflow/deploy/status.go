package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/publish"
)

// TargetStatus is what one environment has for one version/os-arch.
type TargetStatus struct {
	Env    string
	Target sets.Target
	Path   string
	// Revision is the repository's current revision.
	Revision publish.Revision
	// Tag and PR are of the deploy that produced the target's current
	// tree ("" and 0 when compatbot does not know it).
	Tag     string
	PR      int
	Digest  string
	Lineage string
	// SetsSHA is the sets commit whose set the target serves, Requester
	// who deployed it and Published when ("" and zero when unknown: a tree
	// compatbot did not publish, or one from before SetsSHA was kept).
	SetsSHA   string
	Requester string
	Published string
	// Pending counts requests queued or running in Env.
	Pending int
}

// Lineage is the current lineage of target in env: what a build for
// env must record as its BaseLineage.
func (d *Engine) Lineage(ctx context.Context, env string, target sets.Target) (string, error) {
	pub, err := d.publisher(env)
	if err != nil {
		return "", err
	}
	p, err := d.TargetPath(env, target)
	if err != nil {
		return "", err
	}
	cur, _, err := pub.Current(ctx)
	if err != nil {
		return "", err
	}
	return ReadLineage(filepath.Join(cur, filepath.FromSlash(p)))
}

// Status reports, for every environment and every target compatbot has
// deployed there, what is published now.
func (d *Engine) Status(ctx context.Context) ([]TargetStatus, error) {
	var out []TargetStatus
	for _, env := range d.Envs() {
		pub := d.targets[env]
		cur, rev, err := pub.Current(ctx)
		if err != nil {
			return nil, fmt.Errorf("status of %s: %w", env, err)
		}
		var pending int
		if err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM deploy_requests WHERE env = ? AND state IN (?, ?)`, env, reqQueued, reqRunning).Scan(&pending); err != nil {
			return nil, err
		}
		targets, err := d.deployedTargets(ctx, env)
		if err != nil {
			return nil, err
		}
		for _, t := range targets {
			p, err := d.TargetPath(env, t)
			if err != nil {
				continue
			}
			dir := filepath.Join(cur, filepath.FromSlash(p))
			ts := TargetStatus{Env: env, Target: t, Path: p, Revision: rev, Pending: pending}
			if ts.Lineage, err = ReadLineage(dir); err != nil {
				return nil, fmt.Errorf("status of %s %s: %w", env, t, err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(ArtifactFile))); err == nil {
				ts.Digest = strings.TrimSpace(string(b))
			}
			d.recordedDeploy(ctx, &ts)
			out = append(out, ts)
		}
	}
	return out, nil
}

// recordedDeploy fills in what the journal says about the deploy that
// made ts's tree (found by its lineage, so a rollback is followed).
func (d *Engine) recordedDeploy(ctx context.Context, ts *TargetStatus) {
	if ts.Lineage == "" {
		return
	}
	var body string
	var idx int
	err := d.db.QueryRowContext(ctx, `SELECT i.tag, i.idx, i.updated, r.request FROM deploy_items i JOIN deploy_requests r ON r.id = i.request_id
		WHERE i.env = ? AND i.version = ? AND i.os = ? AND i.arch = ? AND i.lineage_after = ? AND i.revision > 0 AND r.kind = 'deploy'
		ORDER BY i.request_id DESC LIMIT 1`, ts.Env, ts.Target.Version, ts.Target.OS, ts.Target.Arch, ts.Lineage).Scan(&ts.Tag, &idx, &ts.Published, &body)
	if err != nil {
		return
	}
	var req Request
	if json.Unmarshal([]byte(body), &req) != nil {
		return
	}
	ts.PR, ts.Requester = req.PR, req.Requester
	if idx >= 0 && idx < len(req.Items) {
		ts.SetsSHA = req.Items[idx].SetsSHA
	}
}

// Holds is what env serves for target now: its recorded state (see
// TargetStatus). A target never deployed has only Env, Target and Path.
func (d *Engine) Holds(ctx context.Context, env string, target sets.Target) (TargetStatus, error) {
	pub, err := d.publisher(env)
	if err != nil {
		return TargetStatus{}, err
	}
	p, err := d.TargetPath(env, target)
	if err != nil {
		return TargetStatus{}, err
	}
	cur, rev, err := pub.Current(ctx)
	if err != nil {
		return TargetStatus{}, err
	}
	ts := TargetStatus{Env: env, Target: target, Path: p, Revision: rev}
	dir := filepath.Join(cur, filepath.FromSlash(p))
	if ts.Lineage, err = ReadLineage(dir); err != nil {
		return ts, err
	}
	if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(ArtifactFile))); err == nil {
		ts.Digest = strings.TrimSpace(string(b))
	}
	d.recordedDeploy(ctx, &ts)
	return ts, nil
}

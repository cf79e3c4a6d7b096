package prflow

import (
	"context"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/setscheck"
)

// ports.go declares what the lifecycle asks of the world and what the
// world asks of it. bot/ implements the outward ports (check runs,
// Deployments, comments) for GitHub and calls the inward ones (Build,
// DeployTest, DeployProd, Rollback); workflow/ never imports bot/.

// BuildRequest asks for the PR's sets to be built after a passing sets
// check.
type BuildRequest struct {
	Repo         string
	Installation int64
	PR           int // 0 for a branch push without PR
	BaseRef      string
	// BaseSHA is the commit the PR's changes are measured from: its merge
	// base with the base branch, never the moving tip of that branch.
	BaseSHA string
	HeadSHA string
	// ConfigSHA is the commit of the default branch whose
	// .github/compatbot.yml decides where the sets live and how they are
	// built; nothing in the PR changes that.
	ConfigSHA string
	GitDir    string
	Targets   []sets.Target // changed by the PR
	// Arches narrows a /rebuild to these arches (empty: all targets).
	Arches []string
	// Trigger tells apart repeated builds of the same SHA ("" for the
	// push, "rerun:<delivery>", "rebuild:<comment>:<line>", "merge").
	Trigger string
	// Revisions, when set, are the sets the sets check read for this
	// head (with ConfigSHA's config, from BaseSHA): the builds use them
	// instead of reading the same trees again. Not stored: builds that
	// run after a restart read the sets anew.
	Revisions *setscheck.Revisions `json:"-"`
	// AllowLibcUpdate lets the compat tests accept a changed glibc: the PR
	// carries the label "compat: allow-libc-update", which only people
	// with triage rights or more can set (never the PR's content).
	AllowLibcUpdate bool
}

// DeployRequest is a /deploy command (or a merge) that passed the
// permission and staleness checks.
type DeployRequest struct {
	Repo         string // owner/name
	Installation int64
	PR           int
	HeadSHA      string // the PR head the command is pinned to
	BaseRef      string
	Merged       bool
	// MergeSHA is the commit the merge made on the base branch (merged
	// PRs only): when its sets differ from the tested head's, that commit
	// is what gets built, tested and deployed.
	MergeSHA string
	// BaseSHA and ConfigSHA are as in BuildRequest.
	BaseSHA   string
	ConfigSHA string
	Author    string // the PR's author
	Requester string // who wrote the command
	Env       string // "test" or "prod"
	// Targets are the version/os-arch sets the PR changes.
	Targets []sets.Target
	// GitDir holds the base branch and the PR head.
	GitDir string
	// CommentID and Line identify the command: a second call with the
	// same (Repo, CommentID, Line) is the same request (the handler may
	// call again after a crash). The deploy to test that a merge
	// triggers has CommentID -N for PR N and Line 0.
	CommentID int64
	Line      int
}

// RollbackRequest is a /rollback command that passed the permission check.
type RollbackRequest struct {
	Repo         string
	Installation int64
	PR           int
	Env          string // "test" or "prod"
	Tag          string // "" = the tag before the last deploy
	Requester    string
	CommentID    int64
	Line         int
}

// Refusal is the lifecycle's "no", with the reason to tell the PR
// verbatim (Markdown). Any other error is transient and the caller
// retries.
type Refusal struct {
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }

// CheckRef names one check run of a build.
type CheckRef struct {
	Repo         string
	Installation int64
	PR           int
	HeadSHA      string
	Name         string
	Trigger      string
}

// Reporter publishes the check runs of builds. Every method may be called
// again for the same run (after a crash or a failed call) and must then
// update that run rather than create another.
type Reporter interface {
	Queue(ctx context.Context, ref CheckRef) error
	Progress(ctx context.Context, ref CheckRef, c report.Check) error
	Complete(ctx context.Context, ref CheckRef, c report.Check) error
}

// Deployments records deploys where the repository's users look for them
// (GitHub Deployments).
type Deployments interface {
	CreateDeployment(ctx context.Context, repo, sha, environment, description string) (int64, error)
	SetDeploymentStatus(ctx context.Context, repo string, id int64, state, description string) error
}

// Commenter posts a comment on a PR.
type Commenter interface {
	Comment(ctx context.Context, repo string, pr int, body string) error
}

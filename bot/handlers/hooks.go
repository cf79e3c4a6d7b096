package handlers

import (
	"context"

	"github.com/compatbot/compatbot/sets"
)

// DeployRequest is a /deploy command that passed the permission and
// staleness checks.
type DeployRequest struct {
	Repo         string // owner/name
	Installation int64
	PR           int
	HeadSHA      string // the PR head the command is pinned to
	BaseRef      string
	Merged       bool
	Author       string // the PR's author
	Requester    string // who wrote the command
	Env          string // "test" or "prod"
	// Targets are the version/os-arch sets the PR changes.
	Targets []sets.Target
	// GitDir holds the base branch and the PR head.
	GitDir string
	// CommentID and Line identify the command: a Deployer must treat a
	// second call with the same (Repo, CommentID, Line) as the same request
	// (the handler may call again after a crash). The deploy to test that
	// a merge triggers has CommentID -N for PR N and Line 0.
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

// Deployer carries out deploys and rollbacks. The reply is Markdown posted
// on the PR. A *Refusal error is shown to the PR verbatim; any other error
// is transient and the delivery is retried.
type Deployer interface {
	DeployTest(ctx context.Context, req DeployRequest) (reply string, err error)
	DeployProd(ctx context.Context, req DeployRequest) (reply string, err error)
	Rollback(ctx context.Context, req RollbackRequest) (reply string, err error)
}

// Refusal is a Deployer's "no", with the reason to tell the PR.
type Refusal struct {
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }

// BuildRequest asks for the PR's sets to be built after a passing sets
// check.
type BuildRequest struct {
	Repo         string
	Installation int64
	PR           int // 0 for a branch push without PR
	BaseRef      string
	BaseSHA      string
	HeadSHA      string
	GitDir       string
	Targets      []sets.Target // changed by the PR
	// Arches narrows a /rebuild to these arches (empty: all targets).
	Arches []string
	// Trigger tells apart repeated builds of the same SHA ("" for the
	// push, "rerun:<delivery>", "rebuild:<comment>:<line>").
	Trigger string
}

// Builder starts builds. Build should return once the build is queued or
// done; like every step here it may be called again for the same request
// after a crash and must then not start a second build.
type Builder interface {
	Build(ctx context.Context, req BuildRequest) error
}

// TargetStatus describes the deploy targets for /status: for each target,
// version and os-arch the current tag, the drift between what is installed
// and the sets at ref (the default branch, read from gitDir), and the
// pending deploys, as Markdown.
type TargetStatus interface {
	TargetStatus(ctx context.Context, repo, gitDir, ref string) (markdown string, err error)
}

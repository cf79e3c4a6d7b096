package handlers

import (
	"context"

	"github.com/compatbot/compatbot/workflow/prflow"
)

// Deployer carries out deploys and rollbacks. The reply is Markdown posted
// on the PR. A *prflow.Refusal error is shown to the PR verbatim; any other error
// is transient and the delivery is retried.
type Deployer interface {
	DeployTest(ctx context.Context, req prflow.DeployRequest) (reply string, err error)
	DeployProd(ctx context.Context, req prflow.DeployRequest) (reply string, err error)
	Rollback(ctx context.Context, req prflow.RollbackRequest) (reply string, err error)
	// Requests lists PR pr's newest deploy and rollback commands, the
	// lifecycle's one record of them (for /status).
	Requests(ctx context.Context, repo string, pr, limit int) ([]prflow.CommandRecord, error)
}

// Builder starts builds. Build should return once the build is queued or
// done; like every step here it may be called again for the same request
// after a crash and must then not start a second build.
type Builder interface {
	Build(ctx context.Context, req prflow.BuildRequest) error
	// Requested reports whether Build was called for (repo, sha, trigger)
	// with at least one target, so a repeated delivery need not read the
	// repository again.
	Requested(ctx context.Context, repo, sha, trigger string) (bool, error)
}

// TargetStatus describes the deploy targets for /status: for each target,
// version and os-arch the current tag, the drift between what is installed
// and the sets at ref (the default branch, read from gitDir), and the
// pending deploys, as Markdown.
type TargetStatus interface {
	TargetStatus(ctx context.Context, repo, gitDir, ref string) (markdown string, err error)
}

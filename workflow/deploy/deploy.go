// Package deploy is compatbot's deploy state machine: it turns "publish PR
// N's tested artifacts to test / to prod" and "roll back" into publisher
// transactions, enforces the promotion rules, queues concurrent requests
// per environment, journals every step in the database so a crash is
// recovered on the next start, and keeps the history and the changelog.
//
// The environments are "test" and "prod"; each is one publish.Publisher.
// A request's items are published one transaction each, under the
// environment's layout (by default EESSI's
// versions/<version>/compat/<os>/<arch>), tagged
// <version>-<os>-<arch>-pr<N>-<sha7>.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/publish"
	"github.com/compatbot/compatbot/workflow/state"
)

// Environments.
const (
	EnvTest = "test"
	EnvProd = "prod"
)

// ArtifactSource applies built artifacts onto a tree. The deployer never
// picks an artifact by anything but its exact digest, so what is published
// is byte for byte what was built and tested.
type ArtifactSource interface {
	// ApplyDigest applies the artifact whose digest is exactly digest onto
	// dir (files written, deletions and opaque directories honoured).
	ApplyDigest(ctx context.Context, digest, dir string) error
}

// Verifier runs the compat tests against a published tree. passed=false
// with a summary is a test failure; err means the tests could not run.
type Verifier interface {
	Verify(ctx context.Context, env string, target sets.Target, publishedDir string) (passed bool, summary string, err error)
}

// ChangelogStore reads and commits a file of the managed repository (the
// bot implements it with GitHub's contents API).
type ChangelogStore interface {
	ReadFile(ctx context.Context, repo, branch, path string) ([]byte, error)
	CommitFile(ctx context.Context, repo, branch, path string, content []byte, message string) error
}

// Notifier tells a PR what happens to its request outside the call that
// made it: its place in the queue, and the outcome of a deploy finished or
// aborted by Recover after a restart. Errors are the notifier's to log.
type Notifier interface {
	Queued(ctx context.Context, env string, req Request, position int)
	Outcome(ctx context.Context, env string, req Request, res Result)
}

// Options configures an Engine.
type Options struct {
	DB *state.DB
	// Targets maps "test" and "prod" to their publishers.
	Targets map[string]publish.Publisher
	// Layouts maps "test" and "prod" to where their repositories keep a
	// target's tree; an environment without one uses
	// publish.DefaultLayout.
	Layouts   map[string]publish.Layout
	Artifacts ArtifactSource
	Verify    Verifier
	// Changelog may be nil: history is then kept in the database only.
	Changelog ChangelogStore
	// ChangelogBranch is the branch changelog/<version>.md is committed
	// to ("main" when empty).
	ChangelogBranch string
	// Notify may be nil.
	Notify Notifier
	// Clock defaults to time.Now.
	Clock func() time.Time
	// GitHubURL is the web base for PR links (default https://github.com).
	GitHubURL string
}

// Engine runs deploys and rollbacks. It is safe for concurrent use; one
// Engine per database.
type Engine struct {
	db        *state.DB
	targets   map[string]publish.Publisher
	layouts   map[string]publish.Layout
	artifacts ArtifactSource
	verify    Verifier
	clog      ChangelogStore
	branch    string
	notify    Notifier
	clock     func() time.Time
	ghURL     string
	failpoint string

	qmu    sync.Mutex
	queues map[string]*envQueue
	// clogMu serialises changelog flushes: two flushes racing on the same
	// file would each append to the content they read.
	clogMu sync.Mutex
}

// New checks opts and prepares the database tables.
func New(opts Options) (*Engine, error) {
	if opts.DB == nil {
		return nil, errors.New("deploy: Options.DB is nil")
	}
	if len(opts.Targets) == 0 {
		return nil, errors.New("deploy: Options.Targets is empty (want \"test\" and \"prod\")")
	}
	for env, p := range opts.Targets {
		if env != EnvTest && env != EnvProd {
			return nil, fmt.Errorf("deploy: Options.Targets: unknown environment %q (want \"test\" or \"prod\")", env)
		}
		if p == nil {
			return nil, fmt.Errorf("deploy: Options.Targets[%q] is nil", env)
		}
	}
	for env := range opts.Layouts {
		if _, ok := opts.Targets[env]; !ok {
			return nil, fmt.Errorf("deploy: Options.Layouts: environment %q has no target", env)
		}
	}
	if opts.Artifacts == nil {
		return nil, errors.New("deploy: Options.Artifacts is nil")
	}
	if opts.Verify == nil {
		return nil, errors.New("deploy: Options.Verify is nil")
	}
	d := &Engine{
		db: opts.DB, targets: opts.Targets, layouts: opts.Layouts, artifacts: opts.Artifacts, verify: opts.Verify,
		clog: opts.Changelog, branch: opts.ChangelogBranch, notify: opts.Notify, clock: opts.Clock,
		ghURL: opts.GitHubURL, queues: map[string]*envQueue{},
		failpoint: os.Getenv(FailpointEnv),
	}
	if d.branch == "" {
		d.branch = "main"
	}
	if d.clock == nil {
		d.clock = time.Now
	}
	if d.ghURL == "" {
		d.ghURL = "https://github.com"
	}
	if err := ensureSchema(context.Background(), d.db); err != nil {
		return nil, err
	}
	return d, nil
}

// Envs lists the configured environments in a stable order.
func (d *Engine) Envs() []string {
	var envs []string
	for env := range d.targets {
		envs = append(envs, env)
	}
	sort.Slice(envs, func(i, j int) bool { return envRank(envs[i]) < envRank(envs[j]) })
	return envs
}

func envRank(env string) int {
	if env == EnvTest {
		return 0
	}
	return 1
}

func (d *Engine) publisher(env string) (publish.Publisher, error) {
	p, ok := d.targets[env]
	if !ok {
		return nil, &Refusal{Reason: fmt.Sprintf("Environment `%s` is not configured (configured: %v).", env, d.Envs())}
	}
	return p, nil
}

// Request is one /deploy of a PR's build.
type Request struct {
	Repo    string // owner/name of the managed repository
	PR      int
	HeadSHA string
	Author  string // the PR's author
	// Requester is who asked for the deploy; the publish message names
	// them as the approver unless Approver is set.
	Requester string
	Approver  string
	Merged    bool
	Items     []Item
}

// Item is what the PR's build produced for one version/os-arch.
type Item struct {
	Target sets.Target
	// Digest is the artifact's content digest ("sha256:<hex>").
	Digest string
	// BaseLineage is the lineage of the tree the artifact was built on
	// (ReadLineage of the build's lower layer); "" for an empty tree.
	BaseLineage string
	// SetsSHA is the commit of the sets repository whose set the artifact
	// was built from: what the target holds once it is published.
	SetsSHA string `json:",omitempty"`
	// Changes are the package changes for the changelog (optional): the
	// sets diff from what the target holds to SetsSHA.
	Changes []sets.Change
	// BaseEnv is the environment whose tree the artifact was built on
	// when that is not the one it is deployed to: a rebuild on the
	// production base ("prod") deployed to test. See rebase.go.
	BaseEnv string `json:",omitempty"`
}

func (r Request) approver() string {
	if r.Approver != "" {
		return r.Approver
	}
	return r.Requester
}

// Refusal is a deploy or rollback compatbot will not do, with a reason a
// PR comment can show verbatim (Markdown).
type Refusal struct {
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }

// IsRefusal reports whether err is a *Refusal and returns it.
func IsRefusal(err error) (*Refusal, bool) {
	var r *Refusal
	ok := errors.As(err, &r)
	return r, ok
}

// StepError is a failure at one step of a deploy; the transaction was
// aborted unless Step is "verify" (the tree was published by then).
type StepError struct {
	Env    string
	Target sets.Target
	Step   string
	Err    error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("deploy to %s of %s failed at step %s: %v", e.Env, e.Target, e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

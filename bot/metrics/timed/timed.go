// Package timed times the lifecycle's long steps for /metrics: decorators
// of the ports the wiring hands the workflow (build.Runner,
// pipeline.Remote, prflow.Core, publish.Publisher). The workflow packages
// never import bot/, so the timing is put around them from outside; it
// lives apart from bot/metrics so what imports the registry (the intake)
// does not import the workflow.
package timed

import (
	"context"
	"time"

	"github.com/compatbot/compatbot/bot/metrics"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/prflow"
	"github.com/compatbot/compatbot/workflow/publish"
)

// Buckets of the long steps: a build takes minutes to hours, a deploy or a
// publish seconds to many minutes (CVMFS on a big tree).
var (
	buildBuckets   = []float64{10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400}
	publishBuckets = []float64{0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800}
)

func outcome(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// Runner times every build the Runner runs in
// compatbot_build_duration_seconds{outcome}: ok, failed (non-zero exit),
// timeout, cancelled, error (could not run).
type Runner struct {
	build.Runner
	hist *metrics.HistogramVec
}

// NewRunner wraps r, registering its histogram on reg.
func NewRunner(reg *metrics.Registry, r build.Runner) Runner {
	return Runner{Runner: r, hist: buildHist(reg)}
}

// Run implements build.Runner.
func (t Runner) Run(ctx context.Context, job build.Job) (build.Result, error) {
	start := time.Now()
	res, err := t.Runner.Run(ctx, job)
	t.hist.With(buildOutcome(res, err)).Observe(time.Since(start).Seconds())
	return res, err
}

// buildOutcome is the outcome label of a build: ok, failed (non-zero
// exit), timeout, cancelled or error (could not run).
func buildOutcome(res build.Result, err error) string {
	switch {
	case err != nil:
		return "error"
	case res.TimedOut:
		return "timeout"
	case res.Cancelled:
		return "cancelled"
	case !res.OK():
		return "failed"
	}
	return "ok"
}

func buildHist(reg *metrics.Registry) *metrics.HistogramVec {
	return reg.HistogramVec("compatbot_build_duration_seconds",
		"Duration of the build command of a PR's set, by outcome (ok, failed, timeout, cancelled, error).", buildBuckets, "outcome")
}

// Remote times the builds of a pipeline.Remote (a cluster) in the same
// compatbot_build_duration_seconds{outcome}: the build command's time on
// its node, as the node measured it, not the time the job waited in the
// scheduler's queue. A run that never started its build (refused, or left
// to its node by a shutdown) is not observed.
type Remote struct {
	pipeline.Remote
	hist *metrics.HistogramVec
}

// NewRemote wraps r, registering its histogram on reg.
func NewRemote(reg *metrics.Registry, r pipeline.Remote) Remote {
	return Remote{Remote: r, hist: buildHist(reg)}
}

// Execute implements pipeline.Remote.
func (t Remote) Execute(ctx context.Context, p pipeline.Params) (pipeline.Outcome, error) {
	out, err := t.Remote.Execute(ctx, p)
	switch {
	case err != nil:
		t.hist.With("error").Observe(0)
	case out.Build.Duration != 0: // 0: the build never started
		t.hist.With(buildOutcome(out.Build, nil)).Observe(out.Build.Duration.Seconds())
	}
	return out, err
}

// Core times deploys and rollbacks in
// compatbot_deploy_duration_seconds{env,kind,outcome}; the rest of the
// Core passes through.
type Core struct {
	prflow.Core
	hist *metrics.HistogramVec
}

// NewCore wraps c, registering its histogram on reg.
func NewCore(reg *metrics.Registry, c prflow.Core) Core {
	return Core{Core: c, hist: reg.HistogramVec("compatbot_deploy_duration_seconds",
		"Duration of a deploy or rollback request (verify, publish, record), by environment, kind and outcome (ok, error).", publishBuckets, "env", "kind", "outcome")}
}

func (t Core) observe(start time.Time, env, kind string, res deploy.Result, err error) {
	o := outcome(err)
	if err == nil && res.Error != "" {
		o = "refused"
	}
	t.hist.With(env, kind, o).Observe(time.Since(start).Seconds())
}

// DeployTest implements prflow.Core.
func (t Core) DeployTest(ctx context.Context, req deploy.Request) (deploy.Result, error) {
	start := time.Now()
	res, err := t.Core.DeployTest(ctx, req)
	t.observe(start, deploy.EnvTest, "deploy", res, err)
	return res, err
}

// DeployProd implements prflow.Core.
func (t Core) DeployProd(ctx context.Context, req deploy.Request) (deploy.Result, error) {
	start := time.Now()
	res, err := t.Core.DeployProd(ctx, req)
	t.observe(start, deploy.EnvProd, "deploy", res, err)
	return res, err
}

// RollbackFor implements prflow.Core.
func (t Core) RollbackFor(ctx context.Context, env, tag string, from deploy.Request) (deploy.Result, error) {
	start := time.Now()
	res, err := t.Core.RollbackFor(ctx, env, tag, from)
	t.observe(start, env, "rollback", res, err)
	return res, err
}

// Publisher times what a publisher does to its repository in
// compatbot_publish_duration_seconds{target,op,outcome}: op "publish" (a
// transaction's Publish) or "rollback".
type Publisher struct {
	publish.Publisher
	target string
	hist   *metrics.HistogramVec
}

// NewPublisher wraps p, the publisher of target ("test", "prod").
func NewPublisher(reg *metrics.Registry, target string, p publish.Publisher) Publisher {
	return Publisher{Publisher: p, target: target, hist: reg.HistogramVec("compatbot_publish_duration_seconds",
		"Duration of publishing a revision (cvmfs_server publish or the local backend's commit) and of rollbacks, by target, op and outcome.", publishBuckets, "target", "op", "outcome")}
}

// Transaction implements publish.Publisher; its Tx's Publish is timed.
func (t Publisher) Transaction(ctx context.Context, path string) (publish.Tx, error) {
	tx, err := t.Publisher.Transaction(ctx, path)
	if err != nil {
		return nil, err
	}
	return timedTx{Tx: tx, p: t}, nil
}

// Rollback implements publish.Publisher.
func (t Publisher) Rollback(ctx context.Context, tag string) (publish.Revision, error) {
	start := time.Now()
	rev, err := t.Publisher.Rollback(ctx, tag)
	t.hist.With(t.target, "rollback", outcome(err)).Observe(time.Since(start).Seconds())
	return rev, err
}

type timedTx struct {
	publish.Tx
	p Publisher
}

func (t timedTx) Publish(ctx context.Context, tag, message string) (publish.Revision, error) {
	start := time.Now()
	rev, err := t.Tx.Publish(ctx, tag, message)
	t.p.hist.With(t.p.target, "publish", outcome(err)).Observe(time.Since(start).Seconds())
	return rev, err
}

package metrics

import (
	"context"
	"time"

	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/prflow"
	"github.com/compatbot/compatbot/workflow/publish"
)

// The decorators here time the lifecycle's long steps from outside: the
// workflow packages never import bot/, so the wiring wraps their ports.

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

// TimedRunner times every build the Runner runs in
// compatbot_build_duration_seconds{outcome}: ok, failed (non-zero exit),
// timeout, cancelled, error (could not run).
type TimedRunner struct {
	build.Runner
	hist *HistogramVec
}

// NewTimedRunner wraps r, registering its histogram on reg.
func NewTimedRunner(reg *Registry, r build.Runner) TimedRunner {
	return TimedRunner{Runner: r, hist: reg.HistogramVec("compatbot_build_duration_seconds",
		"Duration of the build command of a PR's set, by outcome (ok, failed, timeout, cancelled, error).", buildBuckets, "outcome")}
}

// Run implements build.Runner.
func (t TimedRunner) Run(ctx context.Context, job build.Job) (build.Result, error) {
	start := time.Now()
	res, err := t.Runner.Run(ctx, job)
	o := "ok"
	switch {
	case err != nil:
		o = "error"
	case res.TimedOut:
		o = "timeout"
	case res.Cancelled:
		o = "cancelled"
	case !res.OK():
		o = "failed"
	}
	t.hist.With(o).Observe(time.Since(start).Seconds())
	return res, err
}

// TimedCore times deploys and rollbacks in
// compatbot_deploy_duration_seconds{env,kind,outcome}; the rest of the
// Core passes through.
type TimedCore struct {
	prflow.Core
	hist *HistogramVec
}

// NewTimedCore wraps c, registering its histogram on reg.
func NewTimedCore(reg *Registry, c prflow.Core) TimedCore {
	return TimedCore{Core: c, hist: reg.HistogramVec("compatbot_deploy_duration_seconds",
		"Duration of a deploy or rollback request (verify, publish, record), by environment, kind and outcome (ok, error).", publishBuckets, "env", "kind", "outcome")}
}

func (t TimedCore) observe(start time.Time, env, kind string, res deploy.Result, err error) {
	o := outcome(err)
	if err == nil && res.Error != "" {
		o = "refused"
	}
	t.hist.With(env, kind, o).Observe(time.Since(start).Seconds())
}

// DeployTest implements prflow.Core.
func (t TimedCore) DeployTest(ctx context.Context, req deploy.Request) (deploy.Result, error) {
	start := time.Now()
	res, err := t.Core.DeployTest(ctx, req)
	t.observe(start, deploy.EnvTest, "deploy", res, err)
	return res, err
}

// DeployProd implements prflow.Core.
func (t TimedCore) DeployProd(ctx context.Context, req deploy.Request) (deploy.Result, error) {
	start := time.Now()
	res, err := t.Core.DeployProd(ctx, req)
	t.observe(start, deploy.EnvProd, "deploy", res, err)
	return res, err
}

// RollbackFor implements prflow.Core.
func (t TimedCore) RollbackFor(ctx context.Context, env, tag string, from deploy.Request) (deploy.Result, error) {
	start := time.Now()
	res, err := t.Core.RollbackFor(ctx, env, tag, from)
	t.observe(start, env, "rollback", res, err)
	return res, err
}

// TimedPublisher times what a publisher does to its repository in
// compatbot_publish_duration_seconds{target,op,outcome}: op "publish" (a
// transaction's Publish) or "rollback".
type TimedPublisher struct {
	publish.Publisher
	target string
	hist   *HistogramVec
}

// NewTimedPublisher wraps p, the publisher of target ("test", "prod").
func NewTimedPublisher(reg *Registry, target string, p publish.Publisher) TimedPublisher {
	return TimedPublisher{Publisher: p, target: target, hist: reg.HistogramVec("compatbot_publish_duration_seconds",
		"Duration of publishing a revision (cvmfs_server publish or the local backend's commit) and of rollbacks, by target, op and outcome.", publishBuckets, "target", "op", "outcome")}
}

// Transaction implements publish.Publisher; its Tx's Publish is timed.
func (t TimedPublisher) Transaction(ctx context.Context, path string) (publish.Tx, error) {
	tx, err := t.Publisher.Transaction(ctx, path)
	if err != nil {
		return nil, err
	}
	return timedTx{Tx: tx, p: t}, nil
}

// Rollback implements publish.Publisher.
func (t TimedPublisher) Rollback(ctx context.Context, tag string) (publish.Revision, error) {
	start := time.Now()
	rev, err := t.Publisher.Rollback(ctx, tag)
	t.hist.With(t.target, "rollback", outcome(err)).Observe(time.Since(start).Seconds())
	return rev, err
}

type timedTx struct {
	publish.Tx
	p TimedPublisher
}

func (t timedTx) Publish(ctx context.Context, tag, message string) (publish.Revision, error) {
	start := time.Now()
	rev, err := t.Tx.Publish(ctx, tag, message)
	t.p.hist.With(t.p.target, "publish", outcome(err)).Observe(time.Since(start).Seconds())
	return rev, err
}

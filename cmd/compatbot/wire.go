package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/compatbot/compatbot/bot/checks"
	"github.com/compatbot/compatbot/bot/config"
	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/bot/ghports"
	"github.com/compatbot/compatbot/bot/handlers"
	"github.com/compatbot/compatbot/bot/intake"
	"github.com/compatbot/compatbot/bot/metrics"
	"github.com/compatbot/compatbot/bot/metrics/timed"
	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/cluster"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/mirror"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/portage"
	"github.com/compatbot/compatbot/workflow/prflow"
	"github.com/compatbot/compatbot/workflow/publish"
	"github.com/compatbot/compatbot/workflow/state"
)

// wire.go is the processorFactory of serve and replay, the real parts: the webhook
// handlers with the GitHub client, the git cache, the builder (pipeline
// over the test target's published tree) and the deployer (deploy over
// the configured targets). It holds no logic of its own.

// targetConfig maps the config's target to the publisher's; a local
// target without a repository name lives in <data_dir>/targets/<env>.
func targetConfig(cfg *config.Config, env string, t config.Target) publish.TargetConfig {
	tc := publish.TargetConfig{Backend: t.Backend, Repository: t.Repository, BaseDir: t.BaseDir, CvmfsServer: t.CvmfsServer, PublisherHost: t.PublisherHost, SSHConfig: t.SSHConfig, CvmfsMount: t.CvmfsMount}
	if (tc.Backend == "" || tc.Backend == "local") && tc.Repository == "" {
		tc.BaseDir, tc.Repository = filepath.Join(cfg.DataDir, "targets"), env
	}
	return tc
}

// openTargets opens the test and prod publishers the config names (the
// local backend under data_dir/targets when it names none) and where each
// keeps a target's tree (its layout).
func openTargets(cfg *config.Config) (map[string]publish.Publisher, map[string]publish.Layout, error) {
	pubs, layouts := map[string]publish.Publisher{}, map[string]publish.Layout{}
	for env, t := range map[string]config.Target{deploy.EnvTest: cfg.Targets.Test, deploy.EnvProd: cfg.Targets.Prod} {
		l, err := publish.ParseLayout(t.Layout)
		if err != nil {
			return nil, nil, fmt.Errorf("targets.%s.layout: %w", env, err)
		}
		p, err := publish.Open(targetConfig(cfg, env, t))
		if err != nil {
			return nil, nil, fmt.Errorf("targets.%s: %w", env, err)
		}
		pubs[env], layouts[env] = p, l
	}
	return pubs, layouts, nil
}

func wireProcessor(cfg *config.Config, db *state.DB, mux *http.ServeMux) (_ intake.Processor, err error) {
	ctx := context.Background()
	log := slog.Default()
	clients, err := ghclient.New(ghclient.Config{APIURL: cfg.GitHub.APIURL, AppID: cfg.GitHub.AppID, PrivateKey: cfg.GitHub.PrivateKey, Token: cfg.GitHub.Token})
	if err != nil {
		return nil, err
	}
	store := &artifact.Store{Dir: filepath.Join(cfg.DataDir, "artifacts")}
	pubs, layouts, err := openTargets(cfg)
	if err != nil {
		return nil, err
	}
	// Timed for /metrics: GitHub calls and budgets, publishes, deploys and
	// builds (bot/metrics wraps the ports; workflow/ knows nothing of it).
	metrics.Default.RegisterGitHub(clients.Stats)
	for env, p := range pubs {
		pubs[env] = timed.NewPublisher(metrics.Default, env, p)
	}
	if err := prflow.EnsureSchema(ctx, db); err != nil {
		return nil, err
	}
	api := ghports.GitHubAPI{DB: db, Clients: clients, PublicURL: cfg.PublicURL, EnvironmentURLs: map[string]string{
		prflow.DeploymentEnv(deploy.EnvTest): cfg.Targets.Test.URL, prflow.DeploymentEnv(deploy.EnvProd): cfg.Targets.Prod.URL}}
	mux.Handle("GET /deployments/{id}", ghports.DeploymentLogHandler(db))
	pd := &prflow.Deployer{DB: db, Deployments: api, Comments: api, Logger: log}
	var b *prflow.Builder
	defer func() {
		if err != nil && b != nil {
			b.Close()
		}
	}()
	core, err := deploy.New(deploy.Options{DB: db, Targets: pubs, Layouts: layouts,
		Artifacts: deploy.StoreSource{Store: store}, Verify: deploy.ContentVerifier{Store: store},
		Changelog: api, ChangelogBranch: cfg.Changelog.Branch,
		Notify: prflow.Notifier{API: api, OnOutcome: pd.Recovered}})
	if err != nil {
		return nil, err
	}
	// A rollback is a GitHub Deployment too (ghports.RollbackDeployments).
	pd.Core = timed.NewCore(metrics.Default, ghports.RollbackDeployments{Core: core, API: api})
	// Only the process that owns data_dir settles what a crash left: a
	// replay next to a running server must not abort its transactions,
	// run its queued deploys or unmount its builds.
	owner := ownsDataDir(cfg.DataDir)
	if owner {
		recovered, err := core.Recover(ctx)
		if err != nil {
			return nil, fmt.Errorf("deploy recovery: %w", err)
		}
		for _, r := range recovered {
			log.Warn("deploy recovered after a restart", "recovered", fmt.Sprintf("%+v", r))
		}
	}

	opts := handlers.Options{DB: db, Clients: clients, GitCache: &gitrepo.Cache{Dir: filepath.Join(cfg.DataDir, "git")},
		PublicURL: cfg.PublicURL, Deployer: pd, Targets: deployTargets{d: core, pubs: pubs}, ObserveCalls: metrics.ObserveAPICalls, Logger: log}
	if len(cfg.Build.Command) == 0 && len(cfg.Build.EbuildRepos) == 0 {
		log.Warn("build.command is not configured: PRs are checked but not built, and nothing can be deployed")
	} else {
		runs, err := checks.New(ctx, db, cfg.PublicURL)
		if err != nil {
			return nil, err
		}
		// build.ebuild_repos: real emerge (build.go's portageBuild).
		runner, bc, _, err := portageBuild(cfg.DataDir, cfg.Mirror.Dir, pipeline.BuildConfig{Command: cfg.Build.Command, Env: cfg.Build.Env,
			Timeout: cfg.Build.Timeout.D(), Sandbox: cfg.Build.Sandbox, DistDir: filepath.Join(cfg.DataDir, "distfiles")},
			portageConfig{Portage: cfg.Build.Portage, EbuildRepos: cfg.Build.EbuildRepos, Profile: cfg.Build.Profile, Distfiles: cfg.Build.Distfiles, EPrefix: cfg.Build.EPrefix})
		if err != nil {
			return nil, err
		}
		if runner == nil {
			runner = &build.LocalRunner{Arch: build.HostArch()}
		}
		remote, err := clusterRunners(cfg, runner)
		if err != nil {
			return nil, err
		}
		b, err = prflow.New(prflow.Options{DB: db, DataDir: filepath.Join(cfg.DataDir, "build"),
			Build: bc,
			Lower: publish.Lower{P: pubs[deploy.EnvTest], Layout: layouts[deploy.EnvTest], Empty: filepath.Join(cfg.DataDir, "empty-lower")},
			// A /deploy prod refused because production moved on rebuilds
			// on production's tree, with sources from the mirror only.
			ProdLower: publish.Lower{P: pubs[deploy.EnvProd], Layout: layouts[deploy.EnvProd], Empty: filepath.Join(cfg.DataDir, "empty-lower")},
			Store:     store,
			Runner:    timed.NewRunner(metrics.Default, runner),
			Remote:    remote,
			Reporter:  ghports.ChecksReporter{Runs: runs, Clients: clients},
			Mirror:    &mirror.Mirror{Dir: cfg.Mirror.Dir},
			LogURL:    func(id string) string { return cfg.PublicURL + "/builds/" + id + "/log" },
			// A merge whose sets differ from the tested head's is built,
			// and deployed to test once it passes.
			OnMergeBuilt: pd.MergeBuilt,
			Logger:       log,
		})
		if err != nil {
			return nil, err
		}
		opts.Builder = b
		pd.Rebuild, pd.Builds = b, b
		mux.Handle("GET /builds/{id}/log", b.LogHandler())
	}
	h, err := handlers.New(opts)
	if err != nil {
		return nil, err
	}
	mux.Handle("GET /reports/{id}", h.Reports())
	if b != nil && owner {
		n, err := b.Recover(ctx)
		if err != nil {
			return nil, fmt.Errorf("build recovery: %w", err)
		}
		if n > 0 {
			log.Warn("builds cut short by a restart run again", "builds", n)
		}
		if err := pd.ResumeMergeDeploys(ctx); err != nil {
			return nil, fmt.Errorf("merge deploy recovery: %w", err)
		}
	}
	return &wiredProcessor{Handler: h, builder: b}, nil
}

// clusterRunners are the arches build.runners builds on a cluster: a
// timed Slurm remote each, whose jobs run this executable's job mode
// (compatbot build-job) on the nodes unless the config names another
// path there. With real emerge (build.ebuild_repos) the nodes build with
// the same Portage, repositories and mirror. Arches with local: {} (or
// none) are not here: prflow builds the machine's own arch itself.
func clusterRunners(cfg *config.Config, runner build.Runner) (map[string]pipeline.Remote, error) {
	out := map[string]pipeline.Remote{}
	for arch, r := range cfg.Build.Runners {
		s := r.Slurm
		if s == nil {
			continue
		}
		bin := s.Compatbot
		if bin == "" {
			exe, err := os.Executable()
			if err != nil {
				return nil, fmt.Errorf("build.runners.%s.slurm: compatbot's own path: %w (set compatbot)", arch, err)
			}
			bin = exe
		}
		c := &cluster.Slurm{
			Slurm: build.Slurm{JobArgv: []string{bin, "build-job"}, Partition: s.Partition, Constraint: s.Constraint, Account: s.Account,
				TimeLimit: s.TimeLimit, BinDir: s.BinDir, Poll: s.Poll.D()},
			SharedDir: s.SharedDir, NodeSharedDir: s.NodeSharedDir, ScratchDir: s.ScratchDir,
		}
		if s.SlurmConf != "" {
			c.Env = []string{"SLURM_CONF=" + s.SlurmConf}
		}
		if pr, ok := runner.(*portage.Runner); ok {
			c.Portage = &cluster.Portage{Config: pr.Config, Distfiles: pr.Distfiles}
			if pr.Mirror != nil {
				c.Portage.MirrorDir = pr.Mirror.Dir
			}
		}
		if err := c.Check(); err != nil {
			return nil, fmt.Errorf("build.runners.%s.slurm: %w", arch, err)
		}
		out[arch] = timed.NewRemote(metrics.Default, c)
	}
	return out, nil
}

// wiredProcessor is the handler plus Close, which serve calls after the
// intake has stopped.
type wiredProcessor struct {
	*handlers.Handler
	builder *prflow.Builder // nil without build.command
}

// Close implements io.Closer: it stops the running builds, leaving them
// to Recover on the next start.
func (p *wiredProcessor) Close() error {
	if p.builder != nil {
		p.builder.Close()
	}
	return nil
}

// ownsDataDir reports whether this process holds data_dir's serve lock
// (serve takes it before wiring and writes its pid into it).
func ownsDataDir(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "serve.lock"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && pid == os.Getpid()
}

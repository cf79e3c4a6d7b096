// Package prflow is the pull-request lifecycle state compatbot keeps between
// GitHub events: which targets of which head SHA were built, with what
// outcome and artifact, and the glue that turns that record into deploys.
//
// Builder implements the bot's Builder port: every changed target of a PR gets its
// check run "compat <version> <os>-<arch>" queued at once, and the build
// (workflow/pipeline) runs in the background with a bounded number of
// concurrent builds. The outcome per (repo, PR, head SHA, target, trigger)
// is kept in the database, so a repeated Build after a crash starts nothing
// twice, and a build cut short by a crash or a shutdown runs again on
// Recover. Deployer carries out /deploy and /rollback on top of workflow/deploy
// and deploys only digests this package recorded as built and tested.
package prflow

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/compatbot/compatbot/internal/safefile"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/compattest"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/mirror"
	"github.com/compatbot/compatbot/workflow/overlay"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/setscheck"
	"github.com/compatbot/compatbot/workflow/state"
)

// Options configure a Builder.
type Options struct {
	DB *state.DB
	// DataDir (absolute) holds runs/<id>/ (logs, results) and the PR
	// checkouts the builds run in.
	DataDir string
	Build   pipeline.BuildConfig
	Tests   pipeline.TestConfig
	// Runner defaults to a build.LocalRunner for Arch.
	Runner build.Runner
	// Arch is the arch this host builds ("" = build.HostArch()); targets of
	// arches neither built here nor by a Remote get a skipped check run.
	Arch string
	// Remote builds the targets of an arch elsewhere, on a cluster node of
	// that arch (workflow/cluster): the whole run (overlay, build, tests,
	// artifact) happens there, with its files under the Remote's DataDir,
	// storage shared with the nodes. An arch here is built by its Remote
	// only, Arch's included. Remote runs do not take a build slot
	// (MaxConcurrent): the cluster's scheduler queues them. A remote run
	// keeps its run id across a restart, so the restarted service takes up
	// the job it submitted rather than submitting another.
	Remote   map[string]pipeline.Remote
	Lower    pipeline.Lower
	Store    pipeline.Store
	Reporter Reporter
	// Mirror, when set, receives the build's DISTDIR after a passing build,
	// and is the only source of a production-base rebuild.
	Mirror *mirror.Mirror
	// ProdLower is production's published tree (publish.Lower over the
	// prod publisher): the lower layer of a rebuild on the production
	// base. nil: such rebuilds fail saying so.
	ProdLower pipeline.Lower
	// MaxConcurrent bounds the local builds running at once (default 1).
	MaxConcurrent int
	// OnMergeBuilt, when set, is called after each build of a merge
	// commit (Trigger TriggerMerge) ends: the Deployer's MergeBuilt, which
	// deploys the merge once all its builds passed.
	OnMergeBuilt func(ctx context.Context, repo string, pr int, sha string)
	// LogURL links a run's live log (default: none).
	LogURL func(runID string) string
	Logger *slog.Logger
}

// Builder runs and records the builds of PRs. Create it with New; Close
// it on shutdown.
type Builder struct {
	opts Options
	log  *slog.Logger
	sem  chan struct{}

	base   context.Context
	stop   context.CancelCauseFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	active map[buildKey]*job
	closed bool
	// revs holds the sets the pushes' sets checks read (see remember);
	// revHits counts the builds that used them.
	revs    map[revKey]*setscheck.Revisions
	revHits atomic.Int64
}

type buildKey struct {
	repo                   string
	pr                     int
	sha                    string
	version, os, arch, trg string
}

type job struct {
	cancel context.CancelCauseFunc
}

// errShutdown stops builds when the server stops: they are not concluded
// but left to Recover. A remote build's job is left running
// (build.ErrDetach), for the restarted service to take up.
var errShutdown = fmt.Errorf("compatbot is shutting down: %w", build.ErrDetach)

var migrations = []string{`
CREATE TABLE prflow_builds (
	repo TEXT NOT NULL,
	pr INTEGER NOT NULL,
	head_sha TEXT NOT NULL,
	version TEXT NOT NULL,
	os TEXT NOT NULL,
	arch TEXT NOT NULL,
	trigger TEXT NOT NULL,
	installation INTEGER NOT NULL,
	base_ref TEXT NOT NULL,
	base_sha TEXT NOT NULL,
	git_dir TEXT NOT NULL,
	state TEXT NOT NULL,            -- queued, running, done
	run_id TEXT NOT NULL DEFAULT '',
	conclusion TEXT NOT NULL DEFAULT '',
	title TEXT NOT NULL DEFAULT '',
	digest TEXT NOT NULL DEFAULT '',
	base_lineage TEXT NOT NULL DEFAULT '',
	base_revision TEXT NOT NULL DEFAULT '',
	changes TEXT NOT NULL DEFAULT '[]',
	check_json TEXT NOT NULL DEFAULT '',
	reported INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	finished_at INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (repo, pr, head_sha, version, os, arch, trigger)
);
CREATE INDEX builds_run ON prflow_builds(run_id);
CREATE TABLE prflow_installations (
	repo TEXT PRIMARY KEY,
	installation INTEGER NOT NULL
);
CREATE TABLE prflow_deploy_calls (
	repo TEXT NOT NULL,
	comment_id INTEGER NOT NULL,
	line INTEGER NOT NULL,
	env TEXT NOT NULL,
	pr INTEGER NOT NULL,
	head_sha TEXT NOT NULL,
	state TEXT NOT NULL,            -- running, done
	deployment_id INTEGER NOT NULL DEFAULT 0,
	reply TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (repo, comment_id, line)
);`, `
-- The Manifest (DIST lines) of the sources a passing build put into the
-- mirror: a production-base rebuild takes exactly these from the mirror.
ALTER TABLE prflow_builds ADD COLUMN distfiles TEXT NOT NULL DEFAULT '';`, `
-- The default branch commit whose config the build used, and what the
-- build was made from (sha256 of the set file): a tested build is known
-- by its input, so a merge whose set equals the tested head's deploys the
-- tested digest.
ALTER TABLE prflow_builds ADD COLUMN config_sha TEXT NOT NULL DEFAULT '';
ALTER TABLE prflow_builds ADD COLUMN set_digest TEXT NOT NULL DEFAULT '';
-- A merge deploy waiting for the build of the merge commit.
ALTER TABLE prflow_deploy_calls ADD COLUMN request TEXT NOT NULL DEFAULT '';`, `
-- prflow_deploy_calls is the one record of a /deploy or /rollback command:
-- what the handlers kept apart in command_requests moves here (the
-- handlers' migration copies its rows), and request_id links the deploy
-- journal's transaction.
ALTER TABLE prflow_deploy_calls ADD COLUMN kind TEXT NOT NULL DEFAULT 'deploy';
ALTER TABLE prflow_deploy_calls ADD COLUMN tag TEXT NOT NULL DEFAULT '';
ALTER TABLE prflow_deploy_calls ADD COLUMN user TEXT NOT NULL DEFAULT '';
ALTER TABLE prflow_deploy_calls ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE prflow_deploy_calls ADD COLUMN request_id INTEGER NOT NULL DEFAULT 0;
-- A maintainer's "compat: allow-libc-update" label on the PR, as the build
-- was requested with it.
ALTER TABLE prflow_builds ADD COLUMN allow_libc_update INTEGER NOT NULL DEFAULT 0;
UPDATE prflow_deploy_calls SET kind='rollback', env=substr(env, 10) WHERE env LIKE 'rollback-%';
CREATE INDEX prflow_deploy_calls_pr ON prflow_deploy_calls(repo, pr);`}

// EnsureSchema creates prflow's tables in db.
func EnsureSchema(ctx context.Context, db *state.DB) error {
	return db.EnsureSchema(ctx, "prflow", migrations...)
}

// New checks opts and prepares the tables. Builds start with Build or
// Recover.
func New(opts Options) (*Builder, error) {
	switch {
	case opts.DB == nil:
		return nil, errors.New("prflow: Options.DB is nil")
	case opts.Lower == nil || opts.Store == nil:
		return nil, errors.New("prflow: Options.Lower and Options.Store are required")
	case opts.Reporter == nil:
		return nil, errors.New("prflow: Options.Reporter is nil")
	case !filepath.IsAbs(opts.DataDir):
		return nil, fmt.Errorf("prflow: Options.DataDir must be absolute, got %q", opts.DataDir)
	case len(opts.Build.Command) == 0:
		return nil, errors.New("prflow: Options.Build.Command is empty (the bot config's build.command)")
	}
	if opts.Arch == "" {
		opts.Arch = build.HostArch()
	}
	if opts.Runner == nil {
		opts.Runner = &build.LocalRunner{Arch: opts.Arch}
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 1
	}
	if opts.Build.DistDir == "" {
		opts.Build.DistDir = filepath.Join(opts.DataDir, "distfiles")
	}
	if err := os.MkdirAll(opts.Build.DistDir, 0o755); err != nil {
		return nil, fmt.Errorf("prflow: DISTDIR: %w", err)
	}
	if err := EnsureSchema(context.Background(), opts.DB); err != nil {
		return nil, err
	}
	b := &Builder{opts: opts, log: opts.Logger, sem: make(chan struct{}, opts.MaxConcurrent), active: map[buildKey]*job{}}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.base, b.stop = context.WithCancelCause(context.Background())
	return b, nil
}

// Close stops the running builds without concluding them (Recover runs
// them again on the next start) and waits for them to return.
func (b *Builder) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.stop(errShutdown)
	b.wg.Wait()
}

// Wait blocks until no build is running or queued in this process.
func (b *Builder) Wait() { b.wg.Wait() }

var (
	hexSHA = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
)

func validTarget(t sets.Target) error {
	for _, f := range []string{t.Version, t.OS, t.Arch} {
		if !build.SafeName(f) {
			return fmt.Errorf("target %q: %q is not a plain name", t, f)
		}
	}
	return nil
}

// Build implements the bot's Builder port: it queues the check run of every
// target of req at once and starts the builds in the background. A push
// (Trigger "") cancels the running builds of the PR's other head SHAs. Calling it again for the same request starts nothing
// that is running or done.
func (b *Builder) Build(ctx context.Context, req BuildRequest) error {
	if o, n, ok := strings.Cut(req.Repo, "/"); !ok || o == "" || n == "" || strings.Contains(n, "/") {
		return fmt.Errorf("prflow: repository %q is not owner/name", req.Repo)
	}
	if !hexSHA.MatchString(req.HeadSHA) {
		return fmt.Errorf("prflow: head SHA %q is not a commit id", req.HeadSHA)
	}
	if req.GitDir == "" {
		return errors.New("prflow: the build request has no git directory")
	}
	if err := b.rememberInstallation(ctx, req.Repo, req.Installation); err != nil {
		return err
	}
	b.remember(req)
	if req.PR > 0 && req.Trigger == "" {
		// Only a push supersedes: a re-run or /rebuild of an older head
		// must not stop the newest head's builds.
		b.cancelOthers(req.Repo, req.PR, req.HeadSHA)
	}
	var rows []buildRow
	for _, t := range req.Targets {
		if len(req.Arches) > 0 && !slices.ContainsFunc(req.Arches, func(a string) bool { return a == t.Arch || a == t.OS+"-"+t.Arch }) {
			continue
		}
		if err := validTarget(t); err != nil {
			return fmt.Errorf("prflow: %w", err)
		}
		r := buildRow{Repo: req.Repo, PR: req.PR, HeadSHA: req.HeadSHA, Target: t, Trigger: req.Trigger,
			Installation: req.Installation, BaseRef: req.BaseRef, BaseSHA: req.BaseSHA, GitDir: req.GitDir}
		if _, err := b.opts.DB.ExecContext(ctx, `INSERT INTO prflow_builds(repo, pr, head_sha, version, os, arch, trigger, installation, base_ref, base_sha, git_dir, config_sha, allow_libc_update, state, created_at)
			VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?, 'queued', ?) ON CONFLICT DO NOTHING`,
			r.Repo, r.PR, r.HeadSHA, t.Version, t.OS, t.Arch, r.Trigger, r.Installation, r.BaseRef, r.BaseSHA, r.GitDir, req.ConfigSHA, req.AllowLibcUpdate, time.Now().Unix()); err != nil {
			return err
		}
		cur, err := b.row(ctx, r.key())
		if err != nil {
			return err
		}
		if cur.State == "done" {
			if !cur.Reported {
				if err := b.report(ctx, cur); err != nil {
					return err
				}
			}
			continue
		}
		rows = append(rows, cur)
	}
	// Queue every run first, so the PR shows them all at once.
	var start []buildRow
	for _, r := range rows {
		if b.isActive(r.key()) {
			continue
		}
		if !b.builds(r.Target.Arch) {
			c := report.Check{Name: r.checkName(), Conclusion: report.Skipped,
				Title:   fmt.Sprintf("No build host for %s-%s", r.Target.OS, r.Target.Arch),
				Summary: fmt.Sprintf("compatbot builds %s and has no build host for %s, so %s was not built or tested. It cannot be deployed until it is (the server config's build.runners).", strings.Join(b.arches(), ", "), r.Target.Arch, r.Target)}
			if err := b.finish(ctx, &r, c, nil); err != nil {
				return err
			}
			continue
		}
		if err := b.opts.Reporter.Queue(ctx, r.checkRef()); err != nil {
			return fmt.Errorf("prflow: queue %s: %w", r.checkName(), err)
		}
		start = append(start, r)
	}
	for _, r := range start {
		b.start(r)
	}
	return nil
}

// Recover detaches the overlay mounts a crashed process left, runs again
// the builds that a crash or shutdown cut short, and re-reports outcomes
// whose check run update was lost. Call it once on start, before Build;
// the builds run in the background.
func (b *Builder) Recover(ctx context.Context) (restarted int, err error) {
	if gone, err := overlay.DetachBelow(filepath.Join(b.opts.DataDir, "runs")); err != nil {
		b.log.Warn("prflow: stale overlay mounts of crashed builds", "error", err)
	} else if len(gone) > 0 {
		b.log.Warn("prflow: detached overlay mounts left by a crash", "mounts", gone)
	}
	rows, err := b.rows(ctx, `state <> 'done' OR reported = 0`)
	if err != nil {
		return 0, err
	}
	for _, r := range rows {
		if r.State == "done" {
			if err := b.report(ctx, r); err != nil {
				b.log.Warn("prflow: re-reporting a build failed", "repo", r.Repo, "sha", r.HeadSHA, "target", r.Target.String(), "error", err)
			}
			continue
		}
		if b.isActive(r.key()) {
			continue
		}
		if err := b.opts.Reporter.Queue(ctx, r.checkRef()); err != nil {
			b.log.Warn("prflow: queueing a recovered build's check failed", "repo", r.Repo, "sha", r.HeadSHA, "target", r.Target.String(), "error", err)
		}
		b.start(r)
		restarted++
	}
	return restarted, nil
}

// builds reports whether compatbot builds arch: here or through a Remote.
func (b *Builder) builds(arch string) bool {
	return b.opts.Remote[arch] != nil || arch == b.opts.Arch
}

// arches are the arches compatbot builds, for messages.
func (b *Builder) arches() []string {
	var out []string
	for a, r := range b.opts.Remote {
		if r != nil {
			out = append(out, a+" (cluster)")
		}
	}
	if b.opts.Remote[b.opts.Arch] == nil {
		out = append(out, b.opts.Arch+" (here)")
	}
	slices.Sort(out)
	return out
}

// dataDir is where the runs of arch keep their files: its Remote's
// shared storage, or DataDir.
func (b *Builder) dataDir(arch string) string {
	if r := b.opts.Remote[arch]; r != nil {
		return r.DataDir()
	}
	return b.opts.DataDir
}

func (b *Builder) isActive(k buildKey) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.active[k] != nil
}

// cancelOthers stops the running builds of pr whose head is not sha.
func (b *Builder) cancelOthers(repo string, pr int, sha string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, j := range b.active {
		if k.repo == repo && k.pr == pr && k.sha != sha {
			j.cancel(fmt.Errorf("superseded by %s", short(sha)))
		}
	}
}

func (b *Builder) start(r buildRow) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.active[r.key()] != nil {
		return
	}
	ctx, cancel := context.WithCancelCause(b.base)
	b.active[r.key()] = &job{cancel: cancel}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() {
			b.mu.Lock()
			delete(b.active, r.key())
			b.mu.Unlock()
			b.forgetRevisions(r)
			cancel(nil)
		}()
		b.run(ctx, r)
	}()
}

// run builds one target and records and reports the outcome.
func (b *Builder) run(ctx context.Context, r buildRow) {
	remote := b.opts.Remote[r.Target.Arch]
	if remote == nil {
		select {
		case b.sem <- struct{}{}:
			defer func() { <-b.sem }()
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), errShutdown) {
				return
			}
			c := report.Check{Name: r.checkName(), Conclusion: report.Cancelled,
				Title: "Cancelled: " + context.Cause(ctx).Error(), Summary: "The build was stopped while it waited for a build slot."}
			b.finishLogged(&r, c, nil)
			return
		}
	}
	// A remote run cut short by a restart keeps its id: its job is found
	// by it (runs/<id>/ on the shared storage) and followed, or its
	// outcome read, instead of a second job being submitted. A local run
	// starts afresh: its process died with the old service.
	r.resumed = remote != nil && r.State == "running" && r.RunID != ""
	if !r.resumed {
		r.RunID = runID(r)
	}
	if _, err := b.opts.DB.ExecContext(bgCtx(ctx), `UPDATE prflow_builds SET state='running', run_id=? WHERE `+keyWhere, append([]any{r.RunID}, r.key().args()...)...); err != nil {
		b.log.Error("prflow: recording a build start failed", "error", err)
		return
	}
	out, err := b.execute(ctx, &r)
	if errors.Is(context.Cause(ctx), errShutdown) {
		return // left running: Recover builds it again
	}
	if err != nil {
		out = &outcome{check: report.Check{Name: r.checkName(), Conclusion: report.Failure,
			Title: "The build could not start", Summary: fmt.Sprintf("compatbot could not prepare the build of %s: %v", r.Target, err)}}
	}
	b.finishLogged(&r, out.check, out)
}

type outcome struct {
	check        report.Check
	digest       string
	lineage      string
	baseRevision string
	changes      []sets.Change
	distfiles    string // Manifest of the mirrored sources
	setDigest    string
}

// execute prepares the checkout and runs the pipeline. The error is for
// setup problems (the commit cannot be read); a failed build is a check.
func (b *Builder) execute(ctx context.Context, r *buildRow) (*outcome, error) {
	rev, err := b.revisions(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("read the sets of %s: %w", short(r.HeadSHA), err)
	}
	head := rev.Head
	var sf *sets.SetFile
	for _, s := range head.Sets {
		if s.Target() == r.Target {
			sf = s
		}
	}
	out := &outcome{}
	if sf == nil {
		out.check = report.Check{Name: r.checkName(), Conclusion: report.Neutral, Title: "Set removed",
			Summary: fmt.Sprintf("Commit %s has no set for %s; there is nothing to build.", short(r.HeadSHA), r.Target)}
		return out, nil
	}
	if rev.Base != nil {
		for _, d := range sets.Diff(rev.Base, head) {
			if d.Target == r.Target {
				out.changes = d.Changes
			}
		}
	}
	if out.setDigest, err = setDigest(ctx, r.GitDir, r.HeadSHA, sf.Path); err != nil {
		return nil, err
	}
	remote := b.opts.Remote[r.Target.Arch]
	dataDir := b.dataDir(r.Target.Arch)
	// What a run leaves for its build is removed when the run is over; a
	// remote run that compatbot's shutdown leaves to its node keeps it.
	keep := func() bool { return remote != nil && errors.Is(context.Cause(ctx), errShutdown) }
	work := filepath.Join(dataDir, "checkouts", r.RunID)
	if err := checkout(ctx, r, work); err != nil {
		if ctx.Err() != nil {
			out.check = report.Check{Name: r.checkName(), Conclusion: report.Cancelled, Title: "Cancelled: " + context.Cause(ctx).Error()}
			return out, nil
		}
		return nil, fmt.Errorf("check out %s: %w", short(r.HeadSHA), err)
	}
	defer func() {
		if !keep() {
			os.RemoveAll(work)
		}
	}()
	lowerSrc, buildCfg := b.opts.Lower, b.opts.Build
	if remote != nil && buildCfg.DistDir != "" {
		// The sources a node fetches land on the shared storage, where the
		// mirror takes them from after a passing build.
		buildCfg.DistDir = filepath.Join(dataDir, "distfiles")
		if err := os.MkdirAll(buildCfg.DistDir, 0o755); err != nil {
			return nil, err
		}
	}
	var pb *prodBase
	if isProdBase(r.Trigger) {
		var fail *report.Check
		pb, fail = b.prepareProdBase(ctx, r, dataDir)
		if fail != nil {
			out.check = *fail
			return out, nil
		}
		defer func() {
			if !keep() {
				os.RemoveAll(pb.distDir)
			}
		}()
		lowerSrc, buildCfg = b.opts.ProdLower, pb.build
	}
	// The set as Portage reads it: the set file itself, or for layouts
	// whose lists are not set files (EESSI's YAML lists and Ansible role)
	// the set, masks and package sets generated from them.
	bf := sf.BuildFiles()
	setFile := filepath.Join(work, filepath.FromSlash(sf.Path))
	if l := head.Config.Layout; l == sets.LayoutYAML || l == sets.LayoutEESSIAnsible {
		setFile = filepath.Join(dataDir, "runs", r.RunID, "set", sf.Name)
		if err := os.MkdirAll(filepath.Dir(setFile), 0o755); err != nil {
			return nil, err
		}
		// Replaced whole: a resumed remote build may be reading it.
		if err := writeFileAtomic(setFile, []byte(bf.Set)); err != nil {
			return nil, err
		}
	} else {
		bf = sets.BuildInput{}
	}
	// The repo config's (the default branch's) Portage lines for this
	// target come after the lists' own.
	pc := head.Config.PortageFor(r.Target)
	lower := &lineageLower{inner: lowerSrc, record: func(lin string) {
		// Recorded now, with the run: a remote run taken up after a restart
		// does not read its published tree again (its job has), and its
		// artifact is promotable only with the lineage it was built on.
		if _, err := b.opts.DB.ExecContext(bgCtx(ctx), `UPDATE prflow_builds SET base_lineage=? WHERE `+keyWhere, append([]any{lin}, r.key().args()...)...); err != nil {
			b.log.Warn("prflow: recording the base lineage failed", "run", r.RunID, "error", err)
		}
	}}
	logURL := ""
	if b.opts.LogURL != nil {
		logURL = b.opts.LogURL(r.RunID)
	}
	ref := r.checkRef()
	run := pipeline.Run
	if remote != nil {
		run = remote.Execute
	}
	res, err := run(ctx, pipeline.Params{
		ID: r.RunID, DataDir: dataDir, Target: r.Target,
		SetName: sf.Name, SetFile: setFile, SetPath: sf.Path, ExtraSets: bf.SetArgs, Unmerge: bf.Unmerge,
		Mask: append(lines(bf.PackageMask), pc.Mask...), Unmask: append(lines(bf.PackageUnmask), pc.Unmask...), Use: pc.Use,
		WorkDir: work, HeadSHA: r.HeadSHA, Build: buildCfg, Tests: b.tests(head.Config, r.AllowLibcUpdate),
		Runner: b.opts.Runner, Lower: lower, Store: b.opts.Store, LogURL: logURL,
		Progress: func(c report.Check) {
			if c.Title == "Queued" {
				return // the run was queued when the build was requested
			}
			c.Name = ref.Name
			if err := b.opts.Reporter.Progress(bgCtx(ctx), ref, c); err != nil {
				b.log.Warn("prflow: progress update failed", "check", c.Name, "sha", r.HeadSHA, "error", err)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	out.check = res.Check
	out.check.Name = r.checkName()
	out.baseRevision = res.BaseRevision
	lower.mu.Lock()
	out.lineage, err = lower.lineage, lower.err
	if !lower.read && r.resumed {
		// The job read the tree before the restart; its lineage was
		// recorded then.
		out.lineage, err = r.BaseLineage, nil
	}
	lower.mu.Unlock()
	if pb != nil {
		pb.describe(out, err)
		if out.check.Conclusion == report.Success && res.Artifact != nil {
			out.digest = res.Artifact.Digest
		}
		return out, nil
	}
	if res.Artifact != nil {
		if err != nil {
			// Without the base's lineage the artifact cannot be promoted
			// safely: fail rather than record a wrong base.
			out.check.Conclusion = report.Failure
			out.check.Title = "Cannot read the lineage of the published tree"
			out.check.Summary = err.Error() + "\n\n" + out.check.Summary
			return out, nil
		}
		out.digest = res.Artifact.Digest
		if b.opts.Mirror != nil {
			if ents, err := b.opts.Mirror.Add(bgCtx(ctx), buildCfg.DistDir); err != nil {
				out.check.Text += "\n\n> The sources could not be copied into the mirror: " + err.Error() + "\n"
				b.log.Warn("prflow: mirroring DISTDIR failed", "error", err)
			} else {
				out.check.Text += fmt.Sprintf("\n\n%d source files are in the mirror.\n", len(ents))
				out.distfiles = recordManifest(ents)
			}
		}
	}
	return out, nil
}

// lineageLower records the lineage of the lower layer a build used.
type lineageLower struct {
	inner pipeline.Lower
	// record, when set, keeps a lineage read.
	record  func(lineage string)
	mu      sync.Mutex
	read    bool
	lineage string
	err     error
}

func (l *lineageLower) Current(ctx context.Context, t sets.Target) (string, string, error) {
	dir, rev, err := l.inner.Current(ctx, t)
	if err != nil {
		return dir, rev, err
	}
	lin, lerr := deploy.ReadLineage(dir)
	if lerr == nil && l.record != nil {
		l.record(lin)
	}
	l.mu.Lock()
	l.read, l.lineage, l.err = true, lin, lerr
	l.mu.Unlock()
	return dir, rev, nil
}

// checkout exports the head's tree to work. A remote run taken up after a
// restart keeps the checkout it has (its job may be building in it); the
// export goes through a temporary directory renamed into place, so a
// checkout that exists is whole.
func checkout(ctx context.Context, r *buildRow, work string) error {
	if r.resumed {
		if _, err := os.Stat(work); err == nil {
			return nil
		}
	}
	tmp := work + ".tmp"
	if err := gitrepo.ExportTree(ctx, r.GitDir, r.HeadSHA, tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.RemoveAll(work); err != nil {
		return err
	}
	return os.Rename(tmp, work)
}

// writeFileAtomic replaces path with data through a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (b *Builder) finishLogged(r *buildRow, c report.Check, out *outcome) {
	if err := b.finish(b.base, r, c, out); err != nil {
		b.log.Error("prflow: recording a build outcome failed", "repo", r.Repo, "sha", r.HeadSHA, "target", r.Target.String(), "error", err)
	}
}

// finish records the outcome, then reports it; the record comes first so
// a lost report is redone by Recover from the record.
func (b *Builder) finish(ctx context.Context, r *buildRow, c report.Check, out *outcome) error {
	ctx = bgCtx(ctx)
	cj, err := json.Marshal(c)
	if err != nil {
		return err
	}
	o := outcome{}
	if out != nil {
		o = *out
	}
	if o.changes == nil {
		o.changes = []sets.Change{}
	}
	ch, err := json.Marshal(o.changes)
	if err != nil {
		return err
	}
	if _, err := b.opts.DB.ExecContext(ctx, `UPDATE prflow_builds SET state='done', conclusion=?, title=?, digest=?, base_lineage=?, base_revision=?, changes=?, check_json=?, distfiles=?, set_digest=?, reported=0, finished_at=? WHERE `+keyWhere,
		append([]any{string(c.Conclusion), c.Title, o.digest, o.lineage, o.baseRevision, string(ch), string(cj), o.distfiles, o.setDigest, time.Now().Unix()}, r.key().args()...)...); err != nil {
		return err
	}
	r.State, r.Conclusion, r.CheckJSON = "done", string(c.Conclusion), string(cj)
	err = b.report(ctx, *r)
	if r.Trigger == TriggerMerge && b.opts.OnMergeBuilt != nil {
		b.opts.OnMergeBuilt(ctx, r.Repo, r.PR, r.HeadSHA)
	}
	return err
}

// report completes the run's check with the recorded content, retrying a
// few times: GitHub outages are usually short.
func (b *Builder) report(ctx context.Context, r buildRow) error {
	var c report.Check
	if err := json.Unmarshal([]byte(r.CheckJSON), &c); err != nil {
		return fmt.Errorf("prflow: recorded check of %s: %w", r.Target, err)
	}
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err = b.opts.Reporter.Complete(ctx, r.checkRef(), c); err == nil {
			_, err = b.opts.DB.ExecContext(ctx, `UPDATE prflow_builds SET reported=1 WHERE `+keyWhere, r.key().args()...)
			return err
		}
	}
	return fmt.Errorf("prflow: complete check %q: %w", c.Name, err)
}

// TriggerMerge marks the build of a merge commit whose sets differ from
// the tested head's (another PR landed on the same target in between).
const TriggerMerge = "merge"

// configRef is the commit whose config the build reads the sets with:
// the default branch's, recorded with the request; rows from before that
// was recorded use the merge base's, never the PR's own.
func (r buildRow) configRef() string {
	if r.ConfigSHA != "" {
		return r.ConfigSHA
	}
	if r.BaseSHA != "" {
		return r.BaseSHA
	}
	return r.HeadSHA
}

// setDigest identifies what a build of the set at path in commit sha is
// made from: the set file's bytes.
func setDigest(ctx context.Context, gitDir, sha, path string) (string, error) {
	fsys, err := gitrepo.TreeFS(ctx, gitDir, sha)
	if err != nil {
		return "", err
	}
	b, err := fs.ReadFile(fsys, path)
	if err != nil {
		return "", fmt.Errorf("set %s at %s: %w", path, short(sha), err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// buildRow is one recorded build.
type buildRow struct {
	Repo            string
	PR              int
	HeadSHA         string
	Target          sets.Target
	Trigger         string
	Installation    int64
	BaseRef         string
	BaseSHA         string
	GitDir          string
	State           string
	RunID           string
	Conclusion      string
	Title           string
	Digest          string
	BaseLineage     string
	BaseRevision    string
	Changes         []sets.Change
	CheckJSON       string
	Reported        bool
	FinishedAt      time.Time
	Distfiles       string
	ConfigSHA       string
	SetDigest       string
	AllowLibcUpdate bool
	// resumed: a remote run taken up under its recorded run id.
	resumed bool
}

func (r buildRow) key() buildKey {
	return buildKey{r.Repo, r.PR, r.HeadSHA, r.Target.Version, r.Target.OS, r.Target.Arch, r.Trigger}
}

func (k buildKey) args() []any {
	return []any{k.repo, k.pr, k.sha, k.version, k.os, k.arch, k.trg}
}

const keyWhere = `repo=? AND pr=? AND head_sha=? AND version=? AND os=? AND arch=? AND trigger=?`

func (r buildRow) checkRef() CheckRef {
	return CheckRef{Repo: r.Repo, Installation: r.Installation, PR: r.PR, HeadSHA: r.HeadSHA, Name: r.checkName(), Trigger: r.Trigger}
}

const rowCols = `repo, pr, head_sha, version, os, arch, trigger, installation, base_ref, base_sha, git_dir, state, run_id, conclusion, title, digest, base_lineage, base_revision, changes, check_json, reported, finished_at, distfiles, config_sha, set_digest, allow_libc_update`

func (b *Builder) rows(ctx context.Context, where string, args ...any) ([]buildRow, error) {
	return queryRows(ctx, b.opts.DB, where, args...)
}

func queryRows(ctx context.Context, db *state.DB, where string, args ...any) ([]buildRow, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+rowCols+` FROM prflow_builds WHERE `+where+` ORDER BY created_at, rowid`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []buildRow
	for rows.Next() {
		var r buildRow
		var changes string
		var fin int64
		if err := rows.Scan(&r.Repo, &r.PR, &r.HeadSHA, &r.Target.Version, &r.Target.OS, &r.Target.Arch, &r.Trigger, &r.Installation, &r.BaseRef, &r.BaseSHA, &r.GitDir,
			&r.State, &r.RunID, &r.Conclusion, &r.Title, &r.Digest, &r.BaseLineage, &r.BaseRevision, &changes, &r.CheckJSON, &r.Reported, &fin, &r.Distfiles, &r.ConfigSHA, &r.SetDigest, &r.AllowLibcUpdate); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(changes), &r.Changes); err != nil {
			return nil, fmt.Errorf("prflow: build of %s at %s: changes: %w", r.Target, short(r.HeadSHA), err)
		}
		if fin > 0 {
			r.FinishedAt = time.Unix(fin, 0)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (b *Builder) row(ctx context.Context, k buildKey) (buildRow, error) {
	rs, err := b.rows(ctx, keyWhere, k.args()...)
	if err != nil {
		return buildRow{}, err
	}
	if len(rs) == 0 {
		return buildRow{}, sql.ErrNoRows
	}
	return rs[0], nil
}

// Outcome is the recorded result of a target's newest finished build of a
// head SHA.
type Outcome struct {
	Target       sets.Target
	Trigger      string
	Conclusion   report.Conclusion
	Title        string
	Digest       string // "" unless the build and tests passed
	BaseLineage  string
	BaseRevision string
	Changes      []sets.Change
	RunID        string
	Finished     time.Time
	// SetDigest identifies the set file the build was made from.
	SetDigest string
}

// Outcomes lists, per target, the newest build of (repo, pr, sha): the
// finished one, or one still running (Conclusion "").
func (b *Builder) Outcomes(ctx context.Context, repo string, pr int, sha string) (map[sets.Target]Outcome, error) {
	return outcomes(ctx, b.opts.DB, repo, pr, sha)
}

func outcomes(ctx context.Context, db *state.DB, repo string, pr int, sha string) (map[sets.Target]Outcome, error) {
	rows, err := queryRows(ctx, db, `repo=? AND pr=? AND head_sha=?`, repo, pr, sha)
	if err != nil {
		return nil, err
	}
	out := map[sets.Target]Outcome{}
	for _, r := range rows {
		if isProdBase(r.Trigger) && (r.State != "done" || r.Digest == "") {
			// A production-base rebuild that has not passed (yet) leaves
			// the head's own result in place: it is a separate variant.
			continue
		}
		o := Outcome{Target: r.Target, Trigger: r.Trigger, Conclusion: report.Conclusion(r.Conclusion), Title: r.Title, Digest: r.Digest,
			BaseLineage: r.BaseLineage, BaseRevision: r.BaseRevision, Changes: r.Changes, RunID: r.RunID, Finished: r.FinishedAt, SetDigest: r.SetDigest}
		if r.State != "done" {
			o.Conclusion, o.Digest = "", ""
		}
		prev, ok := out[r.Target]
		// Rows come oldest first: a later request replaces an earlier
		// one, except that an unfinished re-run does not hide a result.
		if !ok || o.Conclusion != "" || prev.Conclusion == "" {
			out[r.Target] = o
		}
	}
	return out, nil
}

func (b *Builder) rememberInstallation(ctx context.Context, repo string, inst int64) error {
	return rememberInstallation(ctx, b.opts.DB, repo, inst)
}

func rememberInstallation(ctx context.Context, db *state.DB, repo string, inst int64) error {
	if inst == 0 {
		return nil
	}
	_, err := db.ExecContext(ctx, `INSERT INTO prflow_installations(repo, installation) VALUES(?,?) ON CONFLICT DO UPDATE SET installation=excluded.installation`, repo, inst)
	return err
}

// KnownInstallation is the App installation last seen for repo (0 if
// none).
func KnownInstallation(ctx context.Context, db *state.DB, repo string) (int64, error) {
	var id int64
	err := db.QueryRowContext(ctx, `SELECT installation FROM prflow_installations WHERE repo=?`, repo).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// LogHandler serves a run's build log read-only at GET .../{id}: mount it
// as mux.Handle("GET /builds/{id}/log", b.LogHandler()). Only ids of
// recorded runs are served.
func (b *Builder) LogHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !build.SafeName(id) {
			http.NotFound(w, r)
			return
		}
		var arch string
		if err := b.opts.DB.QueryRowContext(r.Context(), `SELECT arch FROM prflow_builds WHERE run_id=? LIMIT 1`, id).Scan(&arch); err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// A remote build's log is on the shared storage, where its node
		// writes it: the page shows it as it grows.
		safefile.Serve(w, r, b.dataDir(arch), "runs/"+id+"/build.log") // never through a symlink

	})
}

var unsafeRun = regexp.MustCompile(`[^A-Za-z0-9._+-]`)

func runID(r buildRow) string {
	s := fmt.Sprintf("pr%d-%s-%s-%s-%s-%d", r.PR, r.Target.Version, r.Target.OS, r.Target.Arch, short(r.HeadSHA), time.Now().UnixNano())
	return unsafeRun.ReplaceAllString(s, "_")
}

func bgCtx(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// Requested reports whether builds of sha with trigger were ever asked
// for (the handlers' cheap check before reading a repository again).
func (b *Builder) Requested(ctx context.Context, repo, sha, trigger string) (bool, error) {
	var n int
	err := b.opts.DB.QueryRowContext(ctx, `SELECT count(*) FROM prflow_builds WHERE repo=? AND head_sha=? AND trigger=?`, repo, sha, trigger).Scan(&n)
	return n > 0, err
}

// tests is what a build's compat tests check: the repo config's tools
// (else the server's, else the built-in list) and the server's timeout,
// the extra tests of the repo config (the default branch's, as every
// decision), and whether a libc change is allowed for this build.
func (b *Builder) tests(cfg *sets.Config, allowLibc bool) pipeline.TestConfig {
	t := b.opts.Tests
	if cfg != nil && len(cfg.Tests) > 0 {
		t.Extra = append(append([][]string(nil), t.Extra...), cfg.Tests...)
	}
	if cfg != nil && len(cfg.Tools) > 0 {
		t.Tools = compattest.ToolsNamed(cfg.Tools)
	}
	t.AllowLibcUpdate = t.AllowLibcUpdate || allowLibc
	return t
}

// revKey names the sets a build reads: the same head, base and config
// always give the same sets.
type revKey struct{ gitDir, head, base, config string }

// remember keeps what the sets check of a push already read, so the
// push's builds do not read the same trees again (a push reads its sets
// once). Builds that run after a restart read them anew.
func (b *Builder) remember(req BuildRequest) {
	if req.Revisions == nil || req.Revisions.HeadSHA != req.HeadSHA {
		return
	}
	k := revKey{req.GitDir, req.HeadSHA, req.BaseSHA, req.ConfigSHA}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.revs == nil {
		b.revs = map[revKey]*setscheck.Revisions{}
	}
	b.revs[k] = req.Revisions
}

// forgetRevisions drops the remembered sets of a head once none of its builds is
// queued or running any more.
func (b *Builder) forgetRevisions(r buildRow) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.active {
		if k.repo == r.Repo && k.sha == r.HeadSHA {
			return
		}
	}
	for k := range b.revs {
		if k.head == r.HeadSHA && k.gitDir == r.GitDir {
			delete(b.revs, k)
		}
	}
}

// revisions is the sets r is built from: the ones its push's sets check
// read, else read now with the recorded config.
func (b *Builder) revisions(ctx context.Context, r *buildRow) (*setscheck.Revisions, error) {
	b.mu.Lock()
	rev := b.revs[revKey{r.GitDir, r.HeadSHA, r.BaseSHA, r.ConfigSHA}]
	b.mu.Unlock()
	if rev != nil {
		b.revHits.Add(1)
		return rev, nil
	}
	base := r.BaseSHA
	if base == "" {
		base = r.HeadSHA
	}
	rev, err := setscheck.LoadPR(ctx, r.GitDir, setscheck.PR{Config: r.configRef(), Base: base, Head: r.HeadSHA})
	if err != nil {
		return nil, err
	}
	if r.BaseSHA == "" {
		rev.Base = nil
	}
	return rev, nil
}

// lines splits a generated Portage file into its lines, comments kept
// (package.mask shows each atom's reason above it).
func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

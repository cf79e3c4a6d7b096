package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/prflow"
	"github.com/compatbot/compatbot/workflow/publish"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/setscheck"
	"github.com/compatbot/compatbot/workflow/state"
)

// cycle.go is "compatbot check --example" (and "check --deploy"): the
// bot's whole cycle for one PR, run on this machine through the same
// lifecycle code the server runs (workflow/prflow's Builder and Deployer
// over workflow/deploy and real local publish targets, the changelog in
// git and SQLite), with local ports in GitHub's place: check runs go to
// the report, and there are no Deployments or comments. The steps: the
// sets check, a build per changed target, "/deploy test", the merge,
// "/deploy prod", the changelog, and where everything ended up.

// examplePR is the number the example pull request gets in tags
// (<version>-<os>-<arch>-pr1-<sha7>), deploy requests and the changelog:
// the first PR of a fresh repository.
const examplePR = 1

// cycleSteps names the steps in the order they run; the report numbers
// them "Step i of n".
var cycleSteps = []string{"sets check", "build", "/deploy test", "merge and /deploy prod", "changelog", "where everything is"}

// dataDirMarker marks a data directory made by check --example or
// --deploy, so a rerun only ever deletes what compatbot created.
const dataDirMarker = ".compatbot-check"

// cycleConfig is one local cycle.
type cycleConfig struct {
	// DataDir (absolute) holds build/ (runs, artifacts), targets/test,
	// targets/prod, compatbot.db (deploy journal and history) and compatbot.yml.
	DataDir string
	// Repo is the managed repository's git directory; Base the branch the
	// PR targets.
	Repo, Base string
	// RepoName is owner/name in deploy requests and the changelog.
	RepoName string
	PR       int
	// User is the local user: requester and approver of both deploys.
	User string
	// Build has Command, Env and Timeout set; DataDir and Lower are the
	// cycle's.
	Build localBuildOptions
	// CommitChangelog merges the PR into Base and commits the changelog to
	// Base in Repo (the example); otherwise history stays in the database
	// only and the repository is not written to.
	CommitChangelog bool
	// Portage builds the PR with real emerge, configured as the server's
	// build: keys would (portageBuild); Build.Portage builds the base with
	// the same. nil: Build.Command (the fake installer).
	Portage *portageConfig
	// Installer says, for the report, what builds the sets.
	Installer string
}

// cycleStopped is a step that failed: the report ends with its reason and
// the command exits 1.
type cycleStopped struct {
	Step   int
	Reason string
}

func (e *cycleStopped) Error() string {
	return fmt.Sprintf("the cycle stopped at step %d (%s): %s", e.Step, cycleSteps[e.Step-1], e.Reason)
}

func stepHeader(w io.Writer, i int) {
	fmt.Fprintf(w, "\n# Step %d of %d: %s\n\n", i, len(cycleSteps), cycleSteps[i-1])
}

// prepareDataDir empties dir for a fresh cycle. It refuses a non-empty
// directory that a cycle did not make.
func prepareDataDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case len(ents) > 0:
		if _, err := os.Stat(filepath.Join(dir, dataDirMarker)); err != nil {
			return fmt.Errorf("refusing to replace %s: it is not empty and was not made by compatbot check", dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("recreating %s: %w", dir, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, dataDirMarker), []byte("made by compatbot check; recreated on every run, safe to delete\n"), 0o644)
}

// localUser names who runs the cycle: the login, else $USER, else
// "local". It becomes a changelog field and part of a tag description, so
// only plain characters are kept.
func localUser() string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	name = regexp.MustCompile(`[^A-Za-z0-9._-]`).ReplaceAllString(name, "")
	if name == "" {
		name = "local"
	}
	return name
}

// runCycle runs steps 2 to 6 after the sets check c (step 1, already
// printed) on rev. It writes the report to out and progress lines to
// progress. The error is a *cycleStopped for a failed step.
func runCycle(ctx context.Context, cfg cycleConfig, c report.Check, rev *setscheck.Revisions, out, progress io.Writer) error {
	if c.Conclusion == report.Failure {
		return &cycleStopped{1, "the sets check failed (" + c.Title + "); a PR that does not pass it is not built"}
	}
	pubs := map[string]publish.Publisher{}
	for _, env := range []string{deploy.EnvTest, deploy.EnvProd} {
		p, err := publish.OpenLocal(filepath.Join(cfg.DataDir, "targets"), env)
		if err != nil {
			return &cycleStopped{2, fmt.Sprintf("opening the local %s target: %v", env, err)}
		}
		pubs[env] = p
	}
	store := &artifact.Store{Dir: filepath.Join(cfg.DataDir, "build", "artifacts")}
	db, err := state.Open(filepath.Join(cfg.DataDir, dbFile))
	if err != nil {
		return &cycleStopped{3, fmt.Sprintf("opening the database: %v", err)}
	}
	defer db.Close()
	var clog deploy.ChangelogStore
	git := gitChangelog{Dir: cfg.Repo}
	if cfg.CommitChangelog {
		clog = git
	}
	core, err := deploy.New(deploy.Options{DB: db, Targets: pubs,
		Artifacts: deploy.StoreSource{Store: store}, Verify: deploy.ContentVerifier{Store: store},
		Changelog: clog, ChangelogBranch: cfg.Base})
	if err != nil {
		return &cycleStopped{3, err.Error()}
	}
	baseTip, _ := git.tip(ctx, cfg.Base)
	pd := &prflow.Deployer{DB: db, Core: core}

	// Step 2: build.
	stepHeader(out, 2)
	built, err := cycleBuild(ctx, cfg, rev, core, pubs, db, store, out, progress)
	if err != nil {
		return err
	}

	// Step 3: /deploy test.
	stepHeader(out, 3)
	author := commitAuthor(ctx, git, rev.HeadSHA)
	req := prflow.DeployRequest{Repo: cfg.RepoName, PR: cfg.PR, HeadSHA: rev.HeadSHA, BaseRef: cfg.Base, BaseSHA: rev.BaseSHA, ConfigSHA: rev.ConfigSHA,
		Author: author, Requester: cfg.User, Env: deploy.EnvTest, Targets: built, GitDir: cfg.Repo, CommentID: 1, Line: 1}
	fmt.Fprintf(out, "`/deploy test` by %s: each built artifact, by its exact digest, in one transaction per target on the local target `test` (%s).\n\n",
		cfg.User, filepath.Join(cfg.DataDir, "targets", "test"))
	if err := cycleDeploy(ctx, pd, core, req, out); err != nil {
		return &cycleStopped{3, err.Error()}
	}

	// Step 4: merge and /deploy prod.
	stepHeader(out, 4)
	prodReq := req
	prodReq.Env, prodReq.Merged, prodReq.CommentID = deploy.EnvProd, true, 2
	if cfg.CommitChangelog {
		merge, err := git.merge(ctx, cfg.Base, rev.HeadSHA, cfg.User, fmt.Sprintf("Merge pull request #%d (%s)", cfg.PR, shortSHA(rev.HeadSHA)))
		if err != nil {
			return &cycleStopped{4, err.Error()}
		}
		prodReq.MergeSHA = merge
		fmt.Fprintf(out, "Merged the PR head `%s` into `%s` of %s as `%s` (the local stand-in for merging PR #%d).\n\n", shortSHA(rev.HeadSHA), cfg.Base, cfg.Repo, shortSHA(merge), cfg.PR)
	} else {
		fmt.Fprintf(out, "The PR counts as merged for this local run; %s is not written to.\n\n", cfg.Repo)
	}
	if c.Conclusion == report.ActionRequired {
		fmt.Fprintf(out, "The sets check's findings that need approval are approved by **%s**, the local user running this cycle (on GitHub a maintainer approves them):\n\n", cfg.User)
		for _, a := range c.Annotations {
			if strings.HasPrefix(a.Title, "needs approval") {
				fmt.Fprintf(out, "- %s (`%s:%d`)\n", a.Title, a.Path, a.StartLine)
			}
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "`/deploy prod` by %s: the artifacts that passed on `test`, on the local target `prod` (%s).\n\n", cfg.User, filepath.Join(cfg.DataDir, "targets", "prod"))
	if err := cycleDeploy(ctx, pd, core, prodReq, out); err != nil {
		return &cycleStopped{4, err.Error()}
	}

	// Step 5: changelog.
	stepHeader(out, 5)
	if n, err := core.PendingChangelog(ctx); err != nil || n > 0 {
		return &cycleStopped{5, fmt.Sprintf("%d changelog entries are not committed (%v)", n, err)}
	}
	hist, err := core.History(ctx, "")
	if err != nil {
		return &cycleStopped{5, err.Error()}
	}
	fmt.Fprintf(out, "History in the database (%s), newest first:\n\n", filepath.Join(cfg.DataDir, dbFile))
	fmt.Fprintln(out, "| target | action | tag | revision | PR | author | approver | deployer |")
	fmt.Fprintln(out, "|---|---|---|---:|---|---|---|---|")
	for _, e := range hist {
		fmt.Fprintf(out, "| %s | %s | `%s` | %d | #%d | %s | %s | %s |\n", e.Target, e.Action, e.Tag, e.Revision, e.PR, e.Author, e.Approver, e.Deployer)
	}
	if cfg.CommitChangelog {
		lines, err := git.log(ctx, baseTip, cfg.Base)
		if err != nil {
			return &cycleStopped{5, err.Error()}
		}
		fmt.Fprintf(out, "\nCommits on `%s` of %s since the PR was opened, newest first:\n\n", cfg.Base, cfg.Repo)
		for _, l := range lines {
			fmt.Fprintf(out, "    %s\n", l)
		}
	} else {
		fmt.Fprintf(out, "\nNo changelog commits: %s is only read (the example commits them to its own repository).\n", cfg.Repo)
	}

	// Step 6: where everything is.
	stepHeader(out, 6)
	st, err := core.Status(ctx)
	if err != nil {
		return &cycleStopped{6, err.Error()}
	}
	fmt.Fprintln(out, "| target | version/os-arch | tag | target revision now | tree |")
	fmt.Fprintln(out, "|---|---|---|---:|---|")
	for _, s := range st {
		root := filepath.Join(cfg.DataDir, "targets", s.Env)
		fmt.Fprintf(out, "| %s | %s | `%s` | %d | `%s` |\n", s.Env, s.Target, s.Tag, s.Revision, filepath.Join(root, "current", filepath.FromSlash(s.Path)))
	}
	cfgFile := filepath.Join(cfg.DataDir, "compatbot.yml")
	if err := os.WriteFile(cfgFile, []byte("# Written by compatbot check: lets status and history read this run.\ndata_dir: .\n"), 0o644); err != nil {
		return &cycleStopped{6, err.Error()}
	}
	fmt.Fprintf(out, "\n```sh\n")
	fmt.Fprintf(out, "ls %s    # each target: current -> revisions/<n>, one tree per revision\n", filepath.Join(cfg.DataDir, "targets", "*"))
	for _, s := range st {
		if s.Env == deploy.EnvProd {
			fmt.Fprintf(out, "ls %s\n", filepath.Join(cfg.DataDir, "targets", s.Env, "current", filepath.FromSlash(s.Path), "var", "db", "pkg", "*"))
			break
		}
	}
	fmt.Fprintf(out, "ls %s    # runs (build logs), artifacts\n", filepath.Join(cfg.DataDir, "build"))
	if cfg.CommitChangelog {
		versions := map[string]bool{}
		for _, e := range hist {
			if !versions[e.Version] {
				versions[e.Version] = true
				fmt.Fprintf(out, "git -C %s show %s:changelog/%s.md\n", cfg.Repo, cfg.Base, e.Version)
			}
		}
	}
	fmt.Fprintf(out, "compatbot status --config %s\n", cfgFile)
	fmt.Fprintf(out, "compatbot history --config %s\n", cfgFile)
	if cfg.CommitChangelog && baseTip != "" {
		// What the merge changed in the sets, from main before the PR.
		fmt.Fprintf(out, "compatbot sets diff --repo %s --base %s --head %s\n", cfg.Repo, shortSHA(baseTip), cfg.Base)
	}
	fmt.Fprintf(out, "```\n")
	return nil
}

// cycleBuild publishes the base's sets of the targets to build on both
// targets (standing in for what production has before the PR), then has
// the lifecycle's Builder build each changed target on the test target's
// tree, as the server does. It returns the targets that were built and
// passed: the other arch's has no build host here.
func cycleBuild(ctx context.Context, cfg cycleConfig, rev *setscheck.Revisions, core *deploy.Engine, pubs map[string]publish.Publisher, db *state.DB, store *artifact.Store, out, progress io.Writer) ([]sets.Target, error) {
	opts := cfg.Build
	opts.DataDir = filepath.Join(cfg.DataDir, "build")
	opts.Lower = publish.Lower{P: pubs[deploy.EnvTest], Empty: filepath.Join(cfg.DataDir, "empty-lower")}
	fmt.Fprintf(out, "%s\n\n", cfg.Installer)

	var changed []sets.Target
	var seeded []string
	for _, d := range sets.Diff(rev.Base, rev.Head) {
		if len(d.Changes) == 0 {
			continue
		}
		changed = append(changed, d.Target)
		sf := rev.Base.Set(d.Target)
		if d.Target.Arch != build.HostArch() || sf == nil || rev.Head.Set(d.Target) == nil {
			continue
		}
		tags, err := publishBase(ctx, cfg, opts, rev, sf, d.Target, core, pubs, progress)
		if err != nil {
			return nil, &cycleStopped{2, fmt.Sprintf("publishing the base of %s: %v", d.Target, err)}
		}
		seeded = append(seeded, tags...)
	}
	if len(seeded) > 0 {
		fmt.Fprintf(out, "First the base `%s` (`%s`) is built and published to both targets, as what they hold before the PR: %s.\n\n",
			cfg.Base, shortSHA(rev.BaseSHA), strings.Join(seeded, ", "))
	}
	if len(changed) == 0 {
		return nil, &cycleStopped{2, "the PR changes no set, so there is nothing to build"}
	}
	rep := &localReporter{progress: progress, done: map[string]report.Check{}}
	bc := pipeline.BuildConfig{Command: opts.Command, Env: opts.Env, Timeout: opts.Timeout, Sandbox: opts.Sandbox,
		DistDir: filepath.Join(opts.DataDir, "distfiles")}
	var runner build.Runner // nil: the Builder's local runner
	var err error
	if cfg.Portage != nil {
		// Real emerge configured as the server configures it from its
		// build: keys (wire.go calls the same portageBuild).
		bc.Command = nil
		if runner, bc, _, err = portageBuild(opts.DataDir, "", bc, *cfg.Portage); err != nil {
			return nil, &cycleStopped{2, err.Error()}
		}
	}
	b, err := prflow.New(prflow.Options{DB: db, DataDir: opts.DataDir,
		Build:  bc,
		Runner: runner,
		Tests:  pipeline.TestConfig{AllowLibcUpdate: opts.AllowLibcUpdate},
		Lower:  opts.Lower,
		Store:  store, Reporter: rep,
		LogURL: func(id string) string { return filepath.Join(opts.DataDir, "runs", id, "build.log") },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, &cycleStopped{2, err.Error()}
	}
	defer b.Close()
	if err := b.Build(ctx, prflow.BuildRequest{Repo: cfg.RepoName, PR: cfg.PR, BaseRef: cfg.Base, BaseSHA: rev.BaseSHA, HeadSHA: rev.HeadSHA,
		ConfigSHA: rev.ConfigSHA, GitDir: cfg.Repo, Targets: changed, AllowLibcUpdate: opts.AllowLibcUpdate}); err != nil {
		return nil, &cycleStopped{2, err.Error()}
	}
	b.Wait()
	outs, err := b.Outcomes(ctx, cfg.RepoName, cfg.PR, rev.HeadSHA)
	if err != nil {
		return nil, &cycleStopped{2, err.Error()}
	}
	var built []sets.Target
	var failed []string
	for i, t := range changed {
		if i > 0 {
			fmt.Fprintln(out)
		}
		c, ok := rep.check(pipeline.CheckName(t))
		if !ok {
			return nil, &cycleStopped{2, fmt.Sprintf("the build of %s reported no result", t)}
		}
		fmt.Fprint(out, c.Markdown())
		switch o := outs[t]; {
		case o.Conclusion == report.Failure || o.Conclusion == report.TimedOut || o.Conclusion == report.Cancelled:
			failed = append(failed, fmt.Sprintf("%s: %s", t, o.Title))
		case o.Conclusion == report.Success && o.Digest != "":
			built = append(built, t)
		}
	}
	if len(failed) > 0 {
		return nil, &cycleStopped{2, "the build failed for " + strings.Join(failed, "; ")}
	}
	if len(built) == 0 {
		return nil, &cycleStopped{2, fmt.Sprintf("nothing was built on this %s host, so there is nothing to deploy", build.HostArch())}
	}
	return built, nil
}

// cycleDeploy runs one /deploy through the lifecycle's Deployer, prints its
// reply, and checks what the target holds afterwards: a deploy that failed
// at a step answers with a reply, not an error.
func cycleDeploy(ctx context.Context, pd *prflow.Deployer, core *deploy.Engine, req prflow.DeployRequest, out io.Writer) error {
	var reply string
	var err error
	if req.Env == deploy.EnvProd {
		reply, err = pd.DeployProd(ctx, req)
	} else {
		reply, err = pd.DeployTest(ctx, req)
	}
	if err != nil {
		return errors.New(oneLineErr(err))
	}
	fmt.Fprint(out, strings.TrimRight(reply, "\n")+"\n")
	for _, t := range req.Targets {
		held, err := core.Holds(ctx, req.Env, t)
		if err != nil {
			return err
		}
		if held.SetsSHA == "" {
			return fmt.Errorf("%s does not hold %s after the deploy: see the table above", req.Env, t)
		}
	}
	return nil
}

// localReporter is the lifecycle's check-run port for a local cycle: it
// prints progress and keeps each run's final content for the report.
type localReporter struct {
	progress io.Writer
	mu       sync.Mutex
	done     map[string]report.Check
}

func (r *localReporter) Queue(ctx context.Context, ref prflow.CheckRef) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.progress, "compatbot: %s: queued\n", ref.Name)
	return nil
}

func (r *localReporter) Progress(ctx context.Context, ref prflow.CheckRef, c report.Check) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.progress, "compatbot: %s: %s\n", ref.Name, c.Title)
	return nil
}

func (r *localReporter) Complete(ctx context.Context, ref prflow.CheckRef, c report.Check) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.progress, "compatbot: %s: %s (%s)\n", ref.Name, c.Conclusion, c.Title)
	r.done[ref.Name] = c
	return nil
}

func (r *localReporter) check(name string) (report.Check, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.done[name]
	return c, ok
}

// publishBase builds the base set sf once, into an empty tree, through the
// pipeline of compatbot build (buildOne: the same installer, EPREFIX and
// compat tests as the PR's build), and publishes its artifact to both
// targets, tagged <version>-<os>-<arch>-base-<sha7>: what they hold before
// the PR. It returns the tags, named for the report.
func publishBase(ctx context.Context, cfg cycleConfig, opts localBuildOptions, rev *setscheck.Revisions, sf *sets.SetFile, t sets.Target, core *deploy.Engine, pubs map[string]publish.Publisher, progress io.Writer) ([]string, error) {
	work := filepath.Join(opts.DataDir, "checkouts", "base-"+shortSHA(rev.BaseSHA))
	if _, err := os.Stat(work); err != nil {
		if err := gitrepo.ExportTree(ctx, cfg.Repo, rev.BaseSHA, work); err != nil {
			return nil, fmt.Errorf("checking out base %s: %w", shortSHA(rev.BaseSHA), err)
		}
	}
	fmt.Fprintf(progress, "compatbot: %s: building the base %s, for both targets\n", t, shortSHA(rev.BaseSHA))
	res, err := buildOne(ctx, opts, rev.Base.Config, t, sf.Name, filepath.Join(work, filepath.FromSlash(sf.Path)), sf.Path, work, rev.BaseSHA, progress)
	if err != nil {
		return nil, err
	}
	if res.Artifact == nil {
		return nil, fmt.Errorf("the base did not build: %s (log at %s)", res.Check.Title, filepath.Join(res.RunDir, "build.log"))
	}
	tag := fmt.Sprintf("%s-%s-%s-base-%s", t.Version, t.OS, t.Arch, rev.BaseSHA[:7])
	var tags []string
	for _, env := range []string{deploy.EnvTest, deploy.EnvProd} {
		path, err := core.TargetPath(env, t)
		if err != nil {
			return nil, err
		}
		tx, err := pubs[env].Transaction(ctx, path)
		if err != nil {
			return nil, err
		}
		if err := publish.Apply(ctx, tx, res.Artifact.Payload()); err != nil {
			tx.Abort(ctx)
			return nil, fmt.Errorf("%s: %w", env, err)
		}
		msg := fmt.Sprintf("%s: the base %s@%s, what %s had before PR #%d (compatbot check, local)", t, cfg.Base, rev.BaseSHA[:7], env, cfg.PR)
		if _, err := tx.Publish(ctx, tag, msg); err != nil {
			tx.Abort(ctx)
			return nil, fmt.Errorf("%s: %w", env, err)
		}
		tags = append(tags, fmt.Sprintf("`%s` on %s", tag, env))
	}
	return tags, nil
}

// commitAuthor is the author of the PR head, for the deploy request.
func commitAuthor(ctx context.Context, g gitChangelog, sha string) string {
	if len(sha) != 40 {
		return "unknown"
	}
	name, err := g.git(ctx, nil, nil, "log", "-1", "--format=%an", sha)
	name = regexp.MustCompile(`[^A-Za-z0-9._ -]`).ReplaceAllString(name, "")
	if err != nil || name == "" {
		return "unknown"
	}
	return name
}

func oneLineErr(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/publish"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/setscheck"
	"github.com/compatbot/compatbot/workflow/state"
)

// cycle.go is "compatbot check --example" (and "check --deploy"): the
// bot's whole cycle for one PR, run on this machine with the same parts
// the server wires (pipeline builds in real overlays, workflow/deploy over
// real local publish targets, the changelog in git and SQLite), and only
// the GitHub side left out: the sets check, a build per changed target of
// this host's arch, "/deploy test", the merge, "/deploy prod", the
// changelog, and where everything ended up.

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

	// Step 2: build.
	stepHeader(out, 2)
	items, err := cycleBuild(ctx, cfg, rev, pubs, out, progress)
	if err != nil {
		return err
	}

	// Step 3: /deploy test.
	stepHeader(out, 3)
	author := commitAuthor(ctx, git, rev.HeadSHA)
	req := deploy.Request{Repo: cfg.RepoName, PR: cfg.PR, HeadSHA: rev.HeadSHA, Author: author, Requester: cfg.User, Items: items}
	fmt.Fprintf(out, "`/deploy test` by %s: each built artifact, by its exact digest, in one transaction per target on the local target `test` (%s).\n\n",
		cfg.User, filepath.Join(cfg.DataDir, "targets", "test"))
	res, err := core.DeployTest(ctx, req)
	fmt.Fprint(out, res.Markdown())
	if err != nil {
		return &cycleStopped{3, oneLineErr(err)}
	}

	// Step 4: merge and /deploy prod.
	stepHeader(out, 4)
	if cfg.CommitChangelog {
		merge, err := git.merge(ctx, cfg.Base, rev.HeadSHA, cfg.User, fmt.Sprintf("Merge pull request #%d (%s)", cfg.PR, shortSHA(rev.HeadSHA)))
		if err != nil {
			return &cycleStopped{4, err.Error()}
		}
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
	prodReq := req
	prodReq.Merged, prodReq.Approver = true, cfg.User
	fmt.Fprintf(out, "`/deploy prod` by %s: the artifacts that passed on `test`, on the local target `prod` (%s).\n\n", cfg.User, filepath.Join(cfg.DataDir, "targets", "prod"))
	res, err = core.DeployProd(ctx, prodReq)
	fmt.Fprint(out, res.Markdown())
	if err != nil {
		return &cycleStopped{4, oneLineErr(err)}
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
	fmt.Fprintf(out, "```\n")
	return nil
}

// cycleBuild publishes the base's sets of the targets to build on both
// targets (standing in for what production has before the PR), then builds
// each changed target of this host's arch on the test target's tree, as
// the bot's builder does. It returns the deploy items of the built
// targets.
func cycleBuild(ctx context.Context, cfg cycleConfig, rev *setscheck.Revisions, pubs map[string]publish.Publisher, out, progress io.Writer) ([]deploy.Item, error) {
	opts := cfg.Build
	opts.DataDir = filepath.Join(cfg.DataDir, "build")
	opts.SeedFromBase = false
	opts.Lower = publish.Lower{P: pubs[deploy.EnvTest], Empty: filepath.Join(cfg.DataDir, "empty-lower")}

	var seeded []string
	for _, d := range sets.Diff(rev.Base, rev.Head) {
		sf := rev.Base.Set(d.Target)
		if d.Target.Arch != build.HostArch() || sf == nil || rev.Head.Set(d.Target) == nil {
			continue
		}
		for _, env := range []string{deploy.EnvTest, deploy.EnvProd} {
			tag, err := publishBase(ctx, cfg, opts, rev, sf, d.Target, env, pubs[env], progress)
			if err != nil {
				return nil, &cycleStopped{2, fmt.Sprintf("publishing the base of %s to %s: %v", d.Target, env, err)}
			}
			seeded = append(seeded, fmt.Sprintf("`%s` on %s", tag, env))
		}
	}
	if len(seeded) > 0 {
		fmt.Fprintf(out, "First the base `%s` (`%s`) is built and published to both targets, as what they hold before the PR: %s.\n\n",
			cfg.Base, shortSHA(rev.BaseSHA), strings.Join(seeded, ", "))
	}
	builds, err := runLocalBuild(ctx, opts, cfg.Repo, rev, progress)
	if err != nil {
		return nil, &cycleStopped{2, err.Error()}
	}
	var items []deploy.Item
	var failed []string
	for i, b := range builds {
		if i > 0 {
			fmt.Fprintln(out)
		}
		fmt.Fprint(out, b.Check.Markdown())
		switch {
		case b.Check.Conclusion == report.Failure:
			failed = append(failed, fmt.Sprintf("%s: %s", b.Target, b.Check.Title))
		case b.Check.Conclusion == report.Success && b.Outcome != nil && b.Outcome.Artifact != nil:
			items = append(items, deploy.Item{Target: b.Target, Digest: b.Outcome.Artifact.Digest, BaseLineage: b.BaseLineage, Changes: b.Changes})
		}
	}
	if len(failed) > 0 {
		return nil, &cycleStopped{2, "the build failed for " + strings.Join(failed, "; ")}
	}
	if len(items) == 0 {
		return nil, &cycleStopped{2, fmt.Sprintf("nothing was built on this %s host, so there is nothing to deploy", build.HostArch())}
	}
	return items, nil
}

// publishBase builds the base set sf straight into a transaction of pub
// and publishes it, tagged <version>-<os>-<arch>-base-<sha7>.
func publishBase(ctx context.Context, cfg cycleConfig, opts localBuildOptions, rev *setscheck.Revisions, sf *sets.SetFile, t sets.Target, env string, pub publish.Publisher, progress io.Writer) (string, error) {
	path, err := deploy.TargetPath(t)
	if err != nil {
		return "", err
	}
	work := filepath.Join(opts.DataDir, "checkouts", "base-"+shortSHA(rev.BaseSHA))
	if _, err := os.Stat(work); err != nil {
		if err := gitrepo.ExportTree(ctx, cfg.Repo, rev.BaseSHA, work); err != nil {
			return "", fmt.Errorf("checking out base %s: %w", shortSHA(rev.BaseSHA), err)
		}
	}
	tx, err := pub.Transaction(ctx, path)
	if err != nil {
		return "", err
	}
	logPath := filepath.Join(opts.DataDir, "runs", "base-"+env+"-"+runID(t, rev.BaseSHA), "build.log")
	fmt.Fprintf(progress, "compatbot: %s: building the base %s into %s (log at %s)\n", t, shortSHA(rev.BaseSHA), env, logPath)
	if err := os.MkdirAll(filepath.Join(opts.DataDir, "distfiles"), 0o755); err != nil {
		tx.Abort(ctx)
		return "", err
	}
	res, err := (&build.LocalRunner{}).Run(ctx, build.Job{
		Target: t, SetName: sf.Name, SetFile: filepath.Join(work, filepath.FromSlash(sf.Path)),
		Command: opts.Command, Env: opts.Env, WorkDir: work, Prefix: tx.Dir(),
		DistDir: filepath.Join(opts.DataDir, "distfiles"), Timeout: opts.Timeout, LogPath: logPath,
	})
	if err == nil && !res.OK() {
		err = fmt.Errorf("the build command exited %d; see %s", res.ExitCode, logPath)
	}
	if err != nil {
		tx.Abort(ctx)
		return "", err
	}
	tag := fmt.Sprintf("%s-%s-%s-base-%s", t.Version, t.OS, t.Arch, rev.BaseSHA[:7])
	msg := fmt.Sprintf("%s: the base %s@%s, what %s had before PR #%d (compatbot check, local)", t, cfg.Base, rev.BaseSHA[:7], env, cfg.PR)
	if _, err := tx.Publish(ctx, tag, msg); err != nil {
		tx.Abort(ctx)
		return "", err
	}
	return tag, nil
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

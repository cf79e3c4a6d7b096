package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/compatbot/compatbot"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/portage"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/setscheck"
)

func init() {
	register(command{Name: "check", Summary: "what the bot does for a PR, run locally: sets check; with --build, --deploy or --example the whole cycle", Run: checkCmd})
}

const checkUsage = `Usage:
  compatbot check [--repo DIR] [--base REF] [--head REF] [--build | --deploy [--data-dir DIR]] [--env NAME=VALUE]...
  compatbot check --example [--data-dir DIR] [--env NAME=VALUE]...
                  [--portage PATH [--eprefix TEMPLATE]] [--sandbox]

Runs on your machine what compatbot does for a pull request: lints the sets
of the head commit, diffs them against the base, applies the policy of the
base's .github/compatbot.yml (frozen versions, risky packages), and prints
the Markdown of the "compat sets" check run.

--base defaults to origin's default branch (refs/remotes/origin/HEAD), else
main, else master; --head defaults to HEAD.

--example runs the whole cycle on the example pull request embedded in
compatbot, in --data-dir (default var/example, recreated on every run): a
git repository at DIR/repo (branches main and pr, the base and head of
PR #1), the sets check, a build of each changed target of this machine's
arch with the fake installer (other arches: no build host), "/deploy test"
and "/deploy prod" into local publish targets DIR/targets/test and
DIR/targets/prod (the needs-approval findings approved by you, the local
user), the changelog committed to main of DIR/repo and kept in
DIR/compatbot.db, and where all of it is. Each step prints its report; the
cycle stops at the first step that fails.

The builds use the fake installer (a test double of emerge that records
packages and writes placeholder files, compiling nothing) unless --portage
PATH names a Portage release (tarball or unpacked tree, e.g. the one in
../shared/portage): then the whole cycle runs on Gentoo's real emerge with
the example made for it, a PR against compatbot's test ebuild repository
(written to DIR/ebuild-repo, its sources to DIR/sources, fetched through
compatbot's mirror): the base and the PR built from source at the EPREFIX
--eprefix TEMPLATE (default ` + portage.DefaultEPrefix + `;
outside a build nothing is mounted there, but the directory is created when
missing), the repo config's package.mask and package.use lines in the
Prefix, its tools list in the compat tests. It needs root, Python 3, a C
compiler and an x86_64 host (the test repository has only an amd64
profile). The report names the installer it used. --sandbox runs every
build under bubblewrap with no network.

--build builds and tests each changed target like the bot does (in a
local overlay under var/build, with the fake installer of a compatbot
checkout; see 'compatbot build --help') and prints one more check per
target. It is skipped when the sets check fails.

--deploy runs the cycle of --example on --repo (PR number 1; --data-dir
default var/check, recreated on every run). Your repository is only read:
the PR counts as merged and the changelog stays in DIR/compatbot.db.

--env NAME=VALUE is passed to the build command (repeatable), e.g.
FAKEEMERGE_FAIL=dev-util/direnv makes the fake installer fail that package.

Exit status: 0 when the check concludes success or action_required (packages
that need approval are listed; approving is a person's job, not a failure)
and every later step ran through, 1 when it concludes failure (a lint error
or a change the policy refuses), a build fails or the cycle stopped,
2 on usage errors or when a revision cannot be read.

Examples:
  compatbot check --example
  compatbot check --example --portage ../shared/portage/portage-3.0.82.tar.xz
  compatbot check --repo ~/compat-layer --base origin/main --head my-branch
  compatbot check --repo ~/compat-layer --head my-branch --deploy
`

// checkBuild is "check --build": it builds and tests the head's changed
// targets after the sets check and returns their check runs, printed after
// the sets report and counted in the exit status. It is only called when
// the sets check did not fail, since a head that does not lint is not built.
// The binary's is localCheckBuild (build.go).
type checkBuild func(ctx context.Context, gitDir string, rev *setscheck.Revisions, stdout, stderr io.Writer) ([]report.Check, error)

func checkCmd(args []string, stdout, stderr io.Writer) int {
	return checkMain(localCheckBuild, args, stdout, stderr)
}

func checkMain(checkBuildHook checkBuild, args []string, stdout, stderr io.Writer) int {
	fl := newFlags("check", checkUsage, stdout, stderr)
	repo := fl.String("repo", ".", "the compat-layer git repository (work tree or bare)")
	base := fl.String("base", "", "base `REF` of the pull request (default: origin/HEAD, main or master)")
	head := fl.String("head", "HEAD", "head `REF` of the pull request")
	example := fl.Bool("example", false, "check the example pull request embedded in compatbot")
	dataDir := fl.String("data-dir", "", "`DIR` of --example (default var/example) or --deploy (default var/check); recreated each run")
	build := fl.Bool("build", false, "also build and test each changed target in a local overlay (see 'compatbot build --help'); only when the sets check did not fail")
	deployFl := fl.Bool("deploy", false, "run the whole local cycle of --example on --repo (implies --build)")
	env := envFlag{}
	fl.Var(env, "env", "extra `NAME=VALUE` for the build command (repeatable)")
	portagePath := fl.String("portage", "", "with --example: build with real Portage, a release tarball or tree at `PATH`, on the example made for it")
	eprefix := fl.String("eprefix", portage.DefaultEPrefix, "with --portage: the EPREFIX `TEMPLATE` the builds run at")
	sandbox := fl.Bool("sandbox", false, "with --example or --deploy: run the builds under bubblewrap with no network")
	if code, done := parseFlags(fl, args, stdout); done {
		return code
	}
	set := map[string]bool{}
	fl.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *portagePath != "" && !*example:
		fmt.Fprintln(stderr, "compatbot check: --portage needs --example (for a repository of your own, real emerge is compatbot serve's build: ebuild_repos, or compatbot build --ebuild-repo)")
		return 2
	case set["eprefix"] && *portagePath == "":
		fmt.Fprintln(stderr, "compatbot check: --eprefix needs --portage")
		return 2
	case *sandbox && !*example && !*deployFl:
		fmt.Fprintln(stderr, "compatbot check: --sandbox needs --example or --deploy")
		return 2
	}
	cycle := *example || *deployFl
	if *dataDir == "" {
		*dataDir = filepath.Join("var", "check")
		if *example {
			*dataDir = filepath.Join("var", "example")
		}
	}
	var dataAbs string
	if cycle {
		var err error
		if dataAbs, err = filepath.Abs(*dataDir); err != nil {
			fmt.Fprintf(stderr, "compatbot check: %v\n", err)
			return 2
		}
	}
	if *build && checkBuildHook == nil {
		fmt.Fprintln(stderr, "compatbot check: --build is not available in this binary yet")
		return 2
	}
	ctx := context.Background()
	var real *portageConfig
	if *example {
		if set["repo"] || set["base"] || set["head"] {
			fmt.Fprintln(stderr, "compatbot check: --example makes its own repository; drop --repo, --base and --head")
			return 2
		}
		exRepo := filepath.Join(dataAbs, "repo")
		if err := prepareDataDir(dataAbs); err != nil {
			fmt.Fprintf(stderr, "compatbot check --example: %v\n", err)
			return 2
		}
		ex := fakeExample
		if *portagePath != "" {
			ex = portageExample
			var err error
			if real, err = writePortageExample(dataAbs, *portagePath, *eprefix); err != nil {
				fmt.Fprintf(stderr, "compatbot check --example: %v\n", err)
				return 2
			}
		}
		if err := ex.make(ctx, exRepo); err != nil {
			fmt.Fprintf(stderr, "compatbot check --example: %v\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "compatbot: example repository at %s (branches main and pr); checking pr against main\n\n", exRepo)
		*repo, *base, *head = exRepo, "main", "pr"
	}
	if *base == "" {
		b, err := defaultBase(ctx, *repo)
		if err != nil {
			fmt.Fprintf(stderr, "compatbot check: %v\n", err)
			return 2
		}
		*base = b
	}
	c, rev, err := setscheck.CheckRefs(ctx, *repo, *base, *head)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot check: %v\n", err)
		return 2
	}
	if cycle {
		return checkCycle(ctx, *example, dataAbs, *repo, *base, env, real, *sandbox, c, rev, stdout, stderr)
	}
	fmt.Fprint(stdout, c.Markdown())
	failed := c.Conclusion == report.Failure
	if *build && !failed {
		more, err := checkBuildHook(ctx, *repo, rev, stdout, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "compatbot check --build: %v\n", err)
			return 2
		}
		for _, m := range more {
			fmt.Fprint(stdout, "\n"+m.Markdown())
			failed = failed || m.Conclusion == report.Failure
		}
	}
	if failed {
		return 1
	}
	return 0
}

// checkCycle is --example and --deploy: the sets check c as step 1, then
// runCycle. real builds with real emerge (--portage) instead of the fake
// installer.
func checkCycle(ctx context.Context, example bool, dataDir, repo, base string, env envFlag, real *portageConfig, sandbox bool, c report.Check, rev *setscheck.Revisions, stdout, stderr io.Writer) int {
	if !example {
		if err := prepareDataDir(dataDir); err != nil {
			fmt.Fprintf(stderr, "compatbot check --deploy: %v\n", err)
			return 2
		}
	}
	absRepo, err := filepath.Abs(repo)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot check: %v\n", err)
		return 2
	}
	opts, err := defaultLocalBuildOptions()
	if err != nil {
		fmt.Fprintf(stderr, "compatbot check: %v\n", err)
		return 2
	}
	for k, v := range env {
		opts.Env[k] = v
	}
	opts.Sandbox = sandbox
	cfg := cycleConfig{DataDir: dataDir, Repo: absRepo, Base: base, RepoName: "local/" + repoSlug(absRepo), PR: examplePR,
		User: localUser(), Build: opts, CommitChangelog: example,
		Installer: fmt.Sprintf("Installer: the **fake installer** `%s`, a test double of emerge: it records packages in the package database and writes placeholder files, compiling nothing (`--portage PATH` runs the cycle on Gentoo's real Portage).", opts.Command[0])}
	if example {
		cfg.RepoName = "example/compat-layer"
	}
	if real != nil {
		rp, err := realPortageOptions(filepath.Join(dataDir, "build"), real.Portage, real.EbuildRepos, real.Profile, real.Distfiles, real.EPrefix, sets.Target{Version: "0", OS: "linux", Arch: build.HostArch()})
		if err != nil {
			fmt.Fprintf(stderr, "compatbot check: %v\n", err)
			return 2
		}
		cfg.Build.Portage, cfg.Build.Command, cfg.Portage = rp, nil, real
		cfg.Installer = fmt.Sprintf("Installer: **real Portage**, Gentoo's emerge from `%s` (%s, run uninstalled), on the ebuild repository `%s` (%s), sources through compatbot's mirror from %s, EPREFIX `%s` (per target).",
			filepath.Base(rp.Config.Release.Dir), real.Portage, rp.Config.Repos[0].Name, rp.Config.Repos[0].Dir, real.Distfiles, rp.eprefix())
	}
	fmt.Fprintf(stdout, "# compatbot check: PR #%d of %s, the whole cycle on this machine\n\n", cfg.PR, cfg.RepoName)
	fmt.Fprintf(stdout, "Head `%s` against base `%s` (`%s`); everything goes to %s.\n\n%s\n", shortSHA(rev.HeadSHA), base, shortSHA(rev.BaseSHA), dataDir, cfg.Installer)
	stepHeader(stdout, 1)
	fmt.Fprint(stdout, c.Markdown())
	err = runCycle(ctx, cfg, c, rev, stdout, stderr)
	var stop *cycleStopped
	switch {
	case errors.As(err, &stop):
		fmt.Fprintf(stdout, "\n---\n\n**The cycle stopped at step %d (%s):** %s\n", stop.Step, cycleSteps[stop.Step-1], stop.Reason)
		fmt.Fprintf(stderr, "compatbot check: %v\n", err)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "compatbot check: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "\n---\n\n**The cycle ran through:** PR #%d is built, on `test` and on `prod`, and in the changelog.\n", cfg.PR)
	return 0
}

// repoSlug is a repository directory's name as the name part of
// owner/name in deploy requests.
func repoSlug(dir string) string {
	s := unsafeRun.ReplaceAllString(filepath.Base(dir), "-")
	s = strings.TrimLeft(s, ".-")
	if s == "" {
		return "repo"
	}
	return s
}

// defaultBase picks the branch a PR would target.
func defaultBase(ctx context.Context, repo string) (string, error) {
	for _, ref := range []string{"refs/remotes/origin/HEAD", "main", "master"} {
		if _, err := gitrepo.ResolveCommit(ctx, repo, ref); err == nil {
			return ref, nil
		}
	}
	return "", fmt.Errorf("%s: no origin/HEAD, main or master to compare with; give --base", repo)
}

// exampleRepo is an example repository embedded in compatbot: the trees
// of its default branch and of its PR's head, with their commit messages.
type exampleRepo struct {
	base, head       fs.FS
	baseMsg, headMsg string
}

var (
	// fakeExample is check --example's, built with the fake installer.
	fakeExample = exampleRepo{compatbot.ExampleBase, compatbot.ExampleHead,
		"Example compat layer: 2025.06 (frozen) and 2026.06", "2026.06: newer Lmod and Python, add direnv and zstd; 2025.06: xz-utils security update"}
	// portageExample is check --example --portage's: sets of compatbot's
	// test ebuild repository, which real emerge can build in seconds.
	portageExample = exampleRepo{compatbot.PortageExampleBase, compatbot.PortageExampleHead,
		"Example compat layer for real Portage: 2026.06 with libgreet and hello", "2026.06: add oldtool"}
)

// make (re)creates the example repository at dir, removing whatever was
// there: --example calls it on <data-dir>/repo right after
// prepareDataDir, which refuses a data directory it did not make.
func (e exampleRepo) make(ctx context.Context, dir string) error {
	return gitrepo.InitFromDirs(ctx, dir,
		gitrepo.CommitSpec{Branch: "main", Tree: e.base, Message: e.baseMsg},
		gitrepo.CommitSpec{Branch: "pr", Tree: e.head, Message: e.headMsg},
	)
}

// makeExample makes check --example's repository at dir.
func makeExample(ctx context.Context, dir string) error { return fakeExample.make(ctx, dir) }

// writePortageExample writes the real-Portage example's ebuild repository
// and its sources (embedded in compatbot) into the data directory, and
// returns the build: keys a server would have for them.
func writePortageExample(dataDir, portagePath, eprefix string) (*portageConfig, error) {
	repo, src := filepath.Join(dataDir, "ebuild-repo"), filepath.Join(dataDir, "sources")
	for dir, files := range map[string]fs.FS{repo: compatbot.PortageRepo, src: compatbot.PortageDistfiles} {
		if err := os.CopyFS(dir, files); err != nil {
			return nil, fmt.Errorf("writing the example's %s: %w", filepath.Base(dir), err)
		}
	}
	abs, err := filepath.Abs(portagePath)
	if err != nil {
		return nil, err
	}
	return &portageConfig{Portage: abs, EbuildRepos: []string{repo}, Distfiles: src, EPrefix: eprefix}, nil
}

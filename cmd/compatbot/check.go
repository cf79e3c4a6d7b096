package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/compatbot/compatbot"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/setscheck"
)

func init() {
	register(command{Name: "check", Summary: "what the bot does for a PR, run locally: sets check; with --build, --deploy or --example the whole cycle", Run: checkCmd})
}

const checkUsage = `Usage:
  compatbot check [--repo DIR] [--base REF] [--head REF] [--build | --deploy [--data-dir DIR]] [--env NAME=VALUE]...
  compatbot check --example [--data-dir DIR] [--env NAME=VALUE]...

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
	if code, done := parseFlags(fl, args, stdout); done {
		return code
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
	if *example {
		set := map[string]bool{}
		fl.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if set["repo"] || set["base"] || set["head"] {
			fmt.Fprintln(stderr, "compatbot check: --example makes its own repository; drop --repo, --base and --head")
			return 2
		}
		exRepo := filepath.Join(dataAbs, "repo")
		if err := prepareDataDir(dataAbs); err != nil {
			fmt.Fprintf(stderr, "compatbot check --example: %v\n", err)
			return 2
		}
		if err := makeExample(ctx, exRepo); err != nil {
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
		return checkCycle(ctx, *example, dataAbs, *repo, *base, env, c, rev, stdout, stderr)
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
// runCycle.
func checkCycle(ctx context.Context, example bool, dataDir, repo, base string, env envFlag, c report.Check, rev *setscheck.Revisions, stdout, stderr io.Writer) int {
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
	cfg := cycleConfig{DataDir: dataDir, Repo: absRepo, Base: base, RepoName: "local/" + repoSlug(absRepo), PR: examplePR,
		User: localUser(), Build: opts, CommitChangelog: example}
	if example {
		cfg.RepoName = "example/compat-layer"
	}
	fmt.Fprintf(stdout, "# compatbot check: PR #%d of %s, the whole cycle on this machine\n\n", cfg.PR, cfg.RepoName)
	fmt.Fprintf(stdout, "Head `%s` against base `%s` (`%s`); everything goes to %s.\n", shortSHA(rev.HeadSHA), base, shortSHA(rev.BaseSHA), dataDir)
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

// makeExample (re)creates the example repository at dir, removing whatever
// was there: --example calls it on <data-dir>/repo right after
// prepareDataDir, which refuses a data directory it did not make.
func makeExample(ctx context.Context, dir string) error {
	return gitrepo.InitFromDirs(ctx, dir,
		gitrepo.CommitSpec{Branch: "main", Tree: compatbot.ExampleBase, Message: "Example compat layer: 2025.06 (frozen) and 2026.06"},
		gitrepo.CommitSpec{Branch: "pr", Tree: compatbot.ExampleHead, Message: "2026.06: newer Lmod and Python, add direnv and zstd; 2025.06: xz-utils security update"},
	)
}

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

	"github.com/compatbot/compatbot"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/setscheck"
)

func init() {
	register(command{Name: "check", Summary: "what the bot reports on a PR, run locally (lint, policy, diff)", Run: checkCmd})
	checkBuildHook = localCheckBuild // build.go
}

const checkUsage = `Usage:
  compatbot check [--repo DIR] [--base REF] [--head REF]
  compatbot check --example [--data-dir DIR]

Runs on your machine what compatbot does for a pull request: lints the sets
of the head commit, diffs them against the base, applies the policy of the
base's .github/compatbot.yml (frozen versions, risky packages), and prints
the Markdown of the "compat sets" check run.

--base defaults to origin's default branch (refs/remotes/origin/HEAD), else
main, else master; --head defaults to HEAD.

--example writes the example compat-layer repository embedded in compatbot
into a fresh git repository at --data-dir (branches main and pr: the base and
the head of an example pull request) and checks pr against main.

Exit status: 0 when the check concludes success or action_required (packages
that need approval are listed; approving is a person's job, not a failure),
1 when it concludes failure (a lint error or a change the policy refuses),
2 on usage errors or when a revision cannot be read.

--build then builds and tests each changed target like the bot does (in
a local overlay under var/build, with the fake installer of a compatbot
checkout; see 'compatbot build --help') and prints one more check per
target. It is skipped when the sets check fails.

Examples:
  compatbot check --example
  compatbot check --repo ~/compat-layer --base origin/main --head my-branch
`

// checkBuildHook is where "check --build" plugs in: when set (by the build
// command's file, in its init), it builds and tests the head's changed
// targets after the sets check and returns their check runs, printed after
// the sets report and counted in the exit status. It is only called when
// the sets check did not fail, since a head that does not lint is not built.
var checkBuildHook func(ctx context.Context, gitDir string, rev *setscheck.Revisions, stdout, stderr io.Writer) ([]report.Check, error)

// exampleMarker marks a directory as an example repository made by
// compatbot, so --example only ever deletes what it created itself.
const exampleMarker = ".git/compatbot-example"

func checkCmd(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("check", checkUsage, stdout, stderr)
	repo := fl.String("repo", ".", "the compat-layer git repository (work tree or bare)")
	base := fl.String("base", "", "base `REF` of the pull request (default: origin/HEAD, main or master)")
	head := fl.String("head", "HEAD", "head `REF` of the pull request")
	example := fl.Bool("example", false, "check the example pull request embedded in compatbot")
	dataDir := fl.String("data-dir", filepath.Join("var", "example-repo"), "where --example creates its git repository (`DIR`, recreated each run)")
	build := fl.Bool("build", false, "also build and test each changed target in a local overlay (see 'compatbot build --help'); only when the sets check did not fail")
	if code, done := parseFlags(fl, args, stdout); done {
		return code
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
		if err := makeExample(ctx, *dataDir); err != nil {
			fmt.Fprintf(stderr, "compatbot check --example: %v\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "compatbot: example repository at %s (branches main and pr); checking pr against main\n\n", *dataDir)
		*repo, *base, *head = *dataDir, "main", "pr"
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

// defaultBase picks the branch a PR would target.
func defaultBase(ctx context.Context, repo string) (string, error) {
	for _, ref := range []string{"refs/remotes/origin/HEAD", "main", "master"} {
		if _, err := gitrepo.ResolveCommit(ctx, repo, ref); err == nil {
			return ref, nil
		}
	}
	return "", fmt.Errorf("%s: no origin/HEAD, main or master to compare with; give --base", repo)
}

// makeExample (re)creates the example repository at dir. It refuses to
// replace a non-empty directory it did not create.
func makeExample(ctx context.Context, dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case len(ents) > 0:
		if _, err := os.Stat(filepath.Join(dir, exampleMarker)); err != nil {
			return fmt.Errorf("refusing to replace %s: it is not empty and was not made by compatbot --example", dir)
		}
	}
	err = gitrepo.InitFromDirs(ctx, dir,
		gitrepo.CommitSpec{Branch: "main", Tree: compatbot.ExampleBase, Message: "Example compat layer: 2025.06 (frozen) and 2026.06"},
		gitrepo.CommitSpec{Branch: "pr", Tree: compatbot.ExampleHead, Message: "2026.06: newer Lmod and Python, add direnv and zstd; 2025.06: xz-utils security update"},
	)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, exampleMarker), []byte("made by compatbot check --example; safe to delete\n"), 0o644)
}

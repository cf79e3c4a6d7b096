package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/setscheck"
)

func init() {
	register(command{Name: "sets", Summary: "lint and diff package set files (sets lint|diff)", Run: setsCmd})
}

const setsUsage = `Usage:
  compatbot sets lint [--repo DIR] [--ref REF]
  compatbot sets diff --repo DIR --base REF --head REF [--format text|json|markdown]

lint checks every set file of the repository (layout and config from its
.github/compatbot.yml; without one, the sets/ folder or EESSI's Ansible
role is detected): the work tree's files, or the commit REF when --ref
is given. It prints one "file:line:col: message" per problem and exits 1 when
any is an error, 0 otherwise, 2 when the repository cannot be read.

diff prints the package changes per version and os-arch between two commits.

Examples:
  compatbot sets lint --repo testdata/compat-layer/base
  compatbot sets lint --repo ~/compat-layer --ref origin/main
  compatbot sets diff --repo var/example-repo --base main --head pr --format markdown
`

func setsCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "lint":
			return setsLint(args[1:], stdout, stderr)
		case "diff":
			return setsDiff(args[1:], stdout, stderr)
		case "-h", "--help", "-help", "help":
			fmt.Fprint(stdout, setsUsage)
			return 0
		}
		fmt.Fprintf(stderr, "compatbot sets: unknown subcommand %q\n\n", args[0])
	}
	fmt.Fprint(stderr, setsUsage)
	return 2
}

// newFlags makes a subcommand's FlagSet. Help goes to stdout (exit 0);
// a flag error to stderr with a pointer to the help (exit 2).
func newFlags(name, usage string, stdout, stderr io.Writer) *flagSet {
	fl := flag.NewFlagSet(name, flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {} // printed by parseFlags, once, to the right stream
	return &flagSet{FlagSet: fl, usage: usage}
}

type flagSet struct {
	*flag.FlagSet
	usage string
}

// parseFlags parses args; done is true when the command should return code
// (help shown, or a usage error).
func parseFlags(fl *flagSet, args []string, stdout io.Writer) (code int, done bool) {
	usage := fl.usage
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			fmt.Fprintln(stdout, "\nFlags:")
			fl.SetOutput(stdout)
			fl.PrintDefaults()
			return 0, true
		}
		fmt.Fprintf(fl.Output(), "Run 'compatbot %s --help' for usage.\n", fl.Name())
		return 2, true
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(fl.Output(), "compatbot %s: unexpected argument %q\nRun 'compatbot %s --help' for usage.\n", fl.Name(), fl.Arg(0), fl.Name())
		return 2, true
	}
	return 0, false
}

// loadRepo reads the sets of dir's work tree (ref "") or of commit ref, with
// the configuration of that same tree.
func loadRepo(ctx context.Context, dir, ref string) (*sets.Repo, error) {
	if ref != "" {
		return setscheck.LoadAt(ctx, dir, ref)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	fsys := os.DirFS(dir)
	cfg, err := sets.LoadRepoConfig(fsys)
	if err != nil {
		return nil, err
	}
	return sets.LoadRepo(fsys, cfg)
}

func setsLint(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("sets lint", setsUsage, stdout, stderr)
	repo := fl.String("repo", ".", "the compat-layer repository (work tree, or any git repository with --ref)")
	ref := fl.String("ref", "", "lint the commit `REF` instead of the work tree's files")
	if code, done := parseFlags(fl, args, stdout); done {
		return code
	}
	r, err := loadRepo(context.Background(), *repo, *ref)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot sets lint: %v\n", err)
		return 2
	}
	if len(r.Sets) == 0 && len(r.Diags) == 0 {
		where := fmt.Sprintf("folder %q", r.Config.SetsDir)
		if r.Config.Layout == sets.LayoutEESSIAnsible {
			where = "no Ansible role with lists"
		}
		fmt.Fprintf(stderr, "compatbot sets lint: no set files in %s (layout %q, %s)\n", *repo, r.Config.Layout, where)
		return 2
	}
	diags := sets.Lint(r)
	errs := 0
	for _, d := range diags {
		fmt.Fprintln(stdout, d.String())
		if d.Severity == sets.SeverityError {
			errs++
		}
	}
	if len(diags) > 0 {
		fmt.Fprintf(stderr, "%d error(s), %d warning(s) in %d set file(s)\n", errs, len(diags)-errs, len(r.Sets))
	}
	if errs > 0 {
		return 1
	}
	return 0
}

func setsDiff(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("sets diff", setsUsage, stdout, stderr)
	repo := fl.String("repo", ".", "the compat-layer git repository (work tree or bare)")
	base := fl.String("base", "", "the older commit `REF` (required)")
	head := fl.String("head", "", "the newer commit `REF` (required)")
	format := fl.String("format", "text", "output `FORMAT`: text, json or markdown")
	if code, done := parseFlags(fl, args, stdout); done {
		return code
	}
	if *base == "" || *head == "" {
		fmt.Fprintln(stderr, "compatbot sets diff: --base and --head are required")
		return 2
	}
	switch *format {
	case "text", "json", "markdown":
	default:
		fmt.Fprintf(stderr, "compatbot sets diff: --format must be text, json or markdown, not %q\n", *format)
		return 2
	}
	// Both sides are read with the base's layout, as the bot reads a PR.
	rev, err := setscheck.Load(context.Background(), *repo, *base, *head)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot sets diff: %v\n", err)
		return 2
	}
	diffs := sets.Diff(rev.Base, rev.Head)
	switch *format {
	case "json":
		if diffs == nil {
			diffs = []sets.TargetDiff{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(diffs); err != nil {
			fmt.Fprintf(stderr, "compatbot sets diff: %v\n", err)
			return 2
		}
	case "markdown":
		fmt.Fprint(stdout, sets.FormatDiffMarkdown(diffs))
	default:
		fmt.Fprint(stdout, sets.FormatDiffText(diffs))
	}
	return 0
}

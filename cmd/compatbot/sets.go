package main

import (
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"

	"github.com/compatbot/compatbot/sets"
)

func init() {
	register(command{Name: "sets", Summary: "lint package set files (sets lint)", Run: setsCmd})
}

const setsUsage = `Usage:
  compatbot sets lint [--repo DIR]   lint every set file under DIR/sets/<version>/<os>-<arch>

Prints one "file:line:col: message" per problem; exit 1 when there is any,
2 when the repository cannot be read.
`

func setsCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "lint" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(stdout, setsUsage)
			return 0
		}
		fmt.Fprint(stderr, setsUsage)
		return 2
	}
	fl := flag.NewFlagSet("sets lint", flag.ContinueOnError)
	fl.SetOutput(stderr)
	repo := fl.String("repo", ".", "the compat-layer repository's work tree")
	fl.Usage = func() { fmt.Fprint(stderr, setsUsage); fl.PrintDefaults() }
	if err := fl.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	fsys := os.DirFS(*repo)
	files, err := fs.Glob(fsys, "sets/*/*")
	if err != nil || len(files) == 0 {
		fmt.Fprintf(stderr, "compatbot sets lint: no set files under %s (want sets/<version>/<os>-<arch>)\n", path.Join(*repo, "sets"))
		return 2
	}
	sort.Strings(files)
	found := 0
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			fmt.Fprintf(stderr, "compatbot sets lint: %v\n", err)
			return 2
		}
		for _, d := range sets.LintSetFile(sets.ParseSetFile(f, data)) {
			fmt.Fprintln(stdout, d.String())
			found++
		}
	}
	if found > 0 {
		fmt.Fprintf(stderr, "%d problem(s) in %d set file(s)\n", found, len(files))
		return 1
	}
	return 0
}

package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/compatbot/compatbot/sets"
)

// stdin is a variable so tests can feed `atom parse` its input.
var stdin io.Reader = os.Stdin

func init() {
	register(command{Name: "atom", Summary: "parse and compare Gentoo atoms (compare, parse)", Run: atomCmd})
}

const atomUsage = `Usage:
  compatbot atom compare A B          order two package-versions, or test A against atom B
  compatbot atom parse [--json] [ATOM...]   split atoms (stdin, one per line, when none given)

compare prints what portage-utils' "qatom -c" prints: "A < B", "A == B" or
"A > B"; when B carries an operator (>=a-1, ~a-1, =a-1*) "A == B" if A
matches B and "A != B" otherwise. Exit 2 on invalid input.
`

func atomCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, atomUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "compare":
		fs := flag.NewFlagSet("atom compare", flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.Usage = func() { fmt.Fprint(stderr, atomUsage) }
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if fs.NArg() != 2 {
			fmt.Fprintln(stderr, "compatbot atom compare: want exactly two arguments, A and B")
			return 2
		}
		verdict, err := sets.CompareVerdict(fs.Arg(0), fs.Arg(1))
		if err != nil {
			fmt.Fprintf(stderr, "compatbot atom compare: %v\n", err)
			return 2
		}
		fmt.Fprintln(stdout, verdict)
		return 0
	case "parse":
		return atomParse(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "compatbot atom: unknown subcommand %q\n\n%s", args[0], atomUsage)
	return 2
}

type atomJSON struct {
	Input    string `json:"input"`
	Category string `json:"category"`
	Package  string `json:"package"`
	Version  string `json:"version"`
	Revision int    `json:"revision"`
	Slot     string `json:"slot"`
	SubSlot  string `json:"subslot"`
	Repo     string `json:"repo"`
	Operator string `json:"operator"`
	Error    string `json:"error"`
}

func atomParse(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("atom parse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "one JSON object per input line")
	fs.Usage = func() { fmt.Fprint(stderr, atomUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	inputs := fs.Args()
	if len(inputs) == 0 {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				inputs = append(inputs, line)
			}
		}
		if err := sc.Err(); err != nil {
			fmt.Fprintf(stderr, "compatbot atom parse: reading stdin: %v\n", err)
			return 2
		}
	}
	failed := false
	enc := json.NewEncoder(stdout)
	for _, in := range inputs {
		out := atomJSON{Input: in}
		a, err := sets.ParseAtomLoose(in)
		if err != nil {
			// A bare package-version ("cat/pkg-1.2", "a-1") is an input too.
			if p, perr := sets.ParsePackageLoose(in); perr == nil {
				a, err = sets.Atom{Category: p.Category, Package: p.Name, Version: &p.Version, Slot: p.Slot, SubSlot: p.SubSlot, Repo: p.Repo}, nil
			}
		}
		if err != nil {
			out.Error = err.Error()
			failed = true
		} else {
			out.Category, out.Package, out.Slot, out.SubSlot, out.Repo = a.Category, a.Package, a.Slot, a.SubSlot, a.Repo
			out.Operator = string(a.Op)
			if a.Glob {
				out.Operator += "*"
			}
			if a.Version != nil {
				v := *a.Version
				out.Revision = v.Revision
				v.Revision, v.RevisionGiven = 0, false
				out.Version = v.String()
			}
		}
		if *asJSON {
			enc.Encode(out)
			continue
		}
		if out.Error != "" {
			fmt.Fprintf(stdout, "%s: error: %s\n", in, out.Error)
			continue
		}
		fmt.Fprintf(stdout, "%s: category=%s package=%s version=%s revision=%d slot=%s subslot=%s repo=%s operator=%s\n",
			in, out.Category, out.Package, out.Version, out.Revision, out.Slot, out.SubSlot, out.Repo, out.Operator)
	}
	if failed {
		return 1
	}
	return 0
}

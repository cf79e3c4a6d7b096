// Package compattest checks a built Prefix: are the set's atoms satisfied,
// what changed against the published (lower) layer, do the required tools
// run, did libc stay put, and do the repository's own tests pass. Each
// check is reported by name; the result is JSON for machines and Markdown
// for people.
package compattest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/vdb"
)

// Check names, stable: they appear in check runs and results.json.
const (
	AtomsSatisfied = "atoms-satisfied"
	PackageChanges = "package-changes"
	Tools          = "tools"
	LibcUnchanged  = "libc-unchanged"
	ExtraTests     = "extra-tests"
)

// Tool is a program that must be present and runnable in the Prefix.
type Tool struct {
	Name string `json:"name"`
	// Paths are candidates relative to the Prefix root, tried in order.
	Paths []string `json:"paths"`
	// Args are passed when running it; the default is --version.
	Args []string `json:"args,omitempty"`
}

// binDirs are where a Prefix keeps programs, searched for a tool's name.
var binDirs = []string{"usr/bin", "bin", "usr/sbin", "sbin"}

// ToolNamed is a tool looked up by name in the Prefix's bin dirs.
func ToolNamed(name string) Tool {
	t := Tool{Name: name}
	for _, d := range binDirs {
		t.Paths = append(t.Paths, d+"/"+name)
	}
	return t
}

// DefaultTools is what a compat layer must offer. Lmod has no program in a
// bin dir: Gentoo's sys-cluster/lmod installs usr/share/Lmod/libexec/lmod,
// which the module shell function calls with the shell's name first.
func DefaultTools() []Tool {
	var ts []Tool
	for _, n := range []string{"bash", "python3"} {
		ts = append(ts, ToolNamed(n))
	}
	ts = append(ts, Tool{Name: "lmod",
		Paths: []string{"usr/share/Lmod/libexec/lmod", "usr/share/lmod/lmod/libexec/lmod", "usr/lmod/lmod/libexec/lmod", "usr/bin/lmod"},
		Args:  []string{"bash", "--version"}})
	for _, n := range []string{"gcc", "g++", "ld", "make", "patch", "emerge"} {
		ts = append(ts, ToolNamed(n))
	}
	return ts
}

// ToolsNamed are the tools of a list of names (the repo config's tools:):
// a name of DefaultTools keeps its definition there (lmod is not in a bin
// dir), any other is looked up in the Prefix's bin dirs (ToolNamed).
func ToolsNamed(names []string) []Tool {
	known := map[string]Tool{}
	for _, t := range DefaultTools() {
		known[t.Name] = t
	}
	ts := make([]Tool, 0, len(names))
	for _, n := range names {
		if t, ok := known[n]; ok {
			ts = append(ts, t)
		} else {
			ts = append(ts, ToolNamed(n))
		}
	}
	return ts
}

// Input is what Run checks.
type Input struct {
	Target sets.Target
	// Prefix is the built Prefix root (the overlay mount).
	Prefix string
	// Lower is the published tree the build started from; "" when empty.
	Lower string
	// Set is the proposed set file; its Path is used for annotations.
	Set *sets.SetFile
	// Tools to check; nil means DefaultTools().
	Tools []Tool
	// AllowLibcUpdate is the PR's explicit consent (label or description
	// "compat: allow-libc-update") to a different glibc version.
	AllowLibcUpdate bool
	// Tests are the repository's extra commands (sets.Config.Tests), argv
	// each, run with COMPAT_PREFIX set.
	Tests [][]string
	// WorkDir is where extra tests run (the PR head checkout); "" = Prefix.
	WorkDir string
	// Timeout applies to each tool and each extra test; 0 means 2 minutes.
	Timeout time.Duration
	// Upper is the overlay's upper directory: the files the build added or
	// changed, which the generic-CPU check scans. "" skips that check.
	Upper string
	// EPrefix is the path the build ran at (recorded in the result).
	EPrefix string
	// Emulator runs the tools (ELF programs only) on the arch's baseline
	// CPU; nil means BaselineEmulator(Target.Arch), empty means natively.
	Emulator []string
}

// CheckResult is one named check.
type CheckResult struct {
	Name        string              `json:"name"`
	Passed      bool                `json:"passed"`
	Summary     string              `json:"summary"`
	Details     string              `json:"details,omitempty"` // Markdown
	Annotations []report.Annotation `json:"annotations,omitempty"`
}

// Change is one package that differs between the lower layer and the build.
type Change struct {
	Package string `json:"package"` // cat/pkg
	Kind    string `json:"kind"`    // added, upgraded, downgraded, removed, changed
	Before  string `json:"before,omitempty"`
	After   string `json:"after,omitempty"`
}

// Result is the outcome of all checks on one built Prefix.
type Result struct {
	Target sets.Target `json:"target"`
	// EPrefix is the path the Prefix was built for (its EPREFIX).
	EPrefix   string        `json:"eprefix,omitempty"`
	Passed    bool          `json:"passed"`
	Checks    []CheckResult `json:"checks"`
	Changes   []Change      `json:"changes"`
	Installed []string      `json:"installed"` // cat/pkg-ver::repo
	// LibcBefore/After are the glibc versions of the lower layer and the build.
	LibcBefore string `json:"libc_before,omitempty"`
	LibcAfter  string `json:"libc_after,omitempty"`
}

// Failed lists the names of failed checks.
func (r Result) Failed() []string {
	var f []string
	for _, c := range r.Checks {
		if !c.Passed {
			f = append(f, c.Name)
		}
	}
	return f
}

// Annotations of all checks.
func (r Result) Annotations() []report.Annotation {
	var a []report.Annotation
	for _, c := range r.Checks {
		a = append(a, c.Annotations...)
	}
	return a
}

// Run runs every check. It does not fail as a whole: a check that cannot
// run (an unreadable database, say) is reported as that check failing.
func Run(ctx context.Context, in Input) Result {
	if in.Timeout <= 0 {
		in.Timeout = 2 * time.Minute
	}
	if in.Tools == nil {
		in.Tools = DefaultTools()
	}
	res := Result{Target: in.Target, EPrefix: in.EPrefix}
	upper, upErr := vdb.Read(in.Prefix)
	var lower []vdb.Installed
	var lowErr error
	if in.Lower != "" {
		lower, lowErr = vdb.Read(in.Lower)
	}
	for _, p := range upper {
		res.Installed = append(res.Installed, line(p.Package))
	}

	if upErr != nil {
		res.Checks = append(res.Checks, CheckResult{Name: AtomsSatisfied, Summary: "cannot read the package database: " + upErr.Error()})
	} else {
		res.Checks = append(res.Checks, Satisfied(in.Set, upper))
	}
	if upErr != nil || lowErr != nil {
		res.Checks = append(res.Checks, CheckResult{Name: PackageChanges, Summary: "cannot read the package database: " + firstErr(upErr, lowErr).Error()})
	} else {
		var c CheckResult
		res.Changes, c = packageChanges(lower, upper)
		res.Checks = append(res.Checks, c)
	}
	res.Checks = append(res.Checks, tools(ctx, in))
	var lc CheckResult
	res.LibcBefore, res.LibcAfter, lc = libc(in, lower, upper)
	res.Checks = append(res.Checks, lc)
	res.Checks = append(res.Checks, extraTests(ctx, in))
	if in.Upper != "" {
		res.Checks = append(res.Checks, genericCPU(ctx, in, upper))
	}

	res.Passed = true
	for _, c := range res.Checks {
		res.Passed = res.Passed && c.Passed
	}
	return res
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// line prints an installed package the way the reproducibility file lists
// it: cat/pkg-ver::repo.
func line(p sets.Package) string {
	s := p.CP() + "-" + p.Version.String()
	if p.Repo != "" {
		s += "::" + p.Repo
	}
	return s
}

// Satisfied is the atoms-satisfied check: every atom of sf (version, slot
// and repo honoured; blockers inverted) against the installed packages,
// with an annotation on the set line of each one that is not. `compatbot
// status` uses it too, for drift between a published tree and the sets.
func Satisfied(sf *sets.SetFile, installed []vdb.Installed) CheckResult {
	c := CheckResult{Name: AtomsSatisfied, Passed: true}
	if sf == nil {
		c.Passed, c.Summary = false, "no set file given"
		return c
	}
	// Indexed by name: a set of a thousand atoms against a thousand
	// packages would otherwise be a million matches.
	byName := map[string][]vdb.Installed{}
	for _, in := range installed {
		byName[in.Package.Name] = append(byName[in.Package.Name], in)
	}
	n, bad := 0, 0
	var rows []string
	for _, e := range sf.Entries {
		if e.Atom == nil {
			continue // set references and unparsable tokens: lint's business
		}
		n++
		a := *e.Atom
		var match, sameName []string
		for _, in := range byName[a.Package] {
			blocked := a
			blocked.Blocker = sets.NoBlocker
			if blocked.Matches(in.Package) {
				match = append(match, in.Package.String())
			} else if a.Category == "" || a.Category == in.Package.Category { // same name: byName
				sameName = append(sameName, in.Package.String())
			}
		}
		var msg string
		switch {
		case a.Blocker != sets.NoBlocker && len(match) > 0:
			msg = fmt.Sprintf("%s is blocked but %s is installed", e.Token, strings.Join(match, ", "))
		case a.Blocker == sets.NoBlocker && len(match) == 0 && len(sameName) > 0:
			msg = fmt.Sprintf("%s is not satisfied: installed is %s", e.Token, strings.Join(sameName, ", "))
		case a.Blocker == sets.NoBlocker && len(match) == 0:
			msg = fmt.Sprintf("%s is not satisfied: %s is not installed", e.Token, a.CP())
		default:
			continue
		}
		bad++
		rows = append(rows, fmt.Sprintf("| %d | `%s` | %s |", e.Line, e.Token, mdCell(msg)))
		c.Annotations = append(c.Annotations, report.Annotation{
			Path: sf.Path, StartLine: e.Line, EndLine: e.Line, StartCol: e.Col, EndCol: e.Col + len(e.Token),
			Level: report.Error, Title: "atom not satisfied by the build", Message: msg,
		})
	}
	if bad == 0 {
		c.Summary = fmt.Sprintf("all %d atoms satisfied", n)
		return c
	}
	c.Passed = false
	c.Summary = fmt.Sprintf("%d of %d atoms not satisfied", bad, n)
	c.Details = "| line | atom | problem |\n|---|---|---|\n" + strings.Join(rows, "\n") + "\n"
	return c
}

func packageChanges(lower, upper []vdb.Installed) ([]Change, CheckResult) {
	group := func(l []vdb.Installed) map[string][]sets.Package {
		m := map[string][]sets.Package{}
		for _, i := range l {
			m[i.Package.CP()] = append(m[i.Package.CP()], i.Package)
		}
		return m
	}
	lo, up := group(lower), group(upper)
	cps := map[string]bool{}
	for cp := range lo {
		cps[cp] = true
	}
	for cp := range up {
		cps[cp] = true
	}
	var changes []Change
	for cp := range cps {
		changes = append(changes, diffPackage(cp, lo[cp], up[cp])...)
	}
	sort.Slice(changes, func(i, j int) bool {
		if changes[i].Package != changes[j].Package {
			return changes[i].Package < changes[j].Package
		}
		return changes[i].Before+changes[i].After < changes[j].Before+changes[j].After
	})
	c := CheckResult{Name: PackageChanges, Passed: true}
	count := map[string]int{}
	for _, ch := range changes {
		count[ch.Kind]++
	}
	var parts []string
	for _, k := range []string{"added", "upgraded", "downgraded", "changed", "removed"} {
		if count[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[k], k))
		}
	}
	if len(parts) == 0 {
		c.Summary = "no package changes"
		return changes, c
	}
	c.Summary = strings.Join(parts, ", ")
	c.Details = changesTable(changes)
	return changes, c
}

// changesTable renders changes as a Markdown table.
func changesTable(changes []Change) string {
	var b strings.Builder
	b.WriteString("| package | change | before | after |\n|---|---|---|---|\n")
	for _, ch := range changes {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", ch.Package, ch.Kind, orDash(ch.Before), orDash(ch.After))
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// diffPackage pairs the installed versions of one cat/pkg: one on each side
// pair up directly; several (slotted packages) pair by slot.
func diffPackage(cp string, lo, up []sets.Package) []Change {
	// ver[:slot[/sub]][::repo]: the package's String without "cat/pkg-".
	desc := func(p sets.Package) string { return strings.TrimPrefix(p.String(), p.CP()+"-") }
	pair := func(a, b sets.Package) []Change {
		ch := Change{Package: cp, Before: desc(a), After: desc(b)}
		switch c := b.Version.Compare(a.Version); {
		case c > 0:
			ch.Kind = "upgraded"
		case c < 0:
			ch.Kind = "downgraded"
		case ch.Before != ch.After:
			ch.Kind = "changed"
		default:
			return nil
		}
		return []Change{ch}
	}
	if len(lo) == 1 && len(up) == 1 {
		return pair(lo[0], up[0])
	}
	var out []Change
	used := make([]bool, len(up))
	for _, a := range lo {
		found := false
		for j, b := range up {
			if !used[j] && a.Slot == b.Slot {
				used[j], found = true, true
				out = append(out, pair(a, b)...)
				break
			}
		}
		if !found {
			out = append(out, Change{Package: cp, Kind: "removed", Before: desc(a)})
		}
	}
	for j, b := range up {
		if !used[j] {
			out = append(out, Change{Package: cp, Kind: "added", After: desc(b)})
		}
	}
	return out
}

func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// Markdown renders the results as a check run's text.
func (r Result) Markdown() string {
	var b strings.Builder
	b.WriteString("| check | result | summary |\n|---|---|---|\n")
	for _, c := range r.Checks {
		verdict := "✅ pass"
		if !c.Passed {
			verdict = "❌ fail"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", c.Name, verdict, mdCell(c.Summary))
	}
	for _, c := range r.Checks {
		if c.Details != "" {
			fmt.Fprintf(&b, "\n#### %s\n\n%s", c.Name, c.Details)
		}
	}
	return b.String()
}

// WriteFiles writes results.json (machine-readable) and results.md (the
// same for people) into dir.
func (r Result) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	md := fmt.Sprintf("# compat tests: %s\n\n%s", r.Target, r.Markdown())
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644)
}

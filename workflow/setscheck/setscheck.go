// Package setscheck builds the "compat sets" check run of a pull request:
// the head's sets linted, diffed against the base, and judged by the base's
// policy, rendered as the report.Check the bot posts and `compatbot check`
// prints.
package setscheck

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/report"
)

// CheckName is the name of the check run on GitHub.
const CheckName = "compat sets"

// LoadAt reads the sets of the commit ref in the repository at gitDir, with
// the configuration found in that same commit. Use it for one revision on
// its own (`sets lint --ref`); to judge a PR, CheckRefs reads the
// configuration from the base instead.
func LoadAt(ctx context.Context, gitDir, ref string) (*sets.Repo, error) {
	fsys, err := gitrepo.TreeFS(ctx, gitDir, ref)
	if err != nil {
		return nil, err
	}
	cfg, err := sets.LoadRepoConfig(fsys)
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", gitDir, ref, err)
	}
	r, err := sets.LoadRepo(fsys, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", gitDir, ref, err)
	}
	return r, nil
}

// Revisions is what CheckRefs read, for callers that go on to build.
type Revisions struct {
	BaseSHA, HeadSHA string
	// ConfigSHA is the commit whose config judged both trees.
	ConfigSHA  string
	Base, Head *sets.Repo
	// Config is set when the head changes the repo config.
	Config *ConfigChange
}

// ConfigChange is a PR's edit of the repo config. It never applies to the
// PR itself (the default branch's config judges, builds and deploys it);
// it is shown so reviewers see it, and linted so a broken config cannot be
// merged.
type ConfigChange struct {
	Path     string
	Old, New string // file contents ("" when absent)
	Err      error  // the new config's errors (file:line: key: message)
	Removed  bool
}

// PR names the commits a pull request is judged with: Config (the
// default branch) supplies .github/compatbot.yml, Base (the PR's merge
// base) and Head the two trees whose sets are compared.
type PR struct {
	Config, Base, Head string
}

// Load reads baseRef and headRef in the repository at gitDir with the
// configuration of baseRef (the CLI's `check BASE HEAD`, where the base is
// the default branch). The bot uses LoadPR.
func Load(ctx context.Context, gitDir, baseRef, headRef string) (*Revisions, error) {
	return LoadPR(ctx, gitDir, PR{Config: baseRef, Base: baseRef, Head: headRef})
}

// LoadPR reads pr's base and head in the repository at gitDir. The
// configuration (layout, sets_dir, frozen versions, risky list) comes from
// pr.Config and is applied to both trees: a PR cannot loosen the rules it
// is judged by or point the build at other files. An error means the
// revisions could not be read (bad ref, broken config on the default
// branch); problems in the head's sets or config are left to the check.
func LoadPR(ctx context.Context, gitDir string, pr PR) (*Revisions, error) {
	rev := &Revisions{}
	var cfgFS, baseFS, headFS fs.FS
	var err error
	if rev.BaseSHA, baseFS, err = gitrepo.CommitTree(ctx, gitDir, pr.Base); err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	if rev.HeadSHA, headFS, err = gitrepo.CommitTree(ctx, gitDir, pr.Head); err != nil {
		return nil, fmt.Errorf("head: %w", err)
	}
	rev.ConfigSHA, cfgFS = rev.BaseSHA, baseFS
	if pr.Config != "" && pr.Config != pr.Base {
		if rev.ConfigSHA, cfgFS, err = gitrepo.CommitTree(ctx, gitDir, pr.Config); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	cfg, err := sets.LoadRepoConfig(cfgFS)
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", short(rev.ConfigSHA), err)
	}
	// Without a config the layout is detected on the default branch, the base, then the head
	// (the PR that adds the first sets); none found stops the check, which
	// must never call a repository it cannot read "sets OK".
	if cfg, err = sets.DetectLayout(cfg, cfgFS, baseFS, headFS); err != nil {
		return nil, fmt.Errorf("base %s, head %s: %w", short(rev.BaseSHA), short(rev.HeadSHA), err)
	}
	if rev.Base, err = sets.LoadRepo(baseFS, cfg); err != nil {
		return nil, fmt.Errorf("base %s: %w", short(rev.BaseSHA), err)
	}
	if rev.Head, err = sets.LoadRepo(headFS, cfg); err != nil {
		return nil, fmt.Errorf("head %s: %w", short(rev.HeadSHA), err)
	}
	rev.Config = configChange(baseFS, headFS)
	return rev, nil
}

// LoadWith reads the sets of ref with the configuration of configRef.
func LoadWith(ctx context.Context, gitDir, configRef, ref string) (*sets.Repo, error) {
	rev, err := LoadPR(ctx, gitDir, PR{Config: configRef, Base: ref, Head: ref})
	if err != nil {
		return nil, err
	}
	return rev.Head, nil
}

func configChange(base, head fs.FS) *ConfigChange {
	read := func(f fs.FS) (string, bool) {
		b, err := fs.ReadFile(f, sets.DefaultConfigPath)
		return string(b), err == nil
	}
	old, hadOld := read(base)
	cur, hasNew := read(head)
	if old == cur && hadOld == hasNew {
		return nil
	}
	c := &ConfigChange{Path: sets.DefaultConfigPath, Old: old, New: cur, Removed: hadOld && !hasNew}
	if hasNew {
		_, c.Err = sets.ParseConfig(sets.DefaultConfigPath, []byte(cur))
	}
	return c
}

// CheckRefs judges headRef against baseRef in the repository at gitDir, the
// revisions read by Load. An error means the revisions could not be read;
// problems in the head's sets are findings in the Check.
func CheckRefs(ctx context.Context, gitDir, baseRef, headRef string) (report.Check, *Revisions, error) {
	return CheckPR(ctx, gitDir, PR{Config: baseRef, Base: baseRef, Head: headRef})
}

// CheckPR judges pr, read by LoadPR.
func CheckPR(ctx context.Context, gitDir string, pr PR) (report.Check, *Revisions, error) {
	rev, err := LoadPR(ctx, gitDir, pr)
	if err != nil {
		return report.Check{}, nil, err
	}
	return RunRevisions(rev), rev, nil
}

// RunRevisions builds the check run for rev, its config change included.
func RunRevisions(rev *Revisions) report.Check {
	res := evaluate(rev.Base, rev.Head)
	if c := rev.Config; c != nil && c.Err != nil {
		res.Diagnostics = append(res.Diagnostics, configDiagnostics(c)...)
	}
	chk := render(res, rev.Base, rev.Head, rev.BaseSHA, rev.HeadSHA)
	if rev.Config != nil {
		chk.Summary += "\n\n" + configSection(rev.Config)
		if rev.Config.Err == nil && chk.Conclusion == report.Success {
			chk.Title += ", config changed"
		}
	}
	return chk
}

// configDiagnostics turns the new config's errors into lint errors at
// their file:line, so they fail the check and are annotated there.
func configDiagnostics(c *ConfigChange) []sets.Diagnostic {
	var out []sets.Diagnostic
	var errs []error
	if j, ok := c.Err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{c.Err}
	}
	for _, e := range errs {
		d := sets.Diagnostic{File: c.Path, Line: 1, Col: 1, Severity: sets.SeverityError, Code: codeInvalidConfig, Message: e.Error()}
		var ce *sets.ConfigError
		if errors.As(e, &ce) {
			d.Line, d.Message = max(ce.Line, 1), ce.Msg
			if ce.Key != "" {
				d.Message = ce.Key + ": " + ce.Msg
			}
		}
		out = append(out, d)
	}
	return out
}

func configSection(c *ConfigChange) string {
	var b strings.Builder
	b.WriteString("### Config change\n\n")
	switch {
	case c.Removed:
		fmt.Fprintf(&b, "This PR removes `%s`.", c.Path)
	case c.Old == "":
		fmt.Fprintf(&b, "This PR adds `%s`.", c.Path)
	default:
		fmt.Fprintf(&b, "This PR changes `%s`.", c.Path)
	}
	b.WriteString(" It takes effect once merged: this PR itself is judged, built and deployed with the default branch's config.\n\n")
	if c.Err != nil {
		fmt.Fprintf(&b, "The new config is **invalid**, so the check fails:\n\n```\n%s\n```\n\n", c.Err)
	}
	b.WriteString("```diff\n")
	for _, l := range lineDiff(c.Old, c.New) {
		b.WriteString(l + "\n")
	}
	b.WriteString("```")
	return b.String()
}

// lineDiff is a minimal line diff (longest common subsequence) for the
// config, which is small.
func lineDiff(a, b string) []string {
	x, y := splitLines(a), splitLines(b)
	if len(x)*len(y) > 1_000_000 {
		var out []string
		for _, l := range x {
			out = append(out, "-"+l)
		}
		for _, l := range y {
			out = append(out, "+"+l)
		}
		return out
	}
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []string
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			out = append(out, " "+x[i])
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			out = append(out, "+"+y[j])
			j++
		default:
			out = append(out, "-"+x[i])
			i++
		}
	}
	return out
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// result is the raw material of the check.
type result struct {
	Diagnostics []sets.Diagnostic
	Diffs       []sets.TargetDiff
	Findings    []sets.Finding
}

// Errors counts lint diagnostics of severity error.
func (r result) Errors() int { return countSeverity(r.Diagnostics, sets.SeverityError) }

// Warnings counts lint diagnostics of severity warning.
func (r result) Warnings() int { return countSeverity(r.Diagnostics, sets.SeverityWarning) }

func countSeverity(ds []sets.Diagnostic, s sets.Severity) int {
	n := 0
	for _, d := range ds {
		if d.Severity == s {
			n++
		}
	}
	return n
}

// Count counts findings of one kind.
func (r result) Count(kind string) int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind == kind {
			n++
		}
	}
	return n
}

// Changes counts package changes over all targets.
func (r result) Changes() int {
	n := 0
	for _, d := range r.Diffs {
		n += len(d.Changes)
	}
	return n
}

// evaluate lints head in full, diffs it against base and applies base's
// policy. head should carry base's Config (Load arranges that).
func evaluate(base, head *sets.Repo) result {
	res := result{
		Diagnostics: sets.Lint(head),
		Diffs:       sets.Diff(base, head),
	}
	res.Findings = sets.Evaluate(base, res.Diffs)
	return res
}

// Run builds the check run for head against base.
func Run(base, head *sets.Repo, baseSHA, headSHA string) report.Check {
	return render(evaluate(base, head), base, head, baseSHA, headSHA)
}

// render turns a result into the check run content.
func render(res result, base, head *sets.Repo, baseSHA, headSHA string) report.Check {
	c := report.Check{Name: CheckName}
	errs, warns := res.Errors(), res.Warnings()
	refused, approvals := res.Count(sets.FindingRefused), res.Count(sets.FindingNeedsApproval)
	changes := res.Changes()

	switch {
	case errs > 0 || refused > 0:
		c.Conclusion = report.Failure
	case approvals > 0:
		c.Conclusion = report.ActionRequired
	default:
		c.Conclusion = report.Success
	}
	c.Title = title(errs, warns, refused, approvals, changes)
	// Whole, however long: bot/checks fits it into GitHub's limit and
	// links the rest, and `compatbot check` prints all of it.
	c.Summary = summary(res, base, head, baseSHA, headSHA)
	c.Text = details(res)
	c.Annotations = annotations(res, head)
	return c
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func title(errs, warns, refused, approvals, changes int) string {
	var parts []string
	if errs > 0 {
		parts = append(parts, plural(errs, "lint error", "lint errors"))
	}
	if refused > 0 {
		parts = append(parts, plural(refused, "change refused", "changes refused"))
	}
	if approvals > 0 {
		parts = append(parts, plural(approvals, "package needs approval", "packages need approval"))
	}
	if len(parts) == 0 {
		parts = append(parts, "sets OK")
	}
	t := strings.Join(parts, ", ") + ": " + plural(changes, "change", "changes")
	if warns > 0 {
		t += ", " + plural(warns, "warning", "warnings")
	}
	return t
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

var kindColumns = []sets.ChangeKind{sets.Added, sets.Removed, sets.Upgraded, sets.Downgraded, sets.ConstraintChanged}

func summary(res result, base, head *sets.Repo, baseSHA, headSHA string) string {
	var b strings.Builder
	cfg := head.Config
	if cfg == nil {
		cfg = base.Config
	}
	changedTargets := 0
	for _, d := range res.Diffs {
		if len(d.Changes) > 0 {
			changedTargets++
		}
	}
	targets := allTargets(base, head)
	fmt.Fprintf(&b, "Base %s → head %s: %s in %d of %s.\n\n", sets.MarkdownCode(short(baseSHA)), sets.MarkdownCode(short(headSHA)),
		plural(res.Changes(), "package change", "package changes"), changedTargets, plural(len(targets), "target", "targets"))

	// Pins change in place ("changed"): their column shows only when one did.
	columns := kindColumns
	for _, d := range res.Diffs {
		for _, ch := range d.Changes {
			if ch.Kind == sets.Changed && len(columns) == len(kindColumns) {
				columns = append(append([]sets.ChangeKind{}, kindColumns...), sets.Changed)
			}
		}
	}
	if len(targets) > 0 {
		b.WriteString("| Version | OS-arch | Status |")
		for _, k := range columns {
			fmt.Fprintf(&b, " %s |", kindLabel(k))
		}
		b.WriteString("\n|---|---|---|")
		for range columns {
			b.WriteString("---:|")
		}
		b.WriteString("\n")
		counts := map[sets.Target]map[sets.ChangeKind]int{}
		for _, d := range res.Diffs {
			for _, ch := range d.Changes {
				if counts[d.Target] == nil {
					counts[d.Target] = map[sets.ChangeKind]int{}
				}
				counts[d.Target][ch.Kind]++
			}
		}
		for _, t := range targets {
			osArch := t.OS + "-" + t.Arch
			if t.OS == "" {
				osArch = "(all)"
			}
			fmt.Fprintf(&b, "| %s | %s | %s |", sets.MarkdownText(t.Version), sets.MarkdownText(osArch), cfg.VersionStatus(t.Version))
			for _, k := range columns {
				n := counts[t][k]
				if n == 0 {
					b.WriteString(" · |")
				} else {
					fmt.Fprintf(&b, " %d |", n)
				}
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}

	if len(res.Findings) > 0 {
		b.WriteString("### Policy\n\n")
		b.WriteString(sets.FormatFindingsMarkdown(res.Findings))
		b.WriteString("\n")
	} else {
		b.WriteString("### Policy\n\nNo policy findings.\n\n")
	}

	b.WriteString("### Lint\n\n")
	errs, warns := res.Errors(), res.Warnings()
	if errs+warns == 0 {
		b.WriteString("No lint findings.\n")
	} else {
		fmt.Fprintf(&b, "%s, %s: listed in the details below.\n", plural(errs, "error", "errors"), plural(warns, "warning", "warnings"))
	}
	return strings.TrimRight(b.String(), "\n")
}

func kindLabel(k sets.ChangeKind) string {
	switch k {
	case sets.ConstraintChanged:
		return "Constraint changed"
	default:
		s := string(k)
		return strings.ToUpper(s[:1]) + s[1:]
	}
}

// allTargets is the union of both revisions' targets, in order.
func allTargets(base, head *sets.Repo) []sets.Target {
	seen := map[sets.Target]bool{}
	var out []sets.Target
	for _, r := range []*sets.Repo{base, head} {
		if r == nil {
			continue
		}
		for _, t := range r.Targets() {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

func details(res result) string {
	var b strings.Builder
	if len(res.Diagnostics) > 0 {
		b.WriteString("### Lint diagnostics\n\n")
		for _, d := range res.Diagnostics {
			fmt.Fprintf(&b, "- %s %s: %s\n", sets.MarkdownCode(fmt.Sprintf("%s:%d:%d", d.File, d.Line, d.Col)), d.Severity, sets.MarkdownText(d.Message))
		}
		b.WriteString("\n")
	}
	if res.Changes() == 0 {
		b.WriteString("No package changes.\n")
	} else {
		b.WriteString(sets.FormatDiffMarkdown(res.Diffs))
	}
	return strings.TrimRight(b.String(), "\n")
}

// annotations point at head lines: every lint diagnostic and policy finding
// in a set file of the head (a diagnostic about the base's config has no
// line in the PR's diff to sit on and stays in the text).
func annotations(res result, head *sets.Repo) []report.Annotation {
	lines := map[string]int{}
	for _, sf := range head.Sets {
		lines[sf.Path] = max(lines[sf.Path], 1)
		// An EESSI role target reads entries from several files (its
		// vars file and defaults/main.yml): each is a head file.
		for _, list := range [][]sets.Entry{sf.Entries, sf.PackageSets, sf.Masks, sf.Unmasks, sf.Removals} {
			for _, e := range list {
				f := sf.EntryFile(e)
				lines[f] = max(lines[f], e.Line)
			}
		}
		for _, p := range sf.Pins {
			lines[p.File] = max(lines[p.File], p.Line)
		}
	}
	for _, d := range res.Diagnostics {
		// A file that did not parse has no entries but is the head's.
		if d.Code == sets.CodeInvalidYAML || d.Code == sets.CodeInvalidValue {
			lines[d.File] = max(lines[d.File], d.Line)
		}
	}
	var out []report.Annotation
	for _, d := range res.Diagnostics {
		if _, ok := lines[d.File]; (!ok && d.Code != codeInvalidConfig) || d.Line < 1 {
			continue
		}
		level := report.Warning
		if d.Severity == sets.SeverityError {
			level = report.Error
		}
		a := report.Annotation{Path: d.File, StartLine: d.Line, EndLine: d.Line, Level: level, Title: "lint: " + d.Code, Message: d.Message}
		if d.Col > 0 {
			a.StartCol, a.EndCol = d.Col, d.Col
		}
		out = append(out, a)
	}
	for _, f := range res.Findings {
		last, ok := lines[f.File]
		if !ok {
			continue
		}
		line := min(max(f.Line, 1), last)
		level, title := report.Warning, "needs approval: "+f.Package
		if f.Kind == sets.FindingRefused {
			level, title = report.Error, "refused: "+f.Package
		}
		out = append(out, report.Annotation{Path: f.File, StartLine: line, EndLine: line, Level: level, Title: title, Message: f.Reason})
	}
	return out
}

// codeInvalidConfig is a lint error in the PR's own edit of the repo
// config: annotated there, since the PR's head has that file.
const codeInvalidConfig = "invalid-config"

package sets

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
)

// ChangeKind classifies a package change between two revisions of a set.
type ChangeKind string

const (
	Added             ChangeKind = "added"
	Removed           ChangeKind = "removed"
	Upgraded          ChangeKind = "upgraded"
	Downgraded        ChangeKind = "downgraded"
	ConstraintChanged ChangeKind = "constraint-changed"
	// Changed is a pin whose value changed (a Gentoo or overlay commit).
	Changed ChangeKind = "changed"
)

// Lists a Change can be in besides the set's packages (List ""): the
// lists of EESSI's Ansible role.
const (
	ListPackageSets = "package-set"
	ListMask        = "mask"
	ListUnmask      = "unmask"
	ListRemoval     = "removal"
	ListPin         = "pin"
)

// Change is one package's change within one Target's set.
type Change struct {
	Kind    ChangeKind `json:"kind"`
	Package string     `json:"package"` // cat/pkg ("!cat/pkg" for a blocker), or @set for set references
	Old     string     `json:"old"`     // entry token in base, "" when added
	New     string     `json:"new"`     // entry token in head, "" when removed
	Line    int        `json:"line"`    // line in the head set file (base file when removed)
	File    string     `json:"file"`
	// Reason is the entry's reason in head (in base when removed).
	Reason string `json:"reason"`
	// List is "" for the set's packages, else ListPackageSets, ListMask,
	// ListUnmask, ListRemoval or ListPin (Package is then the pin's name).
	List string `json:"list,omitempty"`
}

// TargetDiff is the diff of one version/os-arch.
type TargetDiff struct {
	Target  Target   `json:"target"`
	File    string   `json:"file"`
	Changes []Change `json:"changes"`
}

// Diff compares two revisions of the repository per target (version and
// os-arch). Entries are matched by package (cat/pkg, blockers apart, or
// @set); an entry whose token did not change is no change. Of the rest, a
// pair with versions on both sides is upgraded or downgraded by PMS version
// order, and constraint-changed when the version is equal or missing on one
// side (operator, slot, repository, glob). Targets without changes are left
// out; targets and changes are sorted, so the output is stable. Either repo
// may be nil (no sets).
//
// Besides the packages, every other list of a target is compared the same
// way (package sets, masks, unmasks, removals; Change.List says which), and
// so are its pins: a pin bump is a Changed change in every target of its
// version. A version whose files the head cannot parse (Repo.Unreadable) is
// left out: lint fails the head and says why, and reporting its lists as
// removed would be false. A version the base cannot parse has no lists
// there: the head's are all additions, shown rather than hidden.
func Diff(base, head *Repo) []TargetDiff {
	bsets, hsets := setsByTarget(base), setsByTarget(head)
	if head != nil {
		for _, m := range []map[Target]*SetFile{bsets, hsets} {
			for t := range m {
				if head.Unreadable[""] || head.Unreadable[t.Version] {
					delete(m, t)
				}
			}
		}
	}
	var targets []Target
	for t := range bsets {
		targets = append(targets, t)
	}
	for t := range hsets {
		if _, ok := bsets[t]; !ok {
			targets = append(targets, t)
		}
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].Less(targets[j]) })
	var out []TargetDiff
	for _, t := range targets {
		b, h := bsets[t], hsets[t]
		if b != nil && b.Unread || h != nil && h.Unread {
			continue // not read: a lint error says why; no changes to show
		}
		changes := diffSets(b, h)
		if len(changes) == 0 {
			continue
		}
		td := TargetDiff{Target: t, Changes: changes}
		if h != nil {
			td.File = h.Path
		} else {
			td.File = b.Path
		}
		out = append(out, td)
	}
	return out
}

func setsByTarget(r *Repo) map[Target]*SetFile {
	m := map[Target]*SetFile{}
	if r == nil {
		return m
	}
	for _, sf := range r.Sets {
		if _, dup := m[sf.Target()]; !dup {
			m[sf.Target()] = sf
		}
	}
	return m
}

func diffSets(b, h *SetFile) []Change {
	var bl, hl [5][]Entry
	var bpins, hpins []Pin
	var bpath, hpath string
	if b != nil {
		bl, bpath, bpins = [5][]Entry{b.Entries, b.PackageSets, b.Masks, b.Unmasks, b.Removals}, b.Path, b.Pins
	}
	if h != nil {
		hl, hpath, hpins = [5][]Entry{h.Entries, h.PackageSets, h.Masks, h.Unmasks, h.Removals}, h.Path, h.Pins
	}
	var out []Change
	for i, list := range []string{"", ListPackageSets, ListMask, ListUnmask, ListRemoval} {
		// Masks and unmasks are matched by the whole atom: one package
		// may be masked in several ranges, and each is a line of its own.
		byToken := list == ListMask || list == ListUnmask
		out = append(out, diffEntries(bl[i], hl[i], bpath, hpath, list, byToken)...)
	}
	// Lists keep the order above; pins come last, by name.
	pins := diffPins(bpins, hpins)
	sort.SliceStable(pins, func(i, j int) bool { return pins[i].Package < pins[j].Package })
	return append(out, pins...)
}

// diffPins compares pins by name.
func diffPins(bp, hp []Pin) []Change {
	var out []Change
	old := map[string]Pin{}
	for _, p := range bp {
		old[p.Name] = p
	}
	seen := map[string]bool{}
	for _, p := range hp {
		seen[p.Name] = true
		o, ok := old[p.Name]
		switch {
		case !ok:
			out = append(out, Change{Kind: Added, List: ListPin, Package: p.Name, New: p.Value, Line: p.Line, File: p.File})
		case o.Value != p.Value:
			out = append(out, Change{Kind: Changed, List: ListPin, Package: p.Name, Old: o.Value, New: p.Value, Line: p.Line, File: p.File})
		}
	}
	for _, p := range bp {
		if !seen[p.Name] {
			out = append(out, Change{Kind: Removed, List: ListPin, Package: p.Name, Old: p.Value, Line: p.Line, File: p.File})
		}
	}
	return out
}

func diffEntries(bents, hents []Entry, bpath, hpath, list string, byToken bool) []Change {
	key := entryKey
	if byToken {
		key = func(e Entry) string { return e.Token }
	}
	// Package is cat/pkg even where entries are matched by whole atom.
	pkg := func(k string, e Entry) string {
		if byToken {
			return entryKey(e)
		}
		return k
	}
	hfile := func(e Entry) string {
		if e.File != "" {
			return e.File
		}
		return hpath
	}
	bfile := func(e Entry) string {
		if e.File != "" {
			return e.File
		}
		return bpath
	}
	// Entries by key, in file order, and the keys in order of first use.
	byKey := func(es []Entry) (map[string][]int, []string) {
		m := make(map[string][]int, len(es))
		order := make([]string, 0, len(es))
		for i := range es {
			k := key(es[i])
			if _, ok := m[k]; !ok {
				order = append(order, k)
			}
			m[k] = append(m[k], i)
		}
		return m, order
	}
	bm, border := byKey(bents)
	hm, horder := byKey(hents)
	var out []Change
	keys := horder
	for _, k := range border {
		if _, ok := hm[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		bs, hs := bm[k], hm[k]
		if len(bs) == 1 && len(hs) == 1 {
			// The common case, one entry on each side.
			if o, e := bents[bs[0]], hents[hs[0]]; o.Token != e.Token {
				out = append(out, Change{Kind: classify(o, e), List: list, Package: pkg(k, e), Old: o.Token, New: e.Token, Line: e.Line, File: hfile(e), Reason: e.Reason})
			}
			continue
		}
		// Drop the entries whose token is unchanged, pair the rest in
		// order. A map keeps a PR with many entries of one package linear.
		unmatched := map[string][]int{}
		for j, bi := range bs {
			unmatched[bents[bi].Token] = append(unmatched[bents[bi].Token], j)
		}
		used := make([]bool, len(bs))
		var hrest []int
		for _, hi := range hs {
			if js := unmatched[hents[hi].Token]; len(js) > 0 {
				used[js[0]] = true
				unmatched[hents[hi].Token] = js[1:]
				continue
			}
			hrest = append(hrest, hi)
		}
		var brest []int
		for j, bi := range bs {
			if !used[j] {
				brest = append(brest, bi)
			}
		}
		n := min(len(brest), len(hrest))
		for i := 0; i < n; i++ {
			o, e := bents[brest[i]], hents[hrest[i]]
			out = append(out, Change{Kind: classify(o, e), List: list, Package: pkg(k, e), Old: o.Token, New: e.Token, Line: e.Line, File: hfile(e), Reason: e.Reason})
		}
		for _, hi := range hrest[n:] {
			e := hents[hi]
			out = append(out, Change{Kind: Added, List: list, Package: pkg(k, e), New: e.Token, Line: e.Line, File: hfile(e), Reason: e.Reason})
		}
		for _, bi := range brest[n:] {
			o := bents[bi]
			out = append(out, Change{Kind: Removed, List: list, Package: pkg(k, o), Old: o.Token, Line: o.Line, File: bfile(o), Reason: o.Reason})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		if a.Old != b.Old {
			return a.Old < b.Old
		}
		return a.New < b.New
	})
	return out
}

// Label is the package as the text diff shows it: prefixed by its list
// ("mask >=sys-devel/gcc-15", "pin gentoo_git_commit") outside the packages.
func (c Change) Label() string {
	if c.List == "" {
		return c.Package
	}
	return c.List + " " + c.Package
}

func classify(o, n Entry) ChangeKind {
	if o.Atom != nil && n.Atom != nil && o.Atom.Version != nil && n.Atom.Version != nil {
		switch c := n.Atom.Version.Compare(*o.Atom.Version); {
		case c > 0:
			return Upgraded
		case c < 0:
			return Downgraded
		}
	}
	return ConstraintChanged
}

// FormatDiffText prints the diff for a terminal: one block per target, one
// aligned line per change.
func FormatDiffText(diffs []TargetDiff) string {
	if len(diffs) == 0 {
		return "no changes\n"
	}
	var b strings.Builder
	for i, d := range diffs {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s (%s)\n", d.Target, d.File)
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, c := range d.Changes {
			var what string
			switch c.Kind {
			case Added:
				what = "+ " + c.New
			case Removed:
				what = "- " + c.Old
			default:
				what = c.Old + " -> " + c.New
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Kind, c.Label(), what)
		}
		tw.Flush()
	}
	return b.String()
}

// FormatDiffMarkdown renders the diff as GitHub Markdown: a heading and a
// table per target. Tokens and reasons come from the PR, so they are
// escaped: they cannot break the table, inject HTML or mention users.
func FormatDiffMarkdown(diffs []TargetDiff) string {
	if len(diffs) == 0 {
		return "No package changes.\n"
	}
	var b strings.Builder
	for i, d := range diffs {
		if i > 0 {
			b.WriteByte('\n')
		}
		counts := map[ChangeKind]int{}
		for _, c := range d.Changes {
			counts[c.Kind]++
		}
		var summary []string
		lists := false
		for _, c := range d.Changes {
			lists = lists || c.List != ""
		}
		for _, k := range []ChangeKind{Added, Removed, Upgraded, Downgraded, ConstraintChanged, Changed} {
			if counts[k] > 0 {
				summary = append(summary, fmt.Sprintf("%d %s", counts[k], k))
			}
		}
		fmt.Fprintf(&b, "### %s\n\n%s: %s\n\n", MarkdownText(d.Target.String()), MarkdownCode(d.File), strings.Join(summary, ", "))
		// The list column appears only when a change is outside the
		// packages (EESSI's role), so set-file reports stay as they were.
		if lists {
			b.WriteString("| change | list | package | base | head | reason |\n|---|---|---|---|---|---|\n")
		} else {
			b.WriteString("| change | package | base | head | reason |\n|---|---|---|---|---|\n")
		}
		for _, c := range d.Changes {
			if lists {
				list := c.List
				if list == "" {
					list = "package"
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", c.Kind, list, MarkdownCode(c.Package), MarkdownCode(c.Old), MarkdownCode(c.New), MarkdownText(c.Reason))
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c.Kind, MarkdownCode(c.Package), MarkdownCode(c.Old), MarkdownCode(c.New), MarkdownText(c.Reason))
		}
	}
	return b.String()
}

// MarkdownCode shows s as a code span; text with a backtick or a line break
// falls back to MarkdownText.
func MarkdownCode(s string) string {
	if s == "" {
		return ""
	}
	if strings.ContainsAny(s, "`\n") {
		return MarkdownText(s)
	}
	return "`" + strings.ReplaceAll(s, "|", "\\|") + "`"
}

// MarkdownText backslash-escapes Markdown punctuation so untrusted text
// renders literally: no links, HTML, emphasis, table breaks or @mentions.
// Line breaks and tabs become spaces, so it stays on one table row.
func MarkdownText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '@':
			// A zero-width space keeps GitHub from reading a mention.
			b.WriteString("@\u200b")
		case strings.ContainsRune("\\`*_{}[]()<>#+!|~&", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

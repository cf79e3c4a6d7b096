package sets

import (
	"fmt"
	"regexp"
	"strings"
)

// ParsePackage parses one concrete package-version such as an installed
// "cat/pkg-1.2-r3:slot/sub::repo".
func ParsePackage(s string) (Package, error) { return parsePackage(s, true) }

// ParsePackageLoose also accepts a package-version without a category ("a-1").
func ParsePackageLoose(s string) (Package, error) { return parsePackage(s, false) }

func parsePackage(s string, needCategory bool) (Package, error) {
	a, err := parseAtom("="+s, needCategory)
	if err != nil {
		if ae, ok := err.(*AtomError); ok {
			return Package{}, fmt.Errorf("invalid package %q: col %d: %s", s, ae.Col-1, ae.Msg)
		}
		return Package{}, err
	}
	if a.Glob || len(a.Use) > 0 || a.SlotOp != "" {
		return Package{}, fmt.Errorf("invalid package %q: a package-version has no glob, slot operator or USE dependencies", s)
	}
	return Package{Category: a.Category, Name: a.Package, Version: *a.Version, Slot: a.Slot, SubSlot: a.SubSlot, Repo: a.Repo}, nil
}

// CP is "cat/pkg".
func (p Package) CP() string {
	if p.Category == "" {
		return p.Name
	}
	return p.Category + "/" + p.Name
}

// String prints "cat/pkg-ver[:slot[/sub]][::repo]".
func (p Package) String() string {
	s := p.CP() + "-" + p.Version.String()
	if p.Slot != "" {
		s += ":" + p.Slot
		if p.SubSlot != "" {
			s += "/" + p.SubSlot
		}
	}
	if p.Repo != "" {
		s += "::" + p.Repo
	}
	return s
}

// Matches reports whether package p satisfies atom a's name, version
// operator, slot and repository. USE dependencies are not checked: the
// installed USE flags are not consulted here. For blockers it reports
// whether p matches the blocked atom; what that means is the caller's call.
func (a Atom) Matches(p Package) bool {
	if a.Package != p.Name || (a.Category != "" && p.Category != "" && a.Category != p.Category) {
		return false
	}
	if a.Slot != "" && (a.Slot != p.Slot || (a.SubSlot != "" && a.SubSlot != p.SubSlot)) {
		return false
	}
	if a.Repo != "" && a.Repo != p.Repo {
		return false
	}
	if a.Version == nil {
		return true
	}
	v := *a.Version
	switch a.Op {
	case OpEqual:
		if a.Glob {
			return globMatches(v, p.Version)
		}
		return p.Version.Compare(v) == 0
	case OpTilde:
		return p.Version.compareIgnoringRevision(v) == 0
	case OpLess:
		return p.Version.Compare(v) < 0
	case OpLessEqual:
		return p.Version.Compare(v) <= 0
	case OpGreater:
		return p.Version.Compare(v) > 0
	case OpGreaterEqual:
		return p.Version.Compare(v) >= 0
	}
	return false
}

// globMatches implements "=cat/pkg-V*": the version's string starts with V.
// The revision takes part only when the pattern names one (=a-1-r1*).
func globMatches(pattern, v Version) bool {
	if !pattern.RevisionGiven && pattern.Revision == 0 {
		v.Revision, v.RevisionGiven = 0, false
	}
	return strings.HasPrefix(v.String(), pattern.String())
}

// CompareVerdict reproduces portage-utils' "qatom -c A B": for two
// package-versions "A < B", "A == B" or "A > B"; when B carries an
// operator, "A == B" if A matches B and "A != B" otherwise.
func CompareVerdict(a, b string) (string, error) {
	pa, err := parseNameMaybeVersion(a)
	if err != nil {
		return "", err
	}
	if b != "" && !strings.ContainsAny(b[:1], "<>=~!") {
		// Plain names, with or without a version: order the two.
		pb, err := parseNameMaybeVersion(b)
		if err != nil {
			return "", err
		}
		if !sameName(pa, pb) {
			return a + " != " + b, nil
		}
		if pa.Version.Numbers == nil || pb.Version.Numbers == nil {
			// qatom treats a side without a version as "any version".
			return a + " == " + b, nil
		}
		return a + " " + map[int]string{-1: "<", 0: "==", 1: ">"}[pa.Version.Compare(pb.Version)] + " " + b, nil
	}
	atomB, err := ParseAtomLoose(b)
	if err != nil {
		// qatom skips "_word" parts of a version that are no PMS suffix
		// (static.tests: ">=a-3.10.0_p1_r1" is >=a-3.10.0_p1).
		if alt := dropUnknownSuffixes(b); alt != b {
			atomB, err = ParseAtomLoose(alt)
		}
		if err != nil {
			return "", err
		}
	}
	if atomB.Version == nil {
		return "", fmt.Errorf("%q: want a package-version or an atom with an operator", b)
	}
	if pa.Version.Numbers == nil {
		return "", fmt.Errorf("%q: an atom with an operator needs a package-version to match", a)
	}
	if atomB.Matches(pa) {
		return a + " == " + b, nil
	}
	return a + " != " + b, nil
}

// parseNameMaybeVersion reads qatom's looser inputs: "cat/pkg-1", "pkg-1",
// and also a bare "cat/pkg" or "pkg" (then Version is zero).
func parseNameMaybeVersion(s string) (Package, error) {
	p, err := ParsePackageLoose(s)
	if err == nil {
		return p, nil
	}
	a, aerr := ParseAtomLoose(s)
	if aerr != nil || a.Op != "" || a.Blocker != NoBlocker || a.Slot != "" || a.Repo != "" || len(a.Use) > 0 {
		return Package{}, err
	}
	return Package{Category: a.Category, Name: a.Package}, nil
}

// sameName compares names the way qatom does: the category counts only when
// both sides give one.
func sameName(a, b Package) bool {
	if a.Name != b.Name {
		return false
	}
	return a.Category == "" || b.Category == "" || a.Category == b.Category
}

var unknownSuffix = regexp.MustCompile(`_([A-Za-z]+)[0-9]*`)

// dropUnknownSuffixes removes from the version of an atom the "_word[N]"
// parts that are not one of PMS's suffixes, as portage-utils' atom_explode
// does by scanning only for the suffixes it knows. Only CompareVerdict
// (qatom's semantics) uses it; set files stay strict.
func dropUnknownSuffixes(s string) string {
	start := strings.LastIndex(s, "/") + 1
	v := -1
	for i := start; i+1 < len(s); i++ {
		if s[i] == '-' && isDigit(s[i+1]) {
			v = i + 1
			break
		}
	}
	if v < 0 {
		return s
	}
	end := len(s)
	if j := strings.IndexAny(s[v:], ":[*"); j >= 0 {
		end = v + j
	}
	ver := unknownSuffix.ReplaceAllStringFunc(s[v:end], func(m string) string {
		switch unknownSuffix.FindStringSubmatch(m)[1] {
		case "alpha", "beta", "pre", "rc", "p":
			return m
		}
		return ""
	})
	return s[:v] + ver + s[end:]
}

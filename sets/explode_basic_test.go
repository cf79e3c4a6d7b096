package sets

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// explode splits a qatom-style input (category and version optional, an
// optional :slot) the way portage-utils' atom_explode test prints it:
// "CAT / [P] PN - PVR [PV] [rN]", with null/(null) where a part is absent.
func explode(in string) (string, error) {
	cat, name, pvr, pv, rev := "null", "", "(null)", "(null)", 0
	if p, err := ParsePackageLoose(in); err == nil {
		name = p.Name
		if p.Category != "" {
			cat = p.Category
		}
		v := p.Version
		rev = v.Revision
		v.Revision, v.RevisionGiven = 0, false
		pv = v.String()
		pvr = fmt.Sprintf("%s-r%d", pv, rev)
	} else {
		a, aerr := ParseAtomLoose(in)
		if aerr != nil {
			return "", fmt.Errorf("neither a package-version (%v) nor an atom (%v)", err, aerr)
		}
		name = a.Package
		if a.Category != "" {
			cat = a.Category
		}
	}
	p := name
	if pv != "(null)" {
		p += "-" + pv
	}
	return fmt.Sprintf("%s -> %s / [%s] %s - %s [%s] [r%d]", in, cat, p, name, pvr, pv, rev), nil
}

// TestExplodeBasicVectors runs portage-utils' atom_explode basic.tests
// against basic.good: with and without category, version, suffixes,
// revision and slot, and names ending in digits (pkg8, pkg8x).
func TestExplodeBasicVectors(t *testing.T) {
	dir := filepath.Join(gentooData, "portage-utils/atom_explode")
	tests := readLines(t, filepath.Join(dir, "basic.tests"))
	good := readLines(t, filepath.Join(dir, "basic.good"))
	if len(tests) != len(good) || len(tests) < 60 {
		t.Fatalf("basic.tests has %d lines, basic.good %d", len(tests), len(good))
	}
	for i, in := range tests {
		got, err := explode(strings.TrimSpace(in))
		if err != nil {
			t.Errorf("basic.tests:%d: %q: %v", i+1, in, err)
			continue
		}
		if got != good[i] {
			t.Errorf("basic.tests:%d:\n got %s\nwant %s", i+1, got, good[i])
		}
	}
}

// TestCompareVerdictQVectors runs static.q.tests, the comparisons qatom
// accepts beyond Portage's own rules (comments and blank lines skipped).
func TestCompareVerdictQVectors(t *testing.T) {
	dir := filepath.Join(gentooData, "portage-utils/atom_compare")
	var tests []string
	for _, l := range readLines(t, filepath.Join(dir, "static.q.tests")) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			tests = append(tests, l)
		}
	}
	good := readLines(t, filepath.Join(dir, "static.q.good"))
	if len(tests) != len(good) {
		t.Fatalf("%d vectors, %d verdicts", len(tests), len(good))
	}
	knownGaps := map[string]bool{}
	for i, line := range tests {
		f := strings.Fields(line)
		got, err := CompareVerdict(f[0], f[1])
		if knownGaps[line] {
			if err == nil && got == good[i] {
				t.Errorf("%q now passes: drop it from knownGaps", line)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v (want %q)", line, err, good[i])
			continue
		}
		if got != good[i] {
			t.Errorf("%q: got %q, want %q", line, got, good[i])
		}
	}
}

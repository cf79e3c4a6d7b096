package sets

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCompareVerdictVectors runs every line of portage-utils' atom_compare
// static vectors; the lines that still disagree are listed in knownQatomGaps.
func TestCompareVerdictVectors(t *testing.T) {
	dir := filepath.Join(gentooData, "portage-utils/atom_compare")
	tests := readLines(t, filepath.Join(dir, "static.tests"))
	good := readLines(t, filepath.Join(dir, "static.good"))
	// None left: line 55 (">=a-3.10.0_p1_r1", "_r1" is no PMS suffix) agrees
	// since CompareVerdict skips unknown suffixes as atom_explode does. A
	// line added here must be one that still disagrees.
	knownQatomGaps := map[int]bool{}
	for i, line := range tests {
		f := strings.Fields(line)
		if knownQatomGaps[i+1] {
			if _, err := CompareVerdict(f[0], f[1]); err == nil {
				t.Errorf("static.tests:%d now parses: drop it from knownQatomGaps", i+1)
			}
			continue
		}
		if len(f) != 2 {
			t.Fatalf("static.tests:%d: malformed %q", i+1, line)
		}
		got, err := CompareVerdict(f[0], f[1])
		if err != nil {
			t.Errorf("static.tests:%d: %q: %v (want %q)", i+1, line, err, good[i])
			continue
		}
		if got != good[i] {
			t.Errorf("static.tests:%d: got %q, want %q", i+1, got, good[i])
		}
	}
}

func TestMatchesSlotAndRepo(t *testing.T) {
	p, err := ParsePackage("dev-lang/python-3.11.7-r1:3.11/3.11t::gentoo")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		atom string
		want bool
	}{
		{"dev-lang/python", true},
		{">=dev-lang/python-3.11:3.11", true},
		{"dev-lang/python:3.12", false},
		{"dev-lang/python:3.11/3.11", false},
		{"dev-lang/python::eessi", false},
		{"=dev-lang/python-3.11*::gentoo", true},
		{"~dev-lang/python-3.11.7", true},
		{"=dev-lang/python-3.11.7", false},
		{"<dev-lang/python-3.11.7-r2", true},
	} {
		a, err := ParseAtom(tc.atom)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Matches(p); got != tc.want {
			t.Errorf("%s matches %s = %v, want %v", tc.atom, p, got, tc.want)
		}
	}
}

func TestDropUnknownSuffixes(t *testing.T) {
	for in, want := range map[string]string{
		">=a-3.10.0_p1_r1":          ">=a-3.10.0_p1",
		"=cat/foo_bar-1.2_x3_rc1:0": "=cat/foo_bar-1.2_rc1:0",
		"=a-1_alpha2-r3*":           "=a-1_alpha2-r3*",
		"a":                         "a",
	} {
		if got := dropUnknownSuffixes(in); got != want {
			t.Errorf("dropUnknownSuffixes(%q) = %q, want %q", in, got, want)
		}
	}
}

package sets

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const gentooData = "../../shared/testdata/gentoo"

// TestVersionCompareVectors checks every line of portage-utils'
// atom_compare vectors whose two sides are plain package-versions.
func TestVersionCompareVectors(t *testing.T) {
	tests := readLines(t, filepath.Join(gentooData, "portage-utils/atom_compare/static.tests"))
	good := readLines(t, filepath.Join(gentooData, "portage-utils/atom_compare/static.good"))
	if len(tests) != len(good) {
		t.Fatalf("%d tests but %d verdicts", len(tests), len(good))
	}
	checked := 0
	for i, line := range tests {
		f := strings.Fields(line)
		if len(f) != 2 || strings.ContainsAny(f[0]+f[1], "<>=~!:*[/") {
			continue // atoms with operators, slots or categories: the atom parser's job
		}
		pa, errA := parsePackage(f[0], false)
		pb, errB := parsePackage(f[1], false)
		if errA != nil || errB != nil {
			continue
		}
		op := map[int]string{-1: "<", 0: "==", 1: ">"}[pa.Version.Compare(pb.Version)]
		got := f[0] + " " + op + " " + f[1]
		if got != good[i] {
			t.Errorf("static.tests:%d: got %q, want %q", i+1, got, good[i])
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("only %d vectors checked", checked)
	}
}

func TestVersionCompareTable(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.0.2", "1.0.2-r0", 0},
		{"1.0.2", "1.000.2", 0},
		{"1.0_alpha", "1.0_beta", -1},
		{"1.0_rc1", "1.0", -1},
		{"1.0", "1.0_p1", -1},
		{"1.0_alpha4_p5", "1.0_alpha4", 1},
		{"1.2.3b_alpha4_p5-r6", "1.2.3b_alpha4_p5-r7", -1},
		{"1.01", "1.1", -1},
		{"1.010", "1.01", 0},
		{"12345678901234567890", "12345678901234567891", -1},
		{"1.0a", "1.0", 1},
	} {
		a, err := ParseVersion(tc.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseVersion(tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Compare(b); got != tc.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := b.Compare(a); got != -tc.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestParseVersionErrorsSayWhere(t *testing.T) {
	for _, in := range []string{"", "a1", "1.", "1_foo", "1-r", "1.2-r3x"} {
		_, err := ParseVersion(in)
		if err == nil || !strings.Contains(err.Error(), "invalid version") {
			t.Errorf("ParseVersion(%q) err = %v", in, err)
		}
	}
}

func TestVersionStringRoundTrip(t *testing.T) {
	for _, in := range []string{"1", "1.0.2-r0", "1.2.3b_alpha4_p5-r6", "2.0_pre", "007"} {
		v, err := ParseVersion(in)
		if err != nil {
			t.Fatal(err)
		}
		if v.String() != in {
			t.Errorf("String() = %q, want %q", v.String(), in)
		}
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("test data missing (shared/ must sit beside the checkout): %v", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1", "1.0.2-r0", "1.2.3b_alpha4_p5-r6", "007.010_rc", "2014.12-r2014120900"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			return
		}
		w, err := ParseVersion(v.String())
		if err != nil {
			t.Fatalf("%q printed as %q which does not parse: %v", s, v.String(), err)
		}
		if v.Compare(w) != 0 || w.String() != v.String() {
			t.Fatalf("unstable: %q -> %q -> %q", s, v.String(), w.String())
		}
		if v.Compare(v) != 0 {
			t.Fatalf("%q not equal to itself", s)
		}
	})
}

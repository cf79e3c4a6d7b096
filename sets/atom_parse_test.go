package sets

import (
	"strings"
	"testing"
)

func TestParseAtomGrammar(t *testing.T) {
	for _, in := range []string{
		"sys-apps/portage",
		">=dev-lang/python-3.11.7-r1:3.11::gentoo",
		"=sys-devel/gcc-13.2*",
		"~app-misc/foo-1.2",
		"!!<sys-libs/glibc-2.38:2.2",
		"!app-shells/bash:*",
		"dev-libs/openssl:0/3=",
		"dev-lang/perl:=",
		"app-editors/vim[a,-b,c=,!d=,e?,!f?,g(+),h(-)=]",
		"=dev-lang/lua-5.1.5-r200:5.1::eessi",
		"=cat/pkg-1.2.3b_alpha4_p5-r6",
	} {
		a, err := ParseAtom(in)
		if err != nil {
			t.Errorf("ParseAtom(%q): %v", in, err)
			continue
		}
		if a.String() != in {
			t.Errorf("ParseAtom(%q).String() = %q", in, a.String())
		}
	}
}

func TestParseAtomFields(t *testing.T) {
	a, err := ParseAtom(">=dev-lang/python-3.11.7-r1:3.11/3.11t::gentoo")
	if err != nil {
		t.Fatal(err)
	}
	if a.Op != OpGreaterEqual || a.Category != "dev-lang" || a.Package != "python" ||
		a.Version.String() != "3.11.7-r1" || a.Slot != "3.11" || a.SubSlot != "3.11t" || a.Repo != "gentoo" {
		t.Errorf("fields = %+v", a)
	}
}

func TestParseAtomErrorsSayWhere(t *testing.T) {
	for _, tc := range []struct {
		in, msg string
		col     int
	}{
		{"python", "missing category", 1},
		{">=dev-lang/python", "needs a version", 12},
		{"dev-lang/python-3.11", "needs an operator", 10},
		{"=dev-lang/python-3.x", "invalid version", 18},
		{"dev-lang/python:", "empty slot", 16},
		{"dev-lang/python[a", "unterminated", 17},
		{"dev-lang/python[!a]", "invalid USE", 17},
		{"dev-lang/pyth@n", "not allowed", 10},
		{"~dev-lang/python-3-r1", "ignores the revision", 18},
	} {
		_, err := ParseAtom(tc.in)
		ae, ok := err.(*AtomError)
		if !ok {
			t.Errorf("ParseAtom(%q) err = %v, want *AtomError", tc.in, err)
			continue
		}
		if !strings.Contains(ae.Msg, tc.msg) || ae.Col != tc.col {
			t.Errorf("ParseAtom(%q) = col %d %q, want col %d containing %q", tc.in, ae.Col, ae.Msg, tc.col, tc.msg)
		}
	}
}

func TestParseAtomLooseAcceptsNoCategory(t *testing.T) {
	a, err := ParseAtomLoose(">=a-1")
	if err != nil || a.Package != "a" || a.Version.String() != "1" {
		t.Fatalf("ParseAtomLoose = %+v, %v", a, err)
	}
}

func FuzzParseAtom(f *testing.F) {
	for _, s := range []string{"sys-apps/portage", ">=a/b-1:2/3::r[x,-y(+)]", "=c/d-1*", "!!e/f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAtom(s)
		if err != nil {
			return
		}
		b, err := ParseAtom(a.String())
		if err != nil {
			t.Fatalf("%q printed as %q which does not parse: %v", s, a.String(), err)
		}
		if b.String() != a.String() {
			t.Fatalf("unstable: %q -> %q -> %q", s, a.String(), b.String())
		}
	})
}

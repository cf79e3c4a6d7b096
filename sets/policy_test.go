package sets

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEvaluate(t *testing.T) {
	cfg, err := ParseConfig("c.yml", []byte("versions:\n  2025.06: {status: frozen}\n  2026.06: {status: open}\nrisky: [glibc, dev-lang/python]\n"))
	if err != nil {
		t.Fatal(err)
	}
	type want struct{ Package, Kind string }
	tests := []struct {
		version, base, head string
		want                []want
	}{
		{"2025.06", "=sys-libs/glibc-2.41\n", "=sys-libs/glibc-2.41-r1\n", []want{{"sys-libs/glibc", FindingNeedsApproval}}},
		{"2025.06", "=app-misc/a-1\n", "=app-misc/a-1.1\n", nil},
		{"2025.06", "=app-misc/a-1\n", "~app-misc/a-1\n", nil},
		{"2025.06", "=app-misc/a-2\n", "=app-misc/a-1\n", []want{{"app-misc/a", FindingNeedsApproval}}},
		{"2025.06", "app-misc/a\n", "app-misc/a\napp-misc/b\n", []want{{"app-misc/b", FindingRefused}}},
		{"2025.06", "app-misc/a\n@x\n", "", []want{{"app-misc/a", FindingRefused}, {"@x", FindingRefused}}},
		{"2026.06", "app-misc/a\n", "app-misc/b\n", nil},
		{"2026.06", "dev-lang/python:3.12\n", "dev-lang/python:3.13\n", []want{{"dev-lang/python", FindingNeedsApproval}}},
		// Risky by cat/pkg only matches that category; adding a risky
		// package is not an in-place update.
		{"2026.06", "=dev-python/python-1\n", "=dev-python/python-2\nsys-libs/glibc\n", nil},
		{"2026.06", "!sys-libs/glibc\n", "!!sys-libs/glibc\n", nil},
		{"2026.06", "!<sys-libs/glibc-2\n", "!<sys-libs/glibc-3\n", []want{{"!sys-libs/glibc", FindingNeedsApproval}}},
		// Versions the config does not name are open.
		{"2099.01", "a/b\n", "", nil},
	}
	for _, tc := range tests {
		mk := func(src string, c *Config) *Repo {
			sf := ParseSetFile("sets/"+tc.version+"/linux-x86_64", []byte(src))
			sf.Version, sf.OS, sf.Arch = tc.version, "linux", "x86_64"
			return &Repo{Config: c, Sets: []*SetFile{sf}}
		}
		base := mk(tc.base, cfg)
		// The head's own config must not matter.
		head := mk(tc.head, DefaultConfig())
		var got []want
		for _, f := range Evaluate(base, Diff(base, head)) {
			got = append(got, want{f.Package, f.Kind})
			if f.Reason == "" || f.File == "" || f.Line == 0 || f.Target.Version != tc.version {
				t.Errorf("incomplete finding %+v", f)
			}
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s %q -> %q (-want +got):\n%s", tc.version, tc.base, tc.head, d)
		}
	}
}

func TestEvaluateGolden(t *testing.T) {
	base := loadDirRepo(t, "testdata/diff/base")
	head := loadDirRepo(t, "testdata/diff/head")
	cfg, err := ParseConfig("c.yml", []byte("versions:\n  2025.06: {status: frozen}\n"))
	if err != nil {
		t.Fatal(err)
	}
	base.Config = cfg
	fs := Evaluate(base, Diff(base, head))
	var text string
	for _, f := range fs {
		text += f.String() + "\n"
	}
	golden(t, "policy.txt", []byte(text))
	golden(t, "policy.md", []byte(FormatFindingsMarkdown(fs)))
}

// TestEvaluateRoleLists: in a frozen version, mask, unmask, removal and pin
// changes need approval and package sets are judged like packages; an open
// version takes them all.
func TestEvaluateRoleLists(t *testing.T) {
	mk := func(version string, sf SetFile) *Repo {
		sf.Version, sf.OS, sf.Arch, sf.Path = version, "linux", "x86_64", "vars/"+version+".yml"
		return &Repo{Sets: []*SetFile{&sf}}
	}
	atom := func(s string) Entry {
		a, err := ParseAtom(s)
		if err != nil {
			t.Fatal(err)
		}
		return Entry{Token: s, Atom: &a, Line: 3}
	}
	set := Entry{Token: "@extra", SetRef: "extra", Line: 2}
	base := SetFile{Masks: []Entry{atom(">=a/b-2")}, Pins: []Pin{{Name: "gentoo_git_commit", Value: "1", Line: 1}}}
	head := SetFile{Masks: []Entry{atom(">=a/b-3")}, Removals: []Entry{atom("c/d")}, Unmasks: []Entry{atom("=e/f-1")},
		PackageSets: []Entry{set}, Pins: []Pin{{Name: "gentoo_git_commit", Value: "2", Line: 1}}}
	cfg, err := ParseConfig("c.yml", []byte("layout: eessi-ansible\nversions:\n  1: {status: frozen}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, version := range []string{"1", "2"} {
		b, h := mk(version, base), mk(version, head)
		b.Config = cfg
		var got []string
		for _, f := range Evaluate(b, Diff(b, h)) {
			got = append(got, f.Kind+" "+f.Package)
		}
		var want []string
		if version == "1" {
			want = []string{
				"needs-approval pin gentoo_git_commit",
				"refused @extra",
				"needs-approval mask a/b",
				"needs-approval mask a/b",
				"needs-approval removal c/d",
				"needs-approval unmask e/f",
			}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("version %s (-want +got):\n%s", version, d)
		}
	}
}

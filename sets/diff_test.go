package sets

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiffClassify(t *testing.T) {
	tests := []struct {
		base, head string
		want       []Change
	}{
		{"a/b # r\n", "a/b # other reason\n", nil},
		{"=a/b-1 # r\n", "=a/b-1.1 # r\n", []Change{{Kind: Upgraded, Package: "a/b", Old: "=a/b-1", New: "=a/b-1.1", Line: 1, File: "h", Reason: "r"}}},
		{"=a/b-1_p1 # r\n", "=a/b-1 # r\n", []Change{{Kind: Downgraded, Package: "a/b", Old: "=a/b-1_p1", New: "=a/b-1", Line: 1, File: "h", Reason: "r"}}},
		{"=a/b-1 # r\n", "=a/b-1-r1 # r\n", []Change{{Kind: Upgraded, Package: "a/b", Old: "=a/b-1", New: "=a/b-1-r1", Line: 1, File: "h", Reason: "r"}}},
		{"=a/b-1 # r\n", "~a/b-1 # r\n", []Change{{Kind: ConstraintChanged, Package: "a/b", Old: "=a/b-1", New: "~a/b-1", Line: 1, File: "h", Reason: "r"}}},
		{"=a/b-1.0\n", "=a/b-1.00\n", []Change{{Kind: ConstraintChanged, Package: "a/b", Old: "=a/b-1.0", New: "=a/b-1.00", Line: 1, File: "h"}}},
		{"a/b\n", "a/b:2\n", []Change{{Kind: ConstraintChanged, Package: "a/b", Old: "a/b", New: "a/b:2", Line: 1, File: "h"}}},
		{"a/b\n", ">=a/b-2\n", []Change{{Kind: ConstraintChanged, Package: "a/b", Old: "a/b", New: ">=a/b-2", Line: 1, File: "h"}}},
		{"a/b\n", "\n\n!a/b\n", []Change{
			{Kind: Added, Package: "!a/b", New: "!a/b", Line: 3, File: "h"},
			{Kind: Removed, Package: "a/b", Old: "a/b", Line: 1, File: "b"},
		}},
		// Two slots of one package: the unchanged one is no change.
		{"a/b:1\na/b:2\n", "a/b:2\na/b:3\n", []Change{{Kind: ConstraintChanged, Package: "a/b", Old: "a/b:1", New: "a/b:3", Line: 2, File: "h"}}},
		{"@x\n", "@y\n", []Change{
			{Kind: Removed, Package: "@x", Old: "@x", Line: 1, File: "b"},
			{Kind: Added, Package: "@y", New: "@y", Line: 1, File: "h"},
		}},
		// Invalid entries are compared by token.
		{"bad\n", "bad2\n", []Change{
			{Kind: Removed, Package: "bad", Old: "bad", Line: 1, File: "b"},
			{Kind: Added, Package: "bad2", New: "bad2", Line: 1, File: "h"},
		}},
	}
	for _, tc := range tests {
		tgt := Target{"1", "linux", "x86_64"}
		mk := func(p, src string) *Repo {
			sf := ParseSetFile(p, []byte(src))
			sf.Version, sf.OS, sf.Arch = tgt.Version, tgt.OS, tgt.Arch
			return &Repo{Sets: []*SetFile{sf}}
		}
		got := Diff(mk("b", tc.base), mk("h", tc.head))
		var changes []Change
		if len(got) == 1 {
			changes = got[0].Changes
		} else if len(got) > 1 {
			t.Fatalf("%d targets", len(got))
		}
		if d := cmp.Diff(tc.want, changes); d != "" {
			t.Errorf("%q -> %q (-want +got):\n%s", tc.base, tc.head, d)
		}
	}
}

// TestDiffGolden diffs testdata/diff/base against testdata/diff/head and
// checks all three renderings.
func TestDiffGolden(t *testing.T) {
	base := loadDirRepo(t, "testdata/diff/base")
	head := loadDirRepo(t, "testdata/diff/head")
	diffs := Diff(base, head)
	golden(t, "diff.txt", []byte(FormatDiffText(diffs)))
	golden(t, "diff.md", []byte(FormatDiffMarkdown(diffs)))
	js, err := json.MarshalIndent(diffs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "diff.json", append(js, '\n'))
	if len(diffs) != 3 {
		t.Errorf("%d targets changed, want 2025.06 x86_64, 2026.06 (removed) and 2027.01 (added)", len(diffs))
	}
	if got := Diff(base, base); len(got) != 0 || FormatDiffText(got) != "no changes\n" {
		t.Errorf("self diff: %v", got)
	}
	if got := Diff(nil, head); len(got) != 3 {
		t.Errorf("diff from nothing: %d targets", len(got))
	}
}

func TestMarkdownEscapesUntrustedText(t *testing.T) {
	md := FormatDiffMarkdown([]TargetDiff{{Target: Target{"1", "linux", "x"}, File: "f", Changes: []Change{
		{Kind: Added, Package: "a|b", New: "x`y", Reason: "<script>@team [link](http://e) | *x*"},
	}}})
	row := md[strings.LastIndex(md, "| added"):]
	want := "| added | `a\\|b` |  | x\\`y | \\<script\\>@\u200bteam \\[link\\]\\(http://e\\) \\| \\*x\\* |\n"
	if row != want {
		t.Errorf("row\n got %q\nwant %q", row, want)
	}
}

// diffBenchRepos builds two 500-entry sets whose second revision changes
// one entry in ten: upgrades, constraint changes, adds and removes.
func diffBenchRepos() (*Repo, *Repo) {
	var b, h strings.Builder
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&b, "=cat-%d/pkg%d-%d.%d.%d::gentoo # reason %d\n", i%40, i, i%7, i%13, i%5, i)
		switch i % 10 {
		case 3:
			fmt.Fprintf(&h, "=cat-%d/pkg%d-%d.%d.%d-r1::gentoo # reason %d\n", i%40, i, i%7, i%13, i%5, i)
		case 6:
			fmt.Fprintf(&h, ">=cat-%d/pkg%d-%d.%d.%d # reason %d\n", i%40, i, i%7, i%13, i%5, i)
		case 9:
			fmt.Fprintf(&h, "cat-%d/new%d # added %d\n", i%40, i, i)
		default:
			fmt.Fprintf(&h, "=cat-%d/pkg%d-%d.%d.%d::gentoo # reason %d\n", i%40, i, i%7, i%13, i%5, i)
		}
	}
	mk := func(src string) *Repo {
		sf := ParseSetFile("sets/2025.06/linux-x86_64", []byte(src))
		sf.Version, sf.OS, sf.Arch = "2025.06", "linux", "x86_64"
		return &Repo{Sets: []*SetFile{sf}}
	}
	return mk(b.String()), mk(h.String())
}

func TestDiffBenchInput(t *testing.T) {
	base, head := diffBenchRepos()
	if n := len(base.Sets[0].Entries); n != 500 {
		t.Fatalf("%d entries", n)
	}
	counts := map[ChangeKind]int{}
	for _, c := range Diff(base, head)[0].Changes {
		counts[c.Kind]++
	}
	want := map[ChangeKind]int{Upgraded: 50, ConstraintChanged: 50, Added: 50, Removed: 50}
	if d := cmp.Diff(want, counts); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func BenchmarkDiff500(b *testing.B) {
	base, head := diffBenchRepos()
	b.ReportAllocs()
	for b.Loop() {
		if d := Diff(base, head); len(d) != 1 {
			b.Fatal(len(d))
		}
	}
}

// BenchmarkDiffOnePackage50k is a hostile PR: 50,000 entries of one
// package. Matching stays linear, so the bot cannot be stalled by it.
func BenchmarkDiffOnePackage50k(b *testing.B) {
	var bs, hs strings.Builder
	for i := 0; i < 50000; i++ {
		fmt.Fprintf(&bs, "=a/b-%d\n", i)
		fmt.Fprintf(&hs, "=a/b-%d\n", i+1)
	}
	mk := func(src string) *Repo {
		sf := ParseSetFile("f", []byte(src))
		sf.Version = "1"
		return &Repo{Sets: []*SetFile{sf}}
	}
	base, head := mk(bs.String()), mk(hs.String())
	for b.Loop() {
		d := Diff(base, head)
		if len(d) != 1 || len(d[0].Changes) != 1 || d[0].Changes[0].Kind != Upgraded {
			b.Fatal(d)
		}
	}
}

package deploy

import (
	"slices"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/publish"
)

// Target names come from set file names in a PR: whatever they are, a
// name that passes must give a safe repository path and a valid CVMFS tag.
func FuzzTargetNames(f *testing.F) {
	f.Add("2025.06", "linux", "x86_64", 12, "abcdef0123")
	f.Add("..", "linux", "x86_64", 1, "abcdef0")
	f.Add("2025.06", "lin/ux", "x86 64", 1, "ABCDEF0")
	f.Add("trunk", "", "-", -1, "")
	f.Fuzz(func(t *testing.T, version, os, arch string, pr int, sha string) {
		tg := sets.Target{Version: version, OS: os, Arch: arch}
		for _, l := range []publish.Layout{{}, publish.MustParseLayout(publish.PreTemplateLayout)} {
			p, err := l.Path(tg)
			if err != nil {
				continue
			}
			clean, cerr := publish.CleanPath(p)
			els := strings.Split(p, "/")
			if cerr != nil || clean != p || !slices.Contains(els, "compat") || !slices.Contains(els, arch) {
				t.Fatalf("%s.Path(%q) = %q: not a clean path with compat and the arch (%v)", l, tg, p, cerr)
			}
			for _, el := range els {
				if el == ".." || el == "." || strings.HasPrefix(el, "-") {
					t.Fatalf("%s.Path(%q) = %q: element %q", l, tg, p, el)
				}
			}
		}
		tag, err := TagName(tg, pr, sha)
		if err != nil {
			return
		}
		if verr := publish.ValidateTag(tag); verr != nil {
			t.Fatalf("TagName gave invalid tag %q: %v", tag, verr)
		}
		if !strings.HasPrefix(tag, version+"-"+os+"-"+arch+"-pr") {
			t.Fatalf("tag %q does not start with the target", tag)
		}
	})
}

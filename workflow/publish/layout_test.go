package publish

import (
	"strings"
	"testing"

	"github.com/compatbot/compatbot/sets"
)

func TestLayoutPath(t *testing.T) {
	x86 := sets.Target{Version: "2025.06", OS: "linux", Arch: "x86_64"}
	for _, tc := range []struct{ src, want string }{
		{"", "versions/2025.06/compat/linux/x86_64"},
		{DefaultLayout, "versions/2025.06/compat/linux/x86_64"},
		// compatbot's layout before the template, for trees published then.
		{"{{.Version}}/compat/{{.OS}}/{{.Arch}}", "2025.06/compat/linux/x86_64"},
		{"compat-{{.Version}}/{{.OS}}-{{.Arch}}", "compat-2025.06/linux-x86_64"},
		{`{{if eq .OS "linux"}}{{.Version}}/{{.Arch}}{{else}}{{.Version}}/{{.OS}}/{{.Arch}}{{end}}`, "2025.06/x86_64"},
	} {
		l, err := ParseLayout(tc.src)
		if err != nil {
			t.Errorf("ParseLayout(%q): %v", tc.src, err)
			continue
		}
		if got, err := l.Path(x86); err != nil || got != tc.want {
			t.Errorf("%q.Path = %q, %v; want %q", tc.src, got, err, tc.want)
		}
	}
	// The zero Layout is the default.
	if got, err := (Layout{}).Path(x86); err != nil || got != "versions/2025.06/compat/linux/x86_64" || (Layout{}).String() != DefaultLayout {
		t.Errorf("zero Layout: %q, %v, %q", got, err, Layout{}.String())
	}
}

func TestParseLayoutErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"{{.Version}}/compat/{{.OS}}", `layout "{{.Version}}/compat/{{.OS}}": must use {{.Arch}}, or two targets would share one tree`},
		{"compat", `layout "compat": must use {{.Version}} and {{.OS}} and {{.Arch}}`},
		{"/cvmfs/x/{{.Version}}/{{.OS}}/{{.Arch}}", `layout "/cvmfs/x/{{.Version}}/{{.OS}}/{{.Arch}}" gives "/cvmfs/x/2025.06/linux/x86_64" for 2025.06 linux-x86_64: must be a path relative to the repository root`},
		{"../{{.Version}}/{{.OS}}/{{.Arch}}", `gives "../2025.06/linux/x86_64" for 2025.06 linux-x86_64: must not contain ".."`},
		{"{{.Version}}//{{.OS}}/{{.Arch}}", `has an empty element`},
		{"{{.Version}}/{{.OS}}/{{.Arch}}/", `has an empty element`},
		{"{{.Version}}/{{.OS}}/{{.Arch}}/\x01", `not a clean path (transaction path`},
		{"{{.Version}}/{{.OS}}/{{.Arch}}/{{.Site}}", `can't evaluate field Site`},
		{"{{.Version}/{{.OS}}/{{.Arch}}", `layout "{{.Version}/{{.OS}}/{{.Arch}}": template: layout:1: bad character U+007D '}'`},
	} {
		_, err := ParseLayout(tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseLayout(%q) = %v, want %q", tc.src, err, tc.want)
		}
	}
	// Target names from a PR are checked whatever the layout.
	l := MustParseLayout("{{.Version}}-{{.OS}}-{{.Arch}}")
	for _, bad := range []sets.Target{{Version: "..", OS: "linux", Arch: "x86_64"}, {Version: "a/b", OS: "linux", Arch: "x86_64"}, {Version: "2025.06", OS: "-rf", Arch: "x"}} {
		if p, err := l.Path(bad); err == nil {
			t.Errorf("Path(%+v) = %q, want an error", bad, p)
		}
	}
}

package sets

import (
	"strings"
	"testing"
	"testing/fstest"
)

// Set files come from pull requests. Each case breaks one limit or names a
// set file with something that is no version or os-arch; each must be a
// lint error at the file (the check fails), the file's target must not be
// diffed, and a misnamed file must not become a target (a build request).
func TestLoadLimitsAndNames(t *testing.T) {
	small := Limits{Files: 3, FileBytes: 200, LineBytes: 40, Entries: 3}
	entries := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString("dev-libs/p" + strings.Repeat("x", i%3) + string(rune('a'+i)) + " # r\n")
		}
		return b.String()
	}
	const okSet = "sys-libs/zlib # compression\n"
	tests := []struct {
		name       string
		layout     string
		files      map[string]string
		code, file string
		line       int
		target     string // a target that must not exist ("" none)
		unread     string // a target that exists but is Unread
	}{
		{"os-arch with a shell character", "", map[string]string{"sets/2025.06/linux-x86_64;id": okSet},
			CodeInvalidName, "sets/2025.06/linux-x86_64;id", 1, "2025.06 linux-x86_64;id", ""},
		{"os-arch with a space", "", map[string]string{"sets/2025.06/linux-x86_64 $(id)": okSet},
			CodeInvalidName, "sets/2025.06/linux-x86_64 $(id)", 1, "2025.06 linux-x86_64 $(id)", ""},
		{"upper-case os", "", map[string]string{"sets/2025.06/Linux-x86_64": okSet},
			CodeInvalidName, "sets/2025.06/Linux-x86_64", 1, "2025.06 Linux-x86_64", ""},
		{"version with a quote", "", map[string]string{"sets/2025.06'/linux-x86_64": okSet},
			CodeInvalidName, "sets/2025.06'/linux-x86_64", 1, "2025.06' linux-x86_64", ""},
		{"eessi layout, bad arch", LayoutEESSI, map[string]string{"sets/eessi-2023.06-linux-x86_64;id": okSet},
			CodeInvalidName, "sets/eessi-2023.06-linux-x86_64;id", 1, "2023.06 linux-x86_64;id", ""},
		{"yaml layout, bad eessi_archs", LayoutYAML, map[string]string{"eessi_sets.yml": "eessi_archs: [linux-x86_64, \"linux-x86_64;id\"]\neessi_sets:\n  - name: eessi-2023.06\n    packages:\n      - {name: sys-libs/zlib, reason: r}\n"},
			CodeInvalidName, "eessi_sets.yml", 3, "2023.06 linux-x86_64;id", ""},
		{"file too large", "", map[string]string{"sets/2025.06/linux-x86_64": strings.Repeat("# padding comment\n", 20)},
			CodeTooLarge, "sets/2025.06/linux-x86_64", 1, "", "2025.06 linux-x86_64"},
		{"line too long", "", map[string]string{"sets/2025.06/linux-x86_64": okSet + "sys-libs/glibc # " + strings.Repeat("y", 60) + "\n"},
			CodeLongLine, "sets/2025.06/linux-x86_64", 2, "", "2025.06 linux-x86_64"},
		{"too many entries", "", map[string]string{"sets/2025.06/linux-x86_64": entries(5)},
			CodeTooManyEntries, "sets/2025.06/linux-x86_64", 4, "", "2025.06 linux-x86_64"},
		{"yaml: too many packages", LayoutYAML, map[string]string{"eessi_sets.yml": "eessi_archs: [linux-x86_64]\neessi_sets:\n  - name: eessi-2023.06\n    packages: [a/a, a/b, a/c, a/d]\n"},
			CodeTooManyEntries, "eessi_sets.yml", 3, "", "2023.06 linux-x86_64"},
		{"too many files", "", map[string]string{"sets/2025.06/linux-a": okSet, "sets/2025.06/linux-b": okSet, "sets/2025.06/linux-c": okSet, "sets/2025.06/linux-d": okSet},
			CodeTooManyFiles, "sets/2025.06/linux-d", 1, "", "2025.06 linux-d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for p, c := range tc.files {
				fsys[p] = &fstest.MapFile{Data: []byte(c)}
			}
			cfg := DefaultConfig()
			if tc.layout != "" {
				cfg.Layout = tc.layout
			}
			if tc.layout == LayoutYAML {
				cfg.YAMLFiles = []string{"eessi_sets.yml"}
			}
			r, err := LoadRepoLimited(fsys, cfg, small)
			if err != nil {
				t.Fatal(err)
			}
			var found bool
			for _, d := range Lint(r) {
				if d.Code == tc.code {
					if d.File != tc.file || d.Line != tc.line || d.Severity != SeverityError || d.Message == "" {
						t.Errorf("diagnostic %+v, want an error at %s:%d", d, tc.file, tc.line)
					}
					found = true
				}
			}
			if !found {
				t.Fatalf("no %s diagnostic in %v", tc.code, Lint(r))
			}
			for _, sf := range r.Sets {
				switch sf.Target().String() {
				case tc.target:
					t.Errorf("%s became a target", tc.target)
				case tc.unread:
					if !sf.Unread || len(sf.Entries) != 0 {
						t.Errorf("%s: Unread %v with %d entries, want unread and none", tc.unread, sf.Unread, len(sf.Entries))
					}
				}
			}
			// An unread set is not shown as every package removed.
			base, _ := LoadRepoLimited(fstest.MapFS{}, cfg, small)
			for _, d := range Diff(base, r) {
				if d.Target.String() == tc.unread || d.Target.String() == tc.target {
					t.Errorf("diff lists %s: %+v", d.Target, d.Changes)
				}
			}
		})
	}
}

func TestSetLimitsDefaults(t *testing.T) {
	t.Cleanup(func() { SetLimits(DefaultLimits) })
	SetLimits(Limits{Entries: 7})
	if got := CurrentLimits(); got.Entries != 7 || got.Files != DefaultLimits.Files || got.FileBytes != DefaultLimits.FileBytes || got.LineBytes != DefaultLimits.LineBytes {
		t.Errorf("CurrentLimits = %+v, want Entries 7 and the defaults", got)
	}
}

package sets

import (
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testtree"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testtree.Golden(t, name, string(got), *update)
}

func loadDirRepo(t *testing.T, dir string) *Repo {
	t.Helper()
	fsys := os.DirFS(dir)
	cfg, err := LoadRepoConfig(fsys)
	if err != nil {
		t.Fatal(err)
	}
	r, err := LoadRepo(fsys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func diagText(ds []Diagnostic) []byte {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String() + "  [" + d.Code + "]\n")
	}
	return []byte(b.String())
}

// TestLintRepo covers every lint code on a small repository; the expected
// diagnostics, positions included, are in testdata/lint.golden.
func TestLintRepo(t *testing.T) {
	r := loadDirRepo(t, "testdata/lintrepo")
	ds := Lint(r)
	golden(t, "lint.golden", diagText(ds))
	codes := map[string]int{}
	for _, d := range ds {
		codes[d.Code]++
	}
	for _, c := range []string{CodeInvalidAtom, CodeDuplicate, CodeMissingReason, CodeUnknownSet, CodeArchOnly, CodeMissingSet, CodeNotConfigured, CodeNotASet} {
		if codes[c] == 0 {
			t.Errorf("no %s diagnostic", c)
		}
	}
}

func TestExplainsArches(t *testing.T) {
	words := []string{"linux-x86_64", "x86_64", "linux-aarch64", "aarch64"}
	for reason, want := range map[string]bool{
		"Omni-Path fabric, x86_64 only":    true,
		"only where the hardware exists":   true,
		"not built on linux-aarch64 (bug)": true,
		"ONLY on Intel":                    true,
		"Omni-Path fabric":                 false,
		"commonly used":                    false, // "only" inside a word does not count
		"":                                 false,
	} {
		if got := explainsArches(reason, words); got != want {
			t.Errorf("explainsArches(%q) = %v", reason, got)
		}
	}
}

// TestLintRealEESSI lints EESSI's real sets in both of its formats: no
// crash, and every entry's missing reason shows up as an error at its line.
func TestLintRealEESSI(t *testing.T) {
	_, fsys := eessiFS(t)
	for _, layout := range []string{LayoutEESSI, LayoutYAML} {
		cfg := DefaultConfig()
		cfg.Layout = layout
		cfg.YAMLFiles = []string{"eessi_sets.yml", "compat-layer-vars/2026.06.yml"}
		r, err := LoadRepo(fsys, cfg)
		if err != nil {
			t.Fatal(err)
		}
		missing := map[string]bool{}
		archOnly := 0
		for _, d := range Lint(r) {
			switch d.Code {
			case CodeMissingReason:
				missing[d.File+":"+itoa(d.Line)] = true
			case CodeArchOnly:
				archOnly++
			default:
				t.Errorf("%s: unexpected %s", layout, d)
			}
		}
		entries := map[string]bool{}
		for _, sf := range r.Sets {
			for _, e := range sf.Entries {
				entries[sf.Path+":"+itoa(e.Line)] = true
			}
		}
		if len(missing) != len(entries) || len(entries) < 60 {
			t.Errorf("%s: %d missing reasons for %d entries", layout, len(missing), len(entries))
		}
		// The set files do not say why opa-psm2 and elfx86exts are on
		// x86_64 only; the YAML does for opa-psm2 (include_on).
		if layout == LayoutEESSI && archOnly == 0 {
			t.Errorf("%s: no arch-only diagnostics", layout)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

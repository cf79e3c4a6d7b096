package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testgit"
	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/compatbot/compatbot/sets"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	testtree.Golden(t, name, got, *update)
}

func runCmd(f func([]string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := f(args, &out, &errb)
	return code, out.String(), errb.String()
}

func setsRun(args []string, out, errb *bytes.Buffer) int { return setsCmd(args, out, errb) }

const zstdNoReason = "sets/2026.06/linux-x86_64:16:1: app-arch/zstd has no reason: add \"# why it is here\" after it or a comment block above it\n"

// noReasonTree is a copy of the example PR's tree with zstd's reason
// stripped: the example lints clean, this is the lint error.
func noReasonTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pr")
	if err := os.CopyFS(dir, testgit.LintErrorHead(t)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestSetsLint(t *testing.T) {
	repo := testgit.ExampleRepo(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"base work tree", []string{"--repo", "../../testdata/compat-layer/base"}, 0, ""},
		{"pr work tree", []string{"--repo", "../../testdata/compat-layer/pr"}, 0, ""},
		{"missing reason", []string{"--repo", noReasonTree(t)}, 1, zstdNoReason},
		{"git ref main", []string{"--repo", repo, "--ref", "main"}, 0, ""},
		{"git ref pr", []string{"--repo", repo, "--ref", "pr"}, 0, ""},
		// The example repo's work tree has pr checked out.
		{"git work tree", []string{"--repo", repo}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCmd(setsRun, append([]string{"lint"}, tt.args...)...)
			if code != tt.code || out != tt.want {
				t.Errorf("exit %d, output:\n%s\nwant exit %d:\n%s\nstderr: %s", code, out, tt.code, tt.want, errs)
			}
		})
	}
}

func TestSetsLintBrokenSet(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sets/2026.06"), 0o755)
	os.WriteFile(filepath.Join(dir, "sets/2026.06/linux-x86_64"), []byte("dev-lang/python # ok\n>=dev-libs/foo # no version\n"), 0o644)
	code, out, _ := runCmd(setsRun, "lint", "--repo", dir)
	if code != 1 || !strings.HasPrefix(out, "sets/2026.06/linux-x86_64:2:") {
		t.Errorf("exit %d, output %q; want exit 1 and a diagnostic at line 2", code, out)
	}
}

func TestSetsUsageErrors(t *testing.T) {
	repo := testgit.ExampleRepo(t)
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"no subcommand", nil, 2, "Usage:"},
		{"unknown subcommand", []string{"frob"}, 2, `unknown subcommand "frob"`},
		{"missing repo", []string{"lint", "--repo", "/nonexistent/compat"}, 2, "/nonexistent/compat"},
		{"empty repo", []string{"lint", "--repo", t.TempDir()}, 2, "no layout compatbot knows"},
		{"bad ref", []string{"lint", "--repo", repo, "--ref", "main..pr"}, 2, "contains '..'"},
		{"unknown ref", []string{"lint", "--repo", repo, "--ref", "nosuch"}, 2, `no commit named "nosuch"`},
		{"unknown flag", []string{"lint", "--frob"}, 2, "flag provided but not defined"},
		{"extra argument", []string{"lint", "extra"}, 2, `unexpected argument "extra"`},
		{"diff without refs", []string{"diff", "--repo", repo}, 2, "--base and --head are required"},
		{"diff bad format", []string{"diff", "--repo", repo, "--base", "main", "--head", "pr", "--format", "xml"}, 2, "--format must be"},
		{"diff option-like ref", []string{"diff", "--repo", repo, "--base", "--upload-pack=x", "--head", "pr"}, 2, "starts with '-'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := runCmd(setsRun, tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.wantErr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, errs, tt.code, tt.wantErr)
			}
		})
	}
}

func TestSetsHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"lint", "--help"}, {"diff", "-h"}} {
		code, out, _ := runCmd(setsRun, args...)
		if code != 0 || !strings.Contains(out, "compatbot sets diff --repo DIR") || !strings.Contains(out, "Examples:") {
			t.Errorf("%v: exit %d, stdout %q", args, code, out)
		}
	}
}

func TestSetsDiff(t *testing.T) {
	repo := testgit.ExampleRepo(t)
	for _, format := range []string{"text", "markdown", "json"} {
		t.Run(format, func(t *testing.T) {
			code, out, errs := runCmd(setsRun, "diff", "--repo", repo, "--base", "main", "--head", "pr", "--format", format)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			golden(t, "sets_diff."+format, out)
		})
	}
	// JSON is for tools: it must decode into the sets types.
	_, out, _ := runCmd(setsRun, "diff", "--repo", repo, "--base", "main", "--head", "pr", "--format", "json")
	var diffs []sets.TargetDiff
	if err := json.Unmarshal([]byte(out), &diffs); err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 4 {
		t.Errorf("%d targets changed, want 4", len(diffs))
	}
	// No changes: an empty JSON list, not null.
	_, out, _ = runCmd(setsRun, "diff", "--repo", repo, "--base", "main", "--head", "main", "--format", "json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("diff of main with itself = %q, want []", out)
	}
}

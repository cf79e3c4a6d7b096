package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/compatbot/compatbot/workflow/gitrepo"
)

// eessiRoleRepo makes a git repository whose history is the commits of
// sets/testdata/eessi-role (EESSI's layout, no .github/compatbot.yml), one
// branch per commit named after its folder.
func eessiRoleRepo(t *testing.T) (string, []string) {
	t.Helper()
	fixture := filepath.Join("..", "..", "sets", "testdata", "eessi-role")
	ents, err := os.ReadDir(fixture)
	if err != nil {
		t.Fatal(err)
	}
	var specs []gitrepo.CommitSpec
	var steps []string
	for _, e := range ents {
		if e.IsDir() {
			steps = append(steps, e.Name())
			specs = append(specs, gitrepo.CommitSpec{Branch: "s" + e.Name()[:2], Tree: os.DirFS(filepath.Join(fixture, e.Name())), Message: e.Name()})
		}
	}
	dir := filepath.Join(t.TempDir(), "repo")
	if err := gitrepo.InitFromDirs(context.Background(), dir, specs...); err != nil {
		t.Fatal(err)
	}
	return dir, steps
}

// TestSetsAndCheckEESSIRole runs lint, diff and check on a repository in
// EESSI's layout without config: every commit's changes are reported, the
// broken commit fails, and nothing is called "sets OK" with 0 changes.
func TestSetsAndCheckEESSIRole(t *testing.T) {
	repo, _ := eessiRoleRepo(t)
	tests := []struct {
		base, head  string
		lint, check int
		title       string
	}{
		{"s01", "s02", 0, 0, "sets OK: 18 changes"},
		{"s02", "s03", 0, 0, "sets OK: 24 changes"},
		{"s03", "s04", 1, 1, "1 lint error: 1 change"},
		{"s04", "s05", 0, 0, "sets OK: 30 changes"},
	}
	for _, tt := range tests {
		t.Run(tt.head, func(t *testing.T) {
			code, out, errs := runCmd(setsRun, "lint", "--repo", repo, "--ref", tt.head)
			if code != tt.lint {
				t.Errorf("lint %s: exit %d\n%s%s", tt.head, code, out, errs)
			}
			code, out, errs = runCmd(checkRun, "--repo", repo, "--base", tt.base, "--head", tt.head)
			if code != tt.check || !strings.Contains(out, "# compat sets: "+tt.title+"\n") {
				t.Errorf("check %s..%s: exit %d, want %d and %q:\n%s%s", tt.base, tt.head, code, tt.check, tt.title, out, errs)
			}
			code, out, errs = runCmd(setsRun, "diff", "--repo", repo, "--base", tt.base, "--head", tt.head, "--format", "json")
			var diffs []struct {
				Changes []struct{ List string } `json:"changes"`
			}
			if err := json.Unmarshal([]byte(out), &diffs); code != 0 || err != nil || len(diffs) == 0 {
				t.Errorf("diff %s..%s: exit %d, %v:\n%s%s", tt.base, tt.head, code, err, out, errs)
			}
		})
	}
	// The pin bump of s03 is in the check's details with both commits.
	_, out, _ := runCmd(checkRun, "--repo", repo, "--base", "s02", "--head", "s03")
	if !strings.Contains(out, "`2222222222222222222222222222222222222222` | `3333333333333333333333333333333333333333`") ||
		!strings.Contains(out, "| Changed |") {
		t.Errorf("pin bump not in the report:\n%s", out)
	}
}

// TestCheckUnknownLayout: a repository with no config and no layout
// compatbot knows is never green: lint, diff and check exit 2 and say why.
func TestCheckUnknownLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	tree := fstest.MapFS{"README.md": {Data: []byte("a compat layer compatbot cannot read\n")},
		"ansible/playbooks/site.yml": {Data: []byte("- hosts: all\n")}}
	tree2 := fstest.MapFS{"README.md": {Data: []byte("changed\n")}, "ansible/playbooks/site.yml": {Data: []byte("- hosts: none\n")}}
	if err := gitrepo.InitFromDirs(context.Background(), dir,
		gitrepo.CommitSpec{Branch: "main", Tree: tree, Message: "base"},
		gitrepo.CommitSpec{Branch: "pr", Tree: tree2, Message: "head"}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"lint", "--repo", dir, "--ref", "pr"},
		{"lint", "--repo", dir},
		{"diff", "--repo", dir, "--base", "main", "--head", "pr"},
	} {
		code, out, errs := runCmd(setsRun, args...)
		if code != 2 || !strings.Contains(errs, "no .github/compatbot.yml and no layout compatbot knows") || strings.Contains(out, "OK") {
			t.Errorf("sets %v: exit %d\n%s%s", args, code, out, errs)
		}
	}
	code, out, errs := runCmd(checkRun, "--repo", dir, "--base", "main", "--head", "pr")
	if code != 2 || strings.Contains(out, "sets OK") || !strings.Contains(errs, "no layout compatbot knows") {
		t.Errorf("check: exit %d\n%s%s", code, out, errs)
	}
}

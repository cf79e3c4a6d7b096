package gitrepo

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExportTree(t *testing.T) {
	ctx := context.Background()
	repo := initExample(t)
	gitOut(t, repo, "checkout", "--quiet", "-b", "links", "pr")
	if err := os.Symlink("/etc/passwd", filepath.Join(repo, "link")); err != nil {
		t.Fatal(err)
	}
	gitOut(t, repo, "add", "link")
	gitOut(t, repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "link")
	dir := filepath.Join(t.TempDir(), "work")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stale"), []byte("from an earlier run"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ExportTree(ctx, repo, gitOut(t, repo, "rev-parse", "links"), dir); err != nil {
		t.Fatal(err)
	}
	_, head := exampleTrees()
	want := map[string]string{}
	for name, f := range head {
		want[name] = string(f.Data)
	}
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !d.Type().IsRegular() {
			t.Errorf("%s: exported as %v, want only regular files", rel, d.Type())
			return nil
		}
		data, err := os.ReadFile(p)
		got[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("exported tree (-want +got):\n%s", diff)
	}

	if err := ExportTree(ctx, repo, "no-such-branch", filepath.Join(t.TempDir(), "x")); err == nil {
		t.Error("ExportTree of an unknown ref succeeded")
	}
}

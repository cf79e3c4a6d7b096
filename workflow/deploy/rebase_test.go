package deploy

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/google/go-cmp/cmp"
)

// An artifact rebuilt on production's tree (BaseEnv "prod") is tested on
// a copy of production's tree, whatever test had: test then has exactly
// what production gets, lineage included.
func TestRebaseOnProdTree(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a := r.artifact(prefixA)
	rq := req(1, sha(1), Item{Target: x86, Digest: a})
	if _, err := r.d.DeployTest(ctx, rq); err != nil {
		t.Fatal(err)
	}
	if _, err := r.d.DeployProd(ctx, rq); err != nil {
		t.Fatal(err)
	}
	prodLin, _ := r.d.Lineage(ctx, EnvProd, x86)
	// Test moves ahead of production: PR 2 is on test only.
	b := r.artifact(map[string]string{"usr/bin/zstd": "zstd\n"})
	r.deployTest(2, b)
	if _, ok := r.targetTree(EnvTest, x86)["usr/bin/zstd"]; !ok {
		t.Fatal("PR 2 is not on test")
	}

	// PR 3 was rebuilt on production's tree.
	c := r.artifact(map[string]string{"usr/bin/direnv": "direnv\n"})
	item := Item{Target: x86, Digest: c, BaseLineage: prodLin, BaseEnv: EnvProd}
	res, err := r.d.DeployTest(ctx, req(3, sha(3), item))
	if err != nil {
		t.Fatalf("%v\n%s", err, res.Markdown())
	}
	want := merge(r.targetTree(EnvProd, x86), map[string]string{"usr/bin/direnv": "direnv\n"}, markers(NextLineage(prodLin, c), c))
	if diff := cmp.Diff(want, r.targetTree(EnvTest, x86)); diff != "" {
		t.Errorf("test is not production's tree plus the rebuilt artifact (-want +got):\n%s", diff)
	}
	if res.Items[0].LineageBefore != prodLin {
		t.Errorf("journaled lineage before %s, want production's %s", res.Items[0].LineageBefore, prodLin)
	}
	// Production takes it, and ends with the tree test has.
	if res, err := r.d.DeployProd(ctx, req(3, sha(3), item)); err != nil {
		t.Fatalf("%v\n%s", err, res.Markdown())
	}
	if diff := cmp.Diff(r.targetTree(EnvTest, x86), r.targetTree(EnvProd, x86)); diff != "" {
		t.Errorf("prod differs from test (-test +prod):\n%s", diff)
	}

	// A rebuild whose production base is gone (production moved again)
	// fails before anything is published.
	stale := Item{Target: x86, Digest: r.artifact(map[string]string{"x": "y\n"}), BaseLineage: prodLin, BaseEnv: EnvProd}
	r.deployTest(4, r.artifact(map[string]string{"usr/bin/other": "o\n"}))
	before := r.targetTree(EnvTest, x86)
	_, err = r.d.DeployTest(ctx, req(5, sha(5), stale))
	failedAt(t, err, "rebase", "rebuild it on the new base")
	if diff := cmp.Diff(before, r.targetTree(EnvTest, x86)); diff != "" {
		t.Errorf("a refused rebase changed test:\n%s", diff)
	}
	r.noOpenTransaction(EnvTest)
}

func TestReplaceTreeKeepsModesAndLinks(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	testtree.Build(t, src, map[string]testtree.File{"bin/tool": {Content: "x\n", Mode: 0o755}, "etc/conf": {Content: "c\n"}, "etc/link": {Link: "../bin/tool"}})
	if err := os.Chmod(filepath.Join(src, "etc"), 0o555); err != nil {
		t.Fatal(err)
	}
	testtree.Write(t, filepath.Join(dst, "old/file"), "gone\n", 0o644)
	if err := replaceTree(dst, src); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(testtree.Contents(t, src), testtree.Contents(t, dst)); diff != "" {
		t.Errorf("copy differs (-src +dst):\n%s", diff)
	}
	for p, mode := range map[string]os.FileMode{"bin/tool": 0o755, "etc": 0o555 | os.ModeDir} {
		fi, err := os.Lstat(filepath.Join(dst, p))
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: mode %v %v, want %v", p, fi.Mode(), err, mode)
		}
	}
	if l, err := os.Readlink(filepath.Join(dst, "etc/link")); err != nil || l != "../bin/tool" {
		t.Errorf("symlink %q %v", l, err)
	}
	// A target production never had makes test's target empty.
	if err := replaceTree(dst, filepath.Join(src, "missing")); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dst); len(ents) != 0 {
		t.Errorf("%d entries left", len(ents))
	}
}

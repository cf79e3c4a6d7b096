package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/workflow/publish"
	"github.com/google/go-cmp/cmp"
)

// TestDeployAtTemplatedLayout: each environment publishes at its own
// layout, and everything that reads a target's tree (lineage, status,
// production's promotion rule, rollback) reads it there.
func TestDeployAtTemplatedLayout(t *testing.T) {
	r := newRig(t)
	r.layouts = map[string]publish.Layout{
		EnvTest: publish.MustParseLayout("testing/{{.Version}}/{{.OS}}-{{.Arch}}"),
		// prod has none: publish.DefaultLayout, EESSI's.
	}
	r.open()
	ctx := context.Background()
	dg := r.artifact(prefixA)
	res, err := r.d.DeployTest(ctx, req(7, sha(7), Item{Target: x86, Digest: dg}))
	if err != nil {
		t.Fatalf("DeployTest: %v\n%s", err, res.Markdown())
	}
	if res.Items[0].Path != "testing/2025.06/linux-x86_64" {
		t.Errorf("item path %q", res.Items[0].Path)
	}
	lin := NextLineage("", dg)
	cur := r.current(EnvTest)
	if diff := cmp.Diff(merge(treeA(), markers(lin, dg)), tree(t, filepath.Join(mustCurrent(t, r, EnvTest), "testing/2025.06/linux-x86_64"))); diff != "" {
		t.Errorf("tree at the templated path (-want +got):\n%s", diff)
	}
	for p := range cur {
		if strings.HasPrefix(p, "versions") || strings.HasPrefix(p, "2025.06") {
			t.Errorf("published outside the layout: %s", p)
		}
	}
	if got, _ := r.d.Lineage(ctx, EnvTest, x86); got != lin {
		t.Errorf("lineage %q, want %q", got, lin)
	}
	contains(t, "reply", res.Markdown(), "`testing/2025.06/linux-x86_64`")
	// Production promotes onto its own (default) layout.
	res, err = r.d.DeployProd(ctx, req(7, sha(7), Item{Target: x86, Digest: dg}))
	if err != nil {
		t.Fatalf("DeployProd: %v\n%s", err, res.Markdown())
	}
	if got := r.targetTree(EnvProd, x86)[".compatbot/lineage"]; got != lin+"\n" || res.Items[0].Path != "versions/2025.06/compat/linux/x86_64" {
		t.Errorf("prod: lineage %q at %s", got, res.Items[0].Path)
	}
	st, err := r.d.Status(ctx)
	if err != nil || len(st) != 2 || st[0].Path != "testing/2025.06/linux-x86_64" || st[0].Digest != dg || st[1].Path != "versions/2025.06/compat/linux/x86_64" || st[1].Tag == "" {
		t.Errorf("status %+v, %v", st, err)
	}
	// The layouts agree with the journal: a restart starts.
	if _, err := r.d.Recover(ctx); err != nil {
		t.Fatalf("Recover: %v", err)
	}
}

// TestRecoverRefusesAMovedLayout: trees published at compatbot's old
// fixed layout are not silently left behind by the templated default.
func TestRecoverRefusesAMovedLayout(t *testing.T) {
	r := newRig(t)
	old := publish.MustParseLayout(publish.PreTemplateLayout)
	r.layouts = map[string]publish.Layout{EnvTest: old, EnvProd: old}
	r.open()
	ctx := context.Background()
	dg := r.artifact(prefixA)
	r.deployTest(7, dg)
	if _, err := os.Stat(filepath.Join(mustCurrent(t, r, EnvTest), "2025.06/compat/linux/x86_64/startprefix")); err != nil {
		t.Fatalf("not published at the old layout: %v", err)
	}

	// Upgraded without naming the old layout.
	r.layouts = nil
	r.open()
	_, err := r.d.Recover(ctx)
	want := `test: 2025.06 linux-x86_64 is published at 2025.06/compat/linux/x86_64, but the layout "versions/{{.Version}}/compat/{{.OS}}/{{.Arch}}" puts it at versions/2025.06/compat/linux/x86_64, where the published tree has nothing: set the target's layout to "{{.Version}}/compat/{{.OS}}/{{.Arch}}" (compatbot's layout before it became a template), or move the trees in the repository first`
	if err == nil || err.Error() != want {
		t.Fatalf("Recover = %v\nwant %s", err, want)
	}

	// Naming it, compatbot starts and deploys where it did.
	r.layouts = map[string]publish.Layout{EnvTest: old}
	r.open()
	if _, err := r.d.Recover(ctx); err != nil {
		t.Fatalf("Recover with the old layout: %v", err)
	}
	res := r.deployTest(8, dg)
	if res.Items[0].Path != "2025.06/compat/linux/x86_64" {
		t.Errorf("deploy with the old layout went to %s", res.Items[0].Path)
	}

	// Trees moved in the repository (a transaction on the root that
	// renames them) are found at the new path: no error.
	tx, err := r.pubs[EnvTest].Transaction(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(tx.Dir(), "versions"), 0o755); err != nil {
		t.Fatal(err)
	}
	// overlayfs renames no directory of the lower layer (EXDEV), so the
	// move is a copy and a removal, as mv does across devices.
	if out, err := exec.Command("cp", "-a", filepath.Join(tx.Dir(), "2025.06"), filepath.Join(tx.Dir(), "versions", "2025.06")).CombinedOutput(); err != nil {
		tx.Abort(ctx)
		t.Fatalf("cp: %v\n%s", err, out)
	}
	if err := os.RemoveAll(filepath.Join(tx.Dir(), "2025.06")); err != nil {
		tx.Abort(ctx)
		t.Fatal(err)
	}
	if _, err := tx.Publish(ctx, "moved-to-versions", "move the trees under versions/"); err != nil {
		t.Fatal(err)
	}
	r.layouts = nil
	r.open()
	if _, err := r.d.Recover(ctx); err != nil {
		t.Fatalf("Recover after moving the trees: %v", err)
	}
	if got, _ := r.d.Lineage(ctx, EnvTest, x86); got == "" {
		t.Errorf("no lineage at the moved tree")
	}
}

func mustCurrent(t *testing.T, r *rig, env string) string {
	t.Helper()
	dir, _, err := r.pubs[env].Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

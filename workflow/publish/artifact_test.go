package publish

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// TestLocalPublishesARealArtifact applies an artifact made by the real
// artifact store (with a deletion recorded as an overlay whiteout) into a
// local transaction, as a deploy does.
func TestLocalPublishesARealArtifact(t *testing.T) {
	ctx := context.Background()
	l := newLocal(t)
	publishChanges(t, l, scope, "base", []change{
		{path: "usr/bin/bash", content: "bash-5.1"}, {path: "usr/lib/libz.so", content: "zlib"}, {path: "etc/old.conf", content: "old"},
	})

	upper := t.TempDir()
	write := func(p, content string) {
		full := filepath.Join(upper, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("usr/bin/bash", "bash-5.2")
	write("usr/share/doc/new", "doc")
	os.MkdirAll(filepath.Join(upper, "etc"), 0o755)
	if err := unix.Mknod(filepath.Join(upper, "etc", "old.conf"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	store := &artifact.Store{Dir: t.TempDir()}
	art, err := store.Put(ctx, upper, map[string]string{"pr": "12"})
	if err != nil {
		t.Fatal(err)
	}

	tx, err := l.Transaction(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(ctx, tx, art.Payload()); err != nil {
		tx.Abort(ctx)
		t.Fatal(err)
	}
	rev, err := tx.Publish(ctx, "2025.06-linux-x86_64-pr12-abcdef0", "PR #12")
	if err != nil {
		t.Fatal(err)
	}
	dir, cur, _ := l.Current(ctx)
	if cur != rev {
		t.Fatalf("current revision %d, published %d", cur, rev)
	}
	want := map[string]string{
		"usr": "dir/", "usr/bin": "dir/", "usr/lib": "dir/", "usr/share": "dir/", "usr/share/doc": "dir/", "etc": "dir/",
		"usr/bin/bash": "bash-5.2", "usr/lib/libz.so": "zlib", "usr/share/doc/new": "doc",
	}
	if got := testtree.Contents(t, filepath.Join(dir, scope)); !cmp.Equal(got, want) {
		t.Errorf("published tree: %s", cmp.Diff(want, got))
	}
	if inode(t, filepath.Join(l.revDir(1), scope, "usr/lib/libz.so")) != inode(t, filepath.Join(dir, scope, "usr/lib/libz.so")) {
		t.Error("file the artifact did not touch was copied, not linked")
	}
	if got := testtree.Contents(t, filepath.Join(l.revDir(1), scope))["usr/bin/bash"]; got != "bash-5.1" {
		t.Errorf("base revision changed by the publish: bash = %q", got)
	}
}

package artifact

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testtree"
)

// TestImport: an artifact a cluster node put into a store on the shared
// storage is taken into the service's store by digest, verified; one
// altered on the way is refused and leaves nothing behind.
func TestImport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	upper := filepath.Join(dir, "upper")
	testtree.Build(t, upper, map[string]testtree.File{
		"usr/bin/tool": {Content: "tool 2\n", Mode: 0o755}, "usr/lib/libz.so": {Link: "libz.so.1"}, "etc/profile": {Content: "export A=1\n"}})
	node := &Store{Dir: filepath.Join(dir, "shared", "runs", "r1", "artifacts")}
	art, err := node.Put(ctx, upper, map[string]string{"target": "2026.06/linux-x86_64"})
	if err != nil {
		t.Fatal(err)
	}
	svc := &Store{Dir: filepath.Join(dir, "service")}
	got, err := svc.Import(ctx, node, art.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != art.Digest || got.Size != art.Size || got.Meta["target"] != "2026.06/linux-x86_64" || !strings.HasPrefix(got.Path, svc.Dir+"/sha256/") {
		t.Errorf("imported %+v", got)
	}
	if err := svc.Verify(art.Digest); err != nil {
		t.Error(err)
	}
	// Again (a restarted service collecting the same run): kept as it is.
	if again, err := svc.Import(ctx, node, art.Digest); err != nil || again.Path != got.Path {
		t.Errorf("second import: %+v, %v", again, err)
	}

	// Altered on the shared storage: one byte of a file's content.
	testtree.Build(t, upper, map[string]testtree.File{"usr/bin/other": {Content: "other\n", Mode: 0o755}})
	bad, err := node.Put(ctx, upper, nil)
	if err != nil {
		t.Fatal(err)
	}
	tarball, err := os.ReadFile(bad.TarPath())
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(tarball), "other\n")
	tarball[i] = 'O'
	if err := os.WriteFile(bad.TarPath(), tarball, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Import(ctx, node, bad.Digest); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("an altered artifact was imported: %v", err)
	}
	if _, err := svc.Get(bad.Digest); !errors.Is(err, ErrNotFound) {
		t.Errorf("the altered artifact is in the service's store: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(svc.Dir, "tmp")); len(ents) != 0 {
		t.Errorf("a refused import left %v in tmp", ents)
	}
	if _, err := svc.Import(ctx, node, "sha256:"+strings.Repeat("0", 64)); !errors.Is(err, ErrNotFound) {
		t.Errorf("import of an unknown digest: %v", err)
	}
}

package publish

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/compatbot/compatbot/sets"
)

func TestLowerServesThePublishedSubtree(t *testing.T) {
	ctx := context.Background()
	l := newLocal(t)
	lw := Lower{P: l, Empty: filepath.Join(t.TempDir(), "empty")}
	x86 := sets.Target{Version: "2025.06", OS: "linux", Arch: "x86_64"}
	dir, rev, err := lw.Current(ctx, x86)
	if err != nil || dir != lw.Empty || rev != "0" {
		t.Fatalf("never published: %q %q %v, want the empty dir at revision 0", dir, rev, err)
	}
	publishChanges(t, l, "versions/"+scope, "v1", []change{{path: "bin/sh", content: "sh"}})
	dir, rev, err = lw.Current(ctx, x86)
	if err != nil || rev != "1" || dir != filepath.Join(l.revDir(1), "versions", scope) {
		t.Fatalf("Current = %q %q %v", dir, rev, err)
	}
	// A later publish does not move a build's lower layer.
	publishChanges(t, l, "versions/"+scope, "v2", []change{{path: "bin/sh", content: "sh2"}})
	if got := testtree.Contents(t, dir)["bin/sh"]; got != "sh" {
		t.Errorf("lower layer changed under the build: %q", got)
	}
	for _, bad := range []sets.Target{{Version: "2025.06"}, {Version: "..", OS: "linux", Arch: "x86_64"}, {Version: "a/b", OS: "linux", Arch: "x86_64"}, {Version: "-rf", OS: "linux", Arch: "x86_64"}} {
		if _, _, err := lw.Current(ctx, bad); err == nil || !strings.Contains(err.Error(), "target") {
			t.Errorf("Current(%+v) = %v", bad, err)
		}
	}
}

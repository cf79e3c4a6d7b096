package overlay

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// After a crash the overlay is still mounted: staging again on the same
// target is refused, and RemoveScratch detaches it before deleting, so the
// published tree is not walked (nor touched).
func TestRemoveScratchAfterCrash(t *testing.T) {
	requireRoot(t)
	for _, method := range []Method{Kernel, FUSE} {
		t.Run(string(method), func(t *testing.T) {
			dir, lower := lowerIn(t)
			before := snapshot(t, lower)
			scratch := filepath.Join(dir, "run 1") // a space: escaped in mountinfo
			m, err := stageWith(t, lower, scratch, method)
			if err != nil {
				t.Fatal(err)
			}
			testtree.Write(t, filepath.Join(m.Target(), "usr/bin/new"), "x", 0o755)
			// "Crash": m is forgotten without Unmount.
			_, err = stageWith(t, lower, scratch, method)
			var oe *OptionError
			if !errors.As(err, &oe) || oe.Field != "Target" || !strings.Contains(err.Error(), "already a mount point") {
				t.Errorf("staging over a live mount: %v", err)
			}
			if err := RemoveScratch(scratch); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(scratch); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("scratch dir still there: %v", err)
			}
			if mps, _ := mountsUnder(dir); len(mps) != 0 {
				t.Errorf("mounts left: %v", mps)
			}
			if diff := cmp.Diff(before, snapshot(t, lower)); diff != "" {
				t.Errorf("lower changed:\n%s", diff)
			}
			if err := RemoveScratch(scratch); err != nil {
				t.Errorf("RemoveScratch of a removed dir: %v", err)
			}
		})
	}
	if err := RemoveScratch("relative"); err == nil {
		t.Error("RemoveScratch with a relative path succeeded")
	}
}

// DetachBelow detaches what a crash left under a runs directory but not
// the runs directory itself, which may be a filesystem of its own.
func TestDetachBelow(t *testing.T) {
	requireRoot(t)
	dir, lower := lowerIn(t)
	runs := filepath.Join(dir, "runs")
	if err := os.Mkdir(runs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", runs, "tmpfs", 0, "size=16m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(runs, unix.MNT_DETACH) })
	m, err := Stage(context.Background(), lower, filepath.Join(runs, "run 1")) // a space: escaped in mountinfo
	if err != nil {
		t.Fatal(err)
	}
	if !m.Visible() {
		t.Fatalf("overlay method %s: the test needs a mount others see (root)", m.Method())
	}
	t.Cleanup(func() { m.Unmount() })
	if got, err := MountsUnder(runs); err != nil || !cmp.Equal(got, []string{m.Target(), runs}) {
		t.Fatalf("MountsUnder before = %q, %v; want %q", got, err, []string{m.Target(), runs})
	}
	got, err := DetachBelow(runs + "/")
	if err != nil || !cmp.Equal(got, []string{m.Target()}) {
		t.Fatalf("DetachBelow = %q, %v; want %q", got, err, []string{m.Target()})
	}
	if left, err := MountsUnder(runs); err != nil || !cmp.Equal(left, []string{runs}) {
		t.Errorf("MountsUnder after = %q, %v; want only %q", left, err, runs)
	}
	if got, err := DetachBelow(runs); err != nil || len(got) != 0 {
		t.Errorf("DetachBelow again = %q, %v; want nothing", got, err)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/run\0401`:  "/tmp/run 1",
		`/a\011b\012c`:   "/a\tb\nc",
		`/back\134slash`: `/back\slash`,
		`/plain`:         "/plain",
		`/trailing\04`:   `/trailing\04`,
		`/bad\999`:       `/bad\999`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

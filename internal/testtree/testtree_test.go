package testtree

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWriteAndContents(t *testing.T) {
	dir := t.TempDir()
	Write(t, filepath.Join(dir, "a/b/f"), "x\n", 0o777|fs.ModeSetuid)
	Write(t, filepath.Join(dir, "g"), "", 0o600)
	if err := os.Symlink("a/b/f", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(dir, "a/b/f"))
	if err != nil {
		t.Fatal(err)
	}
	// The umask must not eat bits, and setuid survives.
	if got := fi.Mode() & (fs.ModePerm | fs.ModeSetuid); got != 0o777|fs.ModeSetuid {
		t.Errorf("mode %v, want urwxrwxrwx", got)
	}
	want := map[string]string{"a": Dir, "a/b": Dir, "a/b/f": "x\n", "g": "", "l": "-> a/b/f"}
	if diff := cmp.Diff(want, Contents(t, dir)); diff != "" {
		t.Errorf("Contents (-want +got):\n%s", diff)
	}
	perms := Walk(t, dir, func(p string, fi fs.FileInfo) (string, error) { return fi.Mode().Type().String(), nil })
	if perms["l"] != "L---------" || perms["a"] != "d---------" || len(perms) != 5 {
		t.Errorf("Walk: %v", perms)
	}
}

func TestContentsOfAMissingDirFails(t *testing.T) {
	ft := &fakeT{TB: t}
	func() {
		defer func() { recover() }()
		Contents(ft, filepath.Join(t.TempDir(), "nope"))
	}()
	if !ft.failed {
		t.Error("Contents of a missing directory did not fail the test")
	}
}

// fakeT records Fatal instead of ending the real test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatal(args ...any) {
	f.failed = true
	panic("fatal")
}

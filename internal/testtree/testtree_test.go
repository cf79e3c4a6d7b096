package testtree

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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

func TestBuild(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("whiteouts are character devices: this test must run as root (CI does)")
	}
	dir := t.TempDir()
	Build(t, dir, map[string]File{
		"etc/profile":  {Content: "A=1\n"},
		"usr/bin/tool": {Content: "#!/bin/sh\n", Mode: 0o755},
		"usr/bin/link": {Link: "tool"},
		"var/gone":     {Whiteout: true},
	})
	got := Walk(t, dir, func(p string, fi fs.FileInfo) (string, error) {
		if fi.Mode()&fs.ModeCharDevice != 0 {
			st := fi.Sys().(*syscall.Stat_t)
			return fmt.Sprintf("chardev %d", st.Rdev), nil
		}
		return fi.Mode().String(), nil
	})
	want := map[string]string{
		"etc": "drwxr-xr-x", "etc/profile": "-rw-r--r--",
		"usr": "drwxr-xr-x", "usr/bin": "drwxr-xr-x", "usr/bin/tool": "-rwxr-xr-x", "usr/bin/link": "Lrwxrwxrwx",
		"var": "drwxr-xr-x", "var/gone": "chardev 0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Build (-want +got):\n%s", diff)
	}
	if err := os.Chmod(filepath.Join(dir, "usr/bin/tool"), 0o755|fs.ModeSetuid|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 0)
	if err := os.Chtimes(filepath.Join(dir, "etc/profile"), ts, ts); err != nil {
		t.Fatal(err)
	}
	snap := map[string]string{
		"etc": "dir 755", "etc/profile": `file 644 "A=1\n" mtime 1700000000`,
		"usr": "dir 755", "usr/bin": "dir 755",
		"var": "dir 755", "var/gone": "chardev 0:0",
	}
	got = Snapshot(t, dir, true)
	if !strings.HasPrefix(got["usr/bin/tool"], `file 5755 "#!/bin/sh\n" mtime `) || !strings.HasPrefix(got["usr/bin/link"], "symlink tool mtime ") {
		t.Errorf("Snapshot with mtimes: tool %q, link %q", got["usr/bin/tool"], got["usr/bin/link"])
	}
	delete(got, "usr/bin/tool")
	delete(got, "usr/bin/link")
	if diff := cmp.Diff(snap, got); diff != "" {
		t.Errorf("Snapshot (-want +got):\n%s", diff)
	}
	if got := Snapshot(t, dir, false)["usr/bin/link"]; got != "symlink tool" {
		t.Errorf("Snapshot without mtimes: link %q", got)
	}
	// Contents reads files; a device has nothing to read.
	if err := os.Remove(filepath.Join(dir, "var/gone")); err != nil {
		t.Fatal(err)
	}
	if c := Contents(t, dir); c["etc/profile"] != "A=1\n" || c["usr/bin/link"] != "-> tool" {
		t.Errorf("Contents: %v", c)
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

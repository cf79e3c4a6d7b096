// Package testtree holds the file-tree helpers that tests of several
// workflow packages share: building a tree (files with exact mode bits,
// symlinks, overlayfs whiteouts) and reading a directory back as a map for
// exact comparisons. Only tests import it.
package testtree

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Write creates p (and its parent directories) with content and exactly
// mode: it chmods after writing because the umask would otherwise mask
// bits of mode.
func Write(t testing.TB, p, content string, mode fs.FileMode) {
	t.Helper()
	mkdirAll(t, filepath.Dir(p))
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// File is one entry of a tree Build writes.
type File struct {
	Content string
	Mode    fs.FileMode // of a regular file; 0o644 when zero
	// Link, when set, makes the entry a symlink to Link.
	Link string
	// Whiteout makes the entry a 0:0 character device, overlayfs' mark of
	// a deleted file in an upper layer (needs root).
	Whiteout bool
}

// Prefix is a small published prefix that build tests change: a
// profile, a tool, one installed package's vdb entry and a doc directory.
// It is a fresh map; tests add what they need before Build.
func Prefix() map[string]File {
	return map[string]File{
		"etc/profile":                        {Content: "export A=1\n"},
		"usr/bin/tool":                       {Content: "#!/bin/sh\necho tool\n", Mode: 0o755},
		"var/db/pkg/app-misc/old-1/CONTENTS": {Content: "obj /usr/bin/old\n"},
		"var/db/pkg/app-misc/old-1/SLOT":     {Content: "0\n"},
		"usr/share/doc/a.txt":                {Content: "a\n"},
	}
}

// Build writes files (keyed by slash-separated paths relative to dir)
// under dir, creating parent directories 0755.
func Build(t testing.TB, dir string, files map[string]File) {
	t.Helper()
	for rel, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		switch {
		case f.Link != "":
			mkdirAll(t, filepath.Dir(p))
			if err := os.Symlink(f.Link, p); err != nil {
				t.Fatal(err)
			}
		case f.Whiteout:
			mkdirAll(t, filepath.Dir(p))
			if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
				t.Fatal(err)
			}
		default:
			mode := f.Mode
			if mode == 0 {
				mode = 0o644
			}
			Write(t, p, f.Content, mode)
		}
	}
}

func mkdirAll(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// Walk maps every path under dir (relative, dir itself left out) to what
// describe says of it; describe gets the full path and its Lstat info. An
// error, from the walk or from describe, fails the test.
func Walk(t testing.TB, dir string, describe func(p string, fi fs.FileInfo) (string, error)) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		s, err := describe(p, fi)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Snapshot describes every path under dir by type, permission bits in
// octal (with setuid, setgid and sticky as 4000, 2000, 1000) and content:
// "dir 755", `file 644 "text\n"`, "symlink target", "chardev 0:0" (an
// overlayfs whiteout). With mtimes, files and symlinks also carry their
// mtime in seconds (" mtime 1700000000"); directories never do, as
// creating an entry changes its directory's.
func Snapshot(t testing.TB, dir string, mtimes bool) map[string]string {
	t.Helper()
	return Walk(t, dir, func(p string, fi fs.FileInfo) (string, error) {
		m := fi.Mode()
		mtime := ""
		if mtimes {
			mtime = fmt.Sprintf(" mtime %d", fi.ModTime().Unix())
		}
		switch {
		case m.IsRegular():
			b, err := os.ReadFile(p)
			return fmt.Sprintf("file %o %q", unixPerm(fi), b) + mtime, err
		case m.IsDir():
			return fmt.Sprintf("dir %o", unixPerm(fi)), nil
		case m&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			return "symlink " + l + mtime, err
		case m&fs.ModeCharDevice != 0:
			st := fi.Sys().(*syscall.Stat_t)
			return fmt.Sprintf("chardev %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)), nil
		default:
			return "other " + m.String(), nil
		}
	})
}

// unixPerm is the permission and setuid/setgid/sticky bits as the kernel
// reports them, read from the raw stat rather than converted from
// fs.FileMode, so a conversion bug in the code under test cannot repeat here.
func unixPerm(fi fs.FileInfo) uint32 {
	return fi.Sys().(*syscall.Stat_t).Mode & 0o7777
}

// Dir is what Contents says of a directory.
const Dir = "dir/"

// Contents maps every path under dir to its content: a file's bytes, Dir
// for a directory, "-> target" for a symlink. Modes and times are left out.
func Contents(t testing.TB, dir string) map[string]string {
	t.Helper()
	return Walk(t, dir, func(p string, fi fs.FileInfo) (string, error) {
		switch {
		case fi.IsDir():
			return Dir, nil
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			return "-> " + target, err
		default:
			b, err := os.ReadFile(p)
			return string(b), err
		}
	})
}

// Package testtree holds the file-tree helpers that tests of several
// workflow packages share: writing a file with exact mode bits and reading a
// directory back as a map for exact comparisons. Only tests import it.
package testtree

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Write creates p (and its parent directories) with content and exactly
// mode: it chmods after writing because the umask would otherwise mask
// bits of mode.
func Write(t testing.TB, p, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
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

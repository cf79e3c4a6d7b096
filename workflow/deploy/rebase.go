package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// An artifact rebuilt on production's tree (Item.BaseEnv "prod") goes
// through test before production takes it. Test may have moved ahead of
// production meanwhile (typically with the same PR's first artifact, or
// with other PRs not promoted yet). Applied onto that tree, the rebuilt
// artifact would be tested in a tree production will never have, and
// test's lineage would stay off production's, so every later PR built on
// test would need its own rebuild. So such a test deploy first makes the
// target's tree on test a copy of production's (in the same transaction),
// then applies the artifact: test then has exactly what production will
// have after the promotion, with the same lineage. Test-only changes of
// that target are dropped from test; their PRs deploy to test again.

// rebaseSource says which tree the transaction must start from: "" for
// env's own tree (it already is the artifact's base, or the item has no
// BaseEnv), else BaseEnv's current target directory, which must still
// have the artifact's base lineage.
func (d *Engine) rebaseSource(ctx context.Context, env string, it Item, path, prev string) (string, error) {
	if it.BaseEnv == "" || it.BaseEnv == env || prev == it.BaseLineage {
		return "", nil
	}
	pub, err := d.publisher(it.BaseEnv)
	if err != nil {
		return "", err
	}
	cur, _, err := pub.Current(ctx)
	if err != nil {
		return "", fmt.Errorf("read %s's current tree: %w", it.BaseEnv, err)
	}
	dir := filepath.Join(cur, filepath.FromSlash(path))
	lin, err := ReadLineage(dir)
	if err != nil {
		return "", err
	}
	if lin != it.BaseLineage {
		return "", fmt.Errorf("the artifact was built on %s's tree of lineage %s, but %s is at %s now: rebuild it on the new base",
			it.BaseEnv, lineageShort(it.BaseLineage), it.BaseEnv, lineageShort(lin))
	}
	return dir, nil
}

// replaceTree makes dst's content a copy of src (dst itself stays: it is
// the transaction's directory). A missing src leaves dst empty.
func replaceTree(dst, src string) error {
	ents, err := os.ReadDir(dst)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	type dirMode struct {
		path string
		mode fs.FileMode
	}
	var dirs []dirMode
	err = filepath.WalkDir(src, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		out := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			// Writable until its children are in; its mode comes last.
			dirs = append(dirs, dirMode{out, fi.Mode().Perm()})
			return os.Mkdir(out, 0o755)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, out)
		case fi.Mode().IsRegular():
			return copyRegular(p, out, fi.Mode().Perm())
		}
		return fmt.Errorf("%s: %s is not a file, directory or symlink", p, fi.Mode().Type())
	})
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(src); errors.Is(serr, fs.ErrNotExist) {
			return nil
		}
	}
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i].path, dirs[i].mode); err != nil {
			return err
		}
	}
	return nil
}

func copyRegular(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, perm)
}

package gitrepo

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
)

// ExportTree writes the tree of commit sha into dir, removing whatever was
// there first: the checkout a build runs in. Only regular files are written
// (as 0644, like TreeFS reads them): symlinks from a PR could point anywhere
// on the build host, and submodules are not part of a set.
func ExportTree(ctx context.Context, gitDir, sha, dir string) error {
	fsys, err := TreeFS(ctx, gitDir, sha)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
}

package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/artifact"
)

// StoreSource serves artifacts from an artifact.Store.
type StoreSource struct {
	Store *artifact.Store
}

// ApplyDigest applies the stored artifact digest onto dir; artifact.Apply
// re-hashes the stored files first, so a corrupted artifact is never
// published under the digest that was tested.
func (s StoreSource) ApplyDigest(ctx context.Context, digest, dir string) error {
	if s.Store == nil {
		return errors.New("no artifact store configured")
	}
	art, err := s.Store.Get(digest)
	if err != nil {
		return err
	}
	if art.Digest != digest {
		return fmt.Errorf("artifact store returned %s for %s", art.Digest, digest)
	}
	return artifact.Apply(ctx, art, dir)
}

// ContentVerifier checks that a published target tree holds exactly what
// its last artifact says: every file with its size and sha256, every
// symlink with its target, every directory, and none of the deleted
// paths. It reads the digest from the tree's .compatbot/artifact. It is
// the minimum any deploy must pass; the compat-layer tests add to it.
type ContentVerifier struct {
	Store *artifact.Store
}

// Verify implements Verifier.
func (v ContentVerifier) Verify(ctx context.Context, env string, target sets.Target, dir string) (bool, string, error) {
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(ArtifactFile)))
	if err != nil {
		return false, "", fmt.Errorf("read the artifact marker: %w", err)
	}
	digest := strings.TrimSpace(string(b))
	art, err := v.Store.Get(digest)
	if err != nil {
		return false, "", err
	}
	var bad []string
	var files, links, dirs, gone int
	for _, e := range art.Manifest.Entries {
		if err := ctx.Err(); err != nil {
			return false, "", err
		}
		p := filepath.Join(dir, filepath.FromSlash(e.Path))
		fi, err := os.Lstat(p)
		if e.Type == artifact.Whiteout {
			gone++
			if err == nil {
				bad = append(bad, e.Path+": deleted by the artifact but present")
			} else if !errors.Is(err, fs.ErrNotExist) {
				bad = append(bad, e.Path+": "+err.Error())
			}
			continue
		}
		if err != nil {
			bad = append(bad, e.Path+": missing")
			continue
		}
		switch e.Type {
		case artifact.File:
			files++
			if !fi.Mode().IsRegular() {
				bad = append(bad, e.Path+": not a regular file")
			} else if fi.Size() != e.Size {
				bad = append(bad, fmt.Sprintf("%s: size %d, want %d", e.Path, fi.Size(), e.Size))
			} else if sum, err := artifact.FileSHA256(p); err != nil {
				bad = append(bad, e.Path+": "+err.Error())
			} else if sum != e.SHA256 {
				bad = append(bad, e.Path+": content differs from the artifact")
			}
		case artifact.Symlink:
			links++
			if t, err := os.Readlink(p); err != nil || t != e.Target {
				bad = append(bad, fmt.Sprintf("%s: symlink to %q, want %q", e.Path, t, e.Target))
			}
		case artifact.Dir, artifact.Opaque:
			dirs++
			if !fi.IsDir() {
				bad = append(bad, e.Path+": not a directory")
			}
		}
	}
	if len(bad) > 0 {
		n, more := len(bad), ""
		if n > 5 {
			more = fmt.Sprintf(" (and %d more)", len(bad)-5)
			bad = bad[:5]
		}
		return false, fmt.Sprintf("%d problems in the published tree: %s%s", n, strings.Join(bad, "; "), more), nil
	}
	return true, fmt.Sprintf("published tree matches artifact %s: %d files, %d symlinks, %d directories, %d deletions", short(digest, 12), files, links, dirs, gone), nil
}

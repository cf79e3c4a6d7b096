package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Import takes the artifact digest from src, a store a build elsewhere
// wrote (a cluster node, on storage shared with the service), into s. The
// files are copied into s's tmp directory and verified there, the digest
// over the copied tarball and manifest and every file against the
// manifest, before the copy is renamed into place: an artifact altered or
// damaged on the shared storage never enters s. One already in s is kept
// (its meta.json is replaced by src's).
func (s *Store) Import(ctx context.Context, src *Store, digest string) (Artifact, error) {
	if s.Dir == "" || !filepath.IsAbs(s.Dir) {
		return Artifact{}, fmt.Errorf("artifact: Store.Dir %q must be an absolute path", s.Dir)
	}
	from, err := src.Get(digest)
	if err != nil {
		return Artifact{}, err
	}
	h, _ := ParseDigest(digest) // Get checked it
	if have, err := s.Get(digest); err == nil {
		if err := s.writeMeta(have.Path, from.Meta); err != nil {
			return Artifact{}, err
		}
		have.Meta = from.Meta
		return have, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Artifact{}, err
	}
	tmpRoot := filepath.Join(s.Dir, "tmp")
	if err := os.MkdirAll(tmpRoot, 0o755); err != nil {
		return Artifact{}, fmt.Errorf("artifact: store: %w", err)
	}
	tmp, err := os.MkdirTemp(tmpRoot, "import-")
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact: store: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, name := range []string{TarName, ManifestName} {
		if err := copyInto(ctx, filepath.Join(from.Path, name), filepath.Join(tmp, name)); err != nil {
			return Artifact{}, fmt.Errorf("artifact: import %s: %w", digest, err)
		}
	}
	art := Artifact{Digest: digest, Size: from.Size, Manifest: from.Manifest, Path: tmp, Meta: from.Meta}
	if err := verifyDigest(art); err != nil {
		return Artifact{}, err
	}
	if err := walkTar(ctx, art, checkContent); err != nil {
		return Artifact{}, err
	}
	art.Path = filepath.Join(s.Dir, "sha256", h)
	if err := os.MkdirAll(filepath.Dir(art.Path), 0o755); err != nil {
		return Artifact{}, fmt.Errorf("artifact: store: %w", err)
	}
	if err := os.Rename(tmp, art.Path); err != nil {
		if _, serr := os.Stat(filepath.Join(art.Path, ManifestName)); serr != nil {
			return Artifact{}, fmt.Errorf("artifact: store %s: %w", digest, err)
		}
		// Stored meanwhile by another import of the same content.
	}
	if err := s.writeMeta(art.Path, art.Meta); err != nil {
		return Artifact{}, err
	}
	return art, nil
}

// copyInto copies the file src to the new file dst and syncs it.
func copyInto(ctx context.Context, src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	if _, err := io.Copy(out, ctxReader{ctx, in}); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	return out.Close()
}

// ctxReader stops a long copy when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

package deploy

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/publish"
)

// RemoteArtifactSource is an ArtifactSource that can also hand out the
// stored artifact, for a transaction on another host (StoreSource is one).
type RemoteArtifactSource interface {
	ArtifactSource
	Artifact(digest string) (artifact.Artifact, error)
}

// Artifact returns the stored artifact of exactly digest.
func (s StoreSource) Artifact(digest string) (artifact.Artifact, error) {
	if s.Store == nil {
		return artifact.Artifact{}, errors.New("no artifact store configured")
	}
	art, err := s.Store.Get(digest)
	if err != nil {
		return art, err
	}
	if art.Digest != digest {
		return art, fmt.Errorf("artifact store returned %s for %s", art.Digest, digest)
	}
	return art, nil
}

// applyRemote does what the local steps of runItem do (rebase, apply the
// artifact, write the markers) on a transaction whose tree is on the
// publisher host: the rebase tree and the artifact's tarball are streamed
// there, after the deletions its manifest lists.
func (d *Engine) applyRemote(ctx context.Context, tx publish.RemoteTx, rebaseFrom, digest, lineage string) error {
	src, ok := d.artifacts.(RemoteArtifactSource)
	if !ok {
		return fmt.Errorf("the artifact source cannot send artifacts to a remote publisher (%T)", d.artifacts)
	}
	if rebaseFrom != "" {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(publish.TarDir(pw, rebaseFrom)) }()
		err := tx.Unpack(ctx, pr, nil, []string{"."})
		pr.CloseWithError(err)
		if err != nil {
			return fmt.Errorf("rebase: %w", err)
		}
	}
	art, err := src.Artifact(digest)
	if err != nil {
		return err
	}
	// The digest is checked here, before anything is sent: what was
	// tested is what reaches the publisher (ssh protects the transfer).
	if err := art.Verify(); err != nil {
		return err
	}
	f, err := os.Open(art.TarPath())
	if err != nil {
		return err
	}
	defer f.Close()
	// Files and symlinks are removed before the tarball replaces them, so a
	// file that replaces a directory (or the reverse) lands as it does
	// with artifact.Apply.
	remove := art.Manifest.Deleted()
	for _, e := range art.Manifest.Entries {
		if e.Type == artifact.File || e.Type == artifact.Symlink {
			remove = append(remove, e.Path)
		}
	}
	if err := tx.Unpack(ctx, f, remove, art.Manifest.OpaqueDirs()); err != nil {
		return fmt.Errorf("apply %s: %w", digest, err)
	}
	var markers bytes.Buffer
	tw := tar.NewWriter(&markers)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: ".compatbot/", Mode: 0o755})
	for name, body := range map[string]string{LineageFile: lineage + "\n", ArtifactFile: digest + "\n"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	tw.Close()
	if err := tx.Unpack(ctx, &markers, nil, nil); err != nil {
		return fmt.Errorf("write lineage: %w", err)
	}
	return nil
}

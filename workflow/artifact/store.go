package artifact

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names inside an artifact directory.
const (
	TarName      = "artifact.tar"
	ManifestName = "manifest.json"
	MetaName     = "meta.json"
)

// ErrNotFound is wrapped when a digest is not in the store.
var ErrNotFound = errors.New("artifact not found")

// Store is a content-addressed artifact store on a local directory:
// Dir/sha256/<hex>/{artifact.tar, manifest.json, meta.json}. Artifacts are
// written to Dir/tmp and renamed into place, so a reader never sees half an
// artifact and a crash leaves only garbage in Dir/tmp.
type Store struct {
	Dir string
}

// Artifact is a stored artifact.
type Artifact struct {
	// Digest is "sha256:<hex>" of artifact.tar followed by manifest.json.
	Digest string
	// Size is the size of artifact.tar in bytes.
	Size     int64
	Manifest Manifest
	// Path is the artifact's directory in the store.
	Path string
	// Meta is free-form provenance (PR, head SHA, base revision, ...). It
	// is not part of the digest; the latest Put of the same content wins.
	Meta map[string]string
}

// TarPath is the tarball's path.
func (a Artifact) TarPath() string { return filepath.Join(a.Path, TarName) }

// ManifestPath is the manifest's path.
func (a Artifact) ManifestPath() string { return filepath.Join(a.Path, ManifestName) }

// Put packs upperDir (an unmounted overlay upper layer) into the store and
// returns the artifact. Putting the same content again returns the same
// digest and leaves the stored files as they are (meta.json is replaced).
func (s *Store) Put(ctx context.Context, upperDir string, meta map[string]string) (Artifact, error) {
	if s.Dir == "" || !filepath.IsAbs(s.Dir) {
		return Artifact{}, fmt.Errorf("artifact: Store.Dir %q must be an absolute path", s.Dir)
	}
	upperDir = filepath.Clean(upperDir)
	ents, err := scan(ctx, upperDir)
	if err != nil {
		return Artifact{}, err
	}
	tmpRoot := filepath.Join(s.Dir, "tmp")
	if err := os.MkdirAll(tmpRoot, 0o755); err != nil {
		return Artifact{}, fmt.Errorf("artifact: store: %w", err)
	}
	tmp, err := os.MkdirTemp(tmpRoot, "put-")
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact: store: %w", err)
	}
	defer os.RemoveAll(tmp)

	digest := sha256.New()
	man, size, err := writeTar(ctx, filepath.Join(tmp, TarName), ents, digest)
	if err != nil {
		return Artifact{}, err
	}
	mj, err := encodeManifest(man)
	if err != nil {
		return Artifact{}, err
	}
	digest.Write(mj)
	if err := writeFileSync(filepath.Join(tmp, ManifestName), mj); err != nil {
		return Artifact{}, err
	}
	hexd := hex.EncodeToString(digest.Sum(nil))
	if meta == nil {
		meta = map[string]string{}
	}
	art := Artifact{
		Digest:   "sha256:" + hexd,
		Size:     size,
		Manifest: man,
		Path:     filepath.Join(s.Dir, "sha256", hexd),
		Meta:     meta,
	}
	if err := os.MkdirAll(filepath.Dir(art.Path), 0o755); err != nil {
		return Artifact{}, fmt.Errorf("artifact: store: %w", err)
	}
	if err := os.Rename(tmp, art.Path); err != nil {
		if _, serr := os.Stat(filepath.Join(art.Path, ManifestName)); serr != nil {
			return Artifact{}, fmt.Errorf("artifact: store %s: %w", art.Digest, err)
		}
		// Already stored (same content): keep it.
	}
	if err := s.writeMeta(art.Path, meta); err != nil {
		return Artifact{}, err
	}
	return art, nil
}

func (s *Store) writeMeta(dir string, meta map[string]string) error {
	b, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".meta-*")
	if err != nil {
		return fmt.Errorf("artifact: meta: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("artifact: meta: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("artifact: meta: %w", err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, MetaName))
}

func encodeManifest(m Manifest) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", " ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("artifact: manifest: %w", err)
	}
	return buf.Bytes(), nil
}

func writeFileSync(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("artifact: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("artifact: write %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("artifact: sync %s: %w", p, err)
	}
	return f.Close()
}

// epoch is the mtime of directories in the tarball: theirs change with
// every entry added, so they would only make digests differ.
var epoch = time.Unix(0, 0)

// writeTar writes the tarball and hashes each file while copying it, so the
// upper layer is read once.
func writeTar(ctx context.Context, dst string, ents []scanned, digest hash.Hash) (Manifest, int64, error) {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return Manifest{}, 0, fmt.Errorf("artifact: %w", err)
	}
	defer f.Close()
	cw := &countWriter{w: io.MultiWriter(f, digest)}
	bw := bufio.NewWriterSize(cw, 256<<10)
	tw := tar.NewWriter(bw)
	man := Manifest{Version: ManifestVersion, Entries: make([]Entry, 0, len(ents))}
	buf := make([]byte, 128<<10)
	for i, e := range ents {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return Manifest{}, 0, err
			}
		}
		hdr := header(e.Entry)
		if hdr != nil {
			if err := tw.WriteHeader(hdr); err != nil {
				return Manifest{}, 0, fmt.Errorf("artifact: tar %s: %w", e.Path, err)
			}
		}
		if e.Type == File {
			sum, err := copyFile(tw, e.abs, e.Size, buf)
			if err != nil {
				return Manifest{}, 0, err
			}
			e.SHA256 = sum
		}
		man.Entries = append(man.Entries, e.Entry)
	}
	if err := tw.Close(); err != nil {
		return Manifest{}, 0, fmt.Errorf("artifact: tar: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return Manifest{}, 0, fmt.Errorf("artifact: write %s: %w", dst, err)
	}
	if err := f.Sync(); err != nil {
		return Manifest{}, 0, fmt.Errorf("artifact: sync %s: %w", dst, err)
	}
	return man, cw.n, f.Close()
}

// header is the tar header of an entry; nil for deletions, which live in
// the manifest only.
func header(e Entry) *tar.Header {
	h := &tar.Header{Name: e.Path, Mode: int64(e.Mode), ModTime: epoch, Format: tar.FormatPAX}
	switch e.Type {
	case File:
		h.Typeflag, h.Size, h.ModTime = tar.TypeReg, e.Size, time.Unix(e.MTime, 0)
	case Dir, Opaque:
		h.Typeflag, h.Name = tar.TypeDir, e.Path+"/"
	case Symlink:
		h.Typeflag, h.Linkname, h.Mode, h.ModTime = tar.TypeSymlink, e.Target, 0o777, time.Unix(e.MTime, 0)
	default:
		return nil
	}
	return h
}

func copyFile(w io.Writer, p string, size int64, buf []byte) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("artifact: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(w, h), io.LimitReader(f, size+1), buf)
	if err != nil {
		if errors.Is(err, tar.ErrWriteTooLong) {
			return "", fmt.Errorf("artifact: %s grew while packing it: is the overlay still in use?", p)
		}
		return "", fmt.Errorf("artifact: pack %s: %w", p, err)
	}
	if n != size {
		return "", fmt.Errorf("artifact: %s changed size while packing it (%d, then %d bytes): is the overlay still in use?", p, size, n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ParseDigest checks a "sha256:<64 hex>" digest and returns the hex part.
func ParseDigest(digest string) (string, error) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("artifact: digest %q: want \"sha256:\" and 64 lower-case hex digits", digest)
	}
	return h, nil
}

// Get returns the stored artifact with this digest (its manifest read and
// validated; the tarball is not re-hashed: use Verify for that).
func (s *Store) Get(digest string) (Artifact, error) {
	h, err := ParseDigest(digest)
	if err != nil {
		return Artifact{}, err
	}
	dir := filepath.Join(s.Dir, "sha256", h)
	mj, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if errors.Is(err, os.ErrNotExist) {
		return Artifact{}, fmt.Errorf("artifact: %s in %s: %w", digest, s.Dir, ErrNotFound)
	}
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact: %s: %w", digest, err)
	}
	man, err := decodeManifest(mj)
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact: %s: %s: %w", digest, ManifestName, err)
	}
	fi, err := os.Stat(filepath.Join(dir, TarName))
	if err != nil {
		return Artifact{}, fmt.Errorf("artifact: %s: %w", digest, err)
	}
	meta := map[string]string{}
	if b, err := os.ReadFile(filepath.Join(dir, MetaName)); err == nil {
		if err := json.Unmarshal(b, &meta); err != nil {
			return Artifact{}, fmt.Errorf("artifact: %s: %s: %w", digest, MetaName, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return Artifact{}, fmt.Errorf("artifact: %s: %w", digest, err)
	}
	return Artifact{Digest: digest, Size: fi.Size(), Manifest: man, Path: dir, Meta: meta}, nil
}

func decodeManifest(b []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(b, se.Offset)
			return Manifest{}, fmt.Errorf("line %d, column %d: %w", line, col, err)
		}
		return Manifest{}, err
	}
	return m, m.Validate()
}

func lineCol(b []byte, off int64) (int, int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	pre := b[:off]
	line := bytes.Count(pre, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(pre, '\n')
	return line, col
}

// Verify re-hashes the stored tarball and manifest against the digest and
// checks that the tarball holds exactly the manifest's entries with their
// sizes, modes and hashes.
func (s *Store) Verify(digest string) error {
	art, err := s.Get(digest)
	if err != nil {
		return err
	}
	if err := verifyDigest(art); err != nil {
		return err
	}
	return walkTar(context.Background(), art, func(e Entry, r io.Reader) error {
		return checkContent(e, r)
	})
}

func verifyDigest(art Artifact) error {
	want, err := ParseDigest(art.Digest)
	if err != nil {
		return err
	}
	h := sha256.New()
	for _, name := range []string{TarName, ManifestName} {
		f, err := os.Open(filepath.Join(art.Path, name))
		if err != nil {
			return fmt.Errorf("artifact: verify %s: %w", art.Digest, err)
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("artifact: verify %s: %w", art.Digest, err)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("artifact: verify %s: stored files hash to sha256:%s: the artifact is corrupt", art.Digest, got)
	}
	return nil
}

func checkContent(e Entry, r io.Reader) error {
	if e.Type != File {
		return nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return fmt.Errorf("artifact: read %s: %w", e.Path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 {
		return fmt.Errorf("artifact: %s: content sha256 %s, manifest says %s", e.Path, got, e.SHA256)
	}
	return nil
}

// walkTar reads the tarball in step with the manifest: each non-deletion
// entry must be the next tar header, with the same type, mode and size.
// fn gets the entry and, for files, the content.
func walkTar(ctx context.Context, art Artifact, fn func(Entry, io.Reader) error) error {
	f, err := os.Open(art.TarPath())
	if err != nil {
		return fmt.Errorf("artifact: %s: %w", art.Digest, err)
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReaderSize(f, 256<<10))
	for i, e := range art.Manifest.Entries {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		want := header(e)
		if want == nil {
			continue
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("artifact: %s: tarball ends before manifest entry %q", art.Digest, e.Path)
		}
		if err != nil {
			return fmt.Errorf("artifact: %s: tarball: %w", art.Digest, err)
		}
		if hdr.Name != want.Name || hdr.Typeflag != want.Typeflag || hdr.Size != want.Size ||
			hdr.Linkname != want.Linkname || hdr.Mode != want.Mode || hdr.ModTime.Unix() != want.ModTime.Unix() {
			return fmt.Errorf("artifact: %s: tarball entry %q (type %c, mode %o, size %d, mtime %d) does not match manifest entry %q (%s, mode %o, size %d, mtime %d)",
				art.Digest, hdr.Name, hdr.Typeflag, hdr.Mode, hdr.Size, hdr.ModTime.Unix(), e.Path, e.Type, want.Mode, want.Size, want.ModTime.Unix())
		}
		if err := fn(e, tr); err != nil {
			return err
		}
	}
	if hdr, err := tr.Next(); err != io.EOF {
		if err != nil {
			return fmt.Errorf("artifact: %s: tarball: %w", art.Digest, err)
		}
		return fmt.Errorf("artifact: %s: tarball has entry %q not in the manifest", art.Digest, hdr.Name)
	}
	return nil
}

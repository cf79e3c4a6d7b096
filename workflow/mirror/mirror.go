// Package mirror keeps the sources (distfiles) of every tested build in a
// content-addressed store, so a production rebuild fetches from the mirror
// only and never depends on upstream still serving the same bytes.
//
// Layout under Dir:
//
//	blobs/sha512/<hex>   file content, named by its SHA512
//	files/<name>         one Gentoo Manifest DIST line for the distfile name
//	Manifest             every DIST line, sorted by name
//
// Checksums are Gentoo Manifest's: BLAKE2B (512-bit) and SHA512, and both
// are verified when a file is taken out of the mirror.
package mirror

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/compatbot/compatbot/internal/atomicfile"
	"golang.org/x/crypto/blake2b"
)

// Entry is one distfile with its Manifest checksums (lowercase hex).
type Entry struct {
	Name    string
	Size    int64
	BLAKE2B string
	SHA512  string
}

// DistLine is e as a Gentoo Manifest line (without newline).
func (e Entry) DistLine() string {
	return fmt.Sprintf("DIST %s %d BLAKE2B %s SHA512 %s", e.Name, e.Size, e.BLAKE2B, e.SHA512)
}

// Mirror is a distfiles mirror rooted at Dir.
type Mirror struct {
	Dir string
	mu  sync.Mutex // serialises index updates within one process
}

// ValidName checks a distfile name: a plain file name, as Portage requires.
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("distfile name is empty")
	case strings.ContainsAny(name, "/\x00\n\r\t "):
		return fmt.Errorf("distfile name %q: must be a plain file name without '/', whitespace or NUL", name)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("distfile name %q: must not start with '.'", name)
	}
	return nil
}

// skipped reports DISTDIR entries that are not finished distfiles:
// Portage's lock dir and VCS caches (directories), hidden files, partial
// downloads and files Portage set aside after a checksum failure.
func skipped(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".__download__") || strings.Contains(name, "._checksum_failure_.")
}

func newHashes() (hash.Hash, hash.Hash) {
	b, _ := blake2b.New512(nil)
	return b, sha512.New()
}

func (m *Mirror) blobPath(sha string) string { return filepath.Join(m.Dir, "blobs", "sha512", sha) }
func (m *Mirror) indexPath(name string) string {
	return filepath.Join(m.Dir, "files", name)
}

// Add copies every distfile of srcDir (a build's DISTDIR) into the mirror
// and returns their entries sorted by name. Content already present is
// stored once. A name already mirrored with different content is an error:
// older builds' Manifests name the old bytes, so they are never replaced.
func (m *Mirror) Add(ctx context.Context, srcDir string) ([]Entry, error) {
	ents, err := os.ReadDir(srcDir)
	if err != nil {
		return nil, fmt.Errorf("mirror: read DISTDIR: %w", err)
	}
	for _, d := range []string{filepath.Join(m.Dir, "blobs", "sha512"), filepath.Join(m.Dir, "files")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("mirror: %w", err)
		}
	}
	var out []Entry
	for _, de := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := de.Name()
		if skipped(name) {
			continue
		}
		src := filepath.Join(srcDir, name)
		fi, err := os.Stat(src) // follows symlinks: Portage may link distfiles
		if err != nil {
			return nil, fmt.Errorf("mirror: %s: %w", src, err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		if err := ValidName(name); err != nil {
			return nil, fmt.Errorf("mirror: %s: %w", src, err)
		}
		e, err := m.addFile(src, name)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := m.writeManifest(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (m *Mirror) addFile(src, name string) (Entry, error) {
	in, err := os.Open(src)
	if err != nil {
		return Entry{}, fmt.Errorf("mirror: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Join(m.Dir, "blobs"), ".incoming*")
	if err != nil {
		return Entry{}, fmt.Errorf("mirror: %w", err)
	}
	defer os.Remove(tmp.Name())
	b2, s5 := newHashes()
	n, err := io.Copy(io.MultiWriter(tmp, b2, s5), in)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Entry{}, fmt.Errorf("mirror: copy %s: %w", src, err)
	}
	e := Entry{Name: name, Size: n, BLAKE2B: hex.EncodeToString(b2.Sum(nil)), SHA512: hex.EncodeToString(s5.Sum(nil))}

	m.mu.Lock()
	defer m.mu.Unlock()
	if old, err := m.Lookup(name); err == nil {
		if old != e {
			return Entry{}, fmt.Errorf("mirror: distfile %s is already mirrored with different content (size %d, SHA512 %s…; new: size %d, SHA512 %s…); distfile names must not be reused", name, old.Size, old.SHA512[:16], e.Size, e.SHA512[:16])
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Entry{}, err
	}
	if _, err := os.Stat(m.blobPath(e.SHA512)); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp.Name(), m.blobPath(e.SHA512)); err != nil {
			return Entry{}, fmt.Errorf("mirror: %w", err)
		}
		if err := atomicfile.SyncDir(filepath.Dir(m.blobPath(e.SHA512))); err != nil {
			return Entry{}, err
		}
	}
	if err := atomicfile.WriteFile(m.indexPath(name), []byte(e.DistLine()+"\n"), 0o644); err != nil {
		return Entry{}, fmt.Errorf("mirror: index %s: %w", name, err)
	}
	return e, nil
}

// Lookup returns the mirrored entry for a distfile name (fs.ErrNotExist
// if it was never mirrored).
func (m *Mirror) Lookup(name string) (Entry, error) {
	if err := ValidName(name); err != nil {
		return Entry{}, err
	}
	p := m.indexPath(name)
	data, err := os.ReadFile(p)
	if err != nil {
		return Entry{}, err
	}
	es, err := ParseManifest(p, data)
	if err != nil {
		return Entry{}, err
	}
	if len(es) != 1 || es[0].Name != name {
		return Entry{}, fmt.Errorf("%s: want one DIST line for %s", p, name)
	}
	return es[0], nil
}

// Resolve looks up names in the mirror's index.
func (m *Mirror) Resolve(names []string) ([]Entry, error) {
	var out []Entry
	for _, n := range names {
		e, err := m.Lookup(n)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("distfile %s: not in the mirror %s", n, m.Dir)
		}
		if err != nil {
			return nil, fmt.Errorf("distfile %s: %w", n, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func (m *Mirror) writeManifest() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ents, err := os.ReadDir(filepath.Join(m.Dir, "files"))
	if err != nil {
		return err
	}
	var b bytes.Buffer
	for _, de := range ents {
		if strings.HasPrefix(de.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(m.Dir, "files", de.Name()))
		if err != nil {
			return err
		}
		b.Write(data)
	}
	return atomicfile.WriteFile(filepath.Join(m.Dir, "Manifest"), b.Bytes(), 0o644)
}

// Materialize populates dstDir (a DISTDIR for a rebuild) with entries,
// from the mirror only. Each file is copied (a build cannot alter the
// mirror through it) and verified against the entry's size, BLAKE2B and
// SHA512 while copying; a missing or mismatching file fails with its name
// and leaves nothing under that name in dstDir.
func (m *Mirror) Materialize(ctx context.Context, entries []Entry, dstDir string) error {
	if err := os.MkdirAll(dstDir, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m.materialize(e, dstDir); err != nil {
			return err
		}
	}
	return nil
}

func (m *Mirror) materialize(e Entry, dstDir string) error {
	if err := ValidName(e.Name); err != nil {
		return err
	}
	if len(e.SHA512) != 128 || len(e.BLAKE2B) != 128 {
		return fmt.Errorf("distfile %s: entry needs both BLAKE2B and SHA512 (512-bit hex) checksums", e.Name)
	}
	if _, err := hex.DecodeString(e.SHA512); err != nil {
		return fmt.Errorf("distfile %s: SHA512 %q is not hex", e.Name, e.SHA512)
	}
	blob := m.blobPath(strings.ToLower(e.SHA512))
	in, err := os.Open(blob)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("distfile %s: not in the mirror (no blob %s)", e.Name, blob)
	}
	if err != nil {
		return fmt.Errorf("distfile %s: %w", e.Name, err)
	}
	defer in.Close()
	out, err := os.CreateTemp(dstDir, "."+e.Name+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	b2, s5 := newHashes()
	n, err := io.Copy(io.MultiWriter(out, b2, s5), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("distfile %s: copy from %s: %w", e.Name, blob, err)
	}
	got := Entry{Name: e.Name, Size: n, BLAKE2B: hex.EncodeToString(b2.Sum(nil)), SHA512: hex.EncodeToString(s5.Sum(nil))}
	var bad []string
	if got.Size != e.Size {
		bad = append(bad, fmt.Sprintf("size %d, want %d", got.Size, e.Size))
	}
	if got.BLAKE2B != strings.ToLower(e.BLAKE2B) {
		bad = append(bad, fmt.Sprintf("BLAKE2B %s…, want %s…", got.BLAKE2B[:16], e.BLAKE2B[:16]))
	}
	if got.SHA512 != strings.ToLower(e.SHA512) {
		bad = append(bad, fmt.Sprintf("SHA512 %s…, want %s…", got.SHA512[:16], e.SHA512[:16]))
	}
	if len(bad) > 0 {
		return fmt.Errorf("distfile %s: mirror copy %s does not match: %s", e.Name, blob, strings.Join(bad, "; "))
	}
	if err := os.Chmod(out.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(out.Name(), filepath.Join(dstDir, e.Name))
}

// ManifestError points at a bad line of a Manifest.
type ManifestError struct {
	Path string
	Line int
	Msg  string
}

func (e *ManifestError) Error() string { return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg) }

// ParseManifest reads the DIST lines of a Gentoo Manifest (other line
// types are ignored). path only labels errors.
func ParseManifest(path string, data []byte) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "DIST" {
			continue
		}
		if len(f) < 3 || len(f)%2 != 1 {
			return nil, &ManifestError{path, n, "want DIST <name> <size> followed by <HASH> <hex> pairs"}
		}
		e := Entry{Name: f[1]}
		if err := ValidName(e.Name); err != nil {
			return nil, &ManifestError{path, n, err.Error()}
		}
		size, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || size < 0 {
			return nil, &ManifestError{path, n, fmt.Sprintf("size %q is not a non-negative number", f[2])}
		}
		e.Size = size
		for i := 3; i < len(f); i += 2 {
			v := strings.ToLower(f[i+1])
			if _, err := hex.DecodeString(v); err != nil {
				return nil, &ManifestError{path, n, fmt.Sprintf("%s checksum %q is not hex", f[i], f[i+1])}
			}
			switch f[i] {
			case "BLAKE2B":
				e.BLAKE2B = v
			case "SHA512":
				e.SHA512 = v
			}
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// FormatManifest writes entries as Manifest DIST lines sorted by name.
func FormatManifest(entries []Entry) []byte {
	es := append([]Entry(nil), entries...)
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
	var b bytes.Buffer
	for _, e := range es {
		b.WriteString(e.DistLine())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Package artifact turns the upper layer of a build overlay into a
// content-addressed artifact: a manifest (every path with type, mode, size,
// sha256 or symlink target; deletions and opaque directories listed
// explicitly) plus a deterministic tarball, stored under a digest that the
// deploy step later publishes with Apply.
//
// Format choice: the tarball holds only regular files, directories and
// symlinks, in manifest order, with uid/gid 0 and no user/group names; the
// mode (permission, setuid, setgid, sticky bits) is kept, and so are the
// mtimes of files and symlinks in whole seconds (Portage checks them, see
// Entry.MTime); directories get mtime 0.
// Deletions are NOT in the tarball (no 0/0 character devices, no OCI ".wh."
// files): they are manifest entries of type "whiteout", and directories that
// replace the published one are type "opaque". That keeps the tarball
// portable (unpackable without root or mknod) and puts every deletion where
// a reviewer reads it.
//
// The digest is "sha256:" + hex(sha256(artifact.tar bytes || manifest.json
// bytes)). The same upper tree always gives the same digest: entries are
// sorted, and no owner, inode, directory time or sub-second time is
// recorded. Two builds of the same change get the same digest only if
// their files' mtimes agree.
package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Type is the kind of a manifest entry.
type Type string

const (
	File     Type = "file"
	Dir      Type = "dir"
	Symlink  Type = "symlink"
	Whiteout Type = "whiteout" // the path is deleted from the layer below
	Opaque   Type = "opaque"   // a directory whose lower contents are all hidden: cleared, then filled from the artifact
)

// ManifestVersion is the current manifest format.
const ManifestVersion = 1

// Mode is a permission mode (0o7777 bits: rwx plus setuid, setgid,
// sticky); in JSON an octal string such as "0755".
type Mode uint32

func (m Mode) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("%04o", uint32(m))), nil }

func (m *Mode) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 8, 32)
	if err != nil || v&^0o7777 != 0 {
		return fmt.Errorf("mode %q: want an octal permission such as \"0755\"", b)
	}
	*m = Mode(v)
	return nil
}

// FileMode converts to an fs.FileMode (permission and special bits).
func (m Mode) FileMode() fs.FileMode {
	fm := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		fm |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}

func modeOf(fm fs.FileMode) Mode {
	m := Mode(fm.Perm())
	if fm&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if fm&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fm&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// Entry is one path of the upper layer.
type Entry struct {
	// Path is slash-separated and relative to the layer root ("usr/bin/x").
	Path   string `json:"path"`
	Type   Type   `json:"type"`
	Mode   Mode   `json:"mode,omitempty"`   // file, dir, opaque
	Size   int64  `json:"size,omitempty"`   // file
	SHA256 string `json:"sha256,omitempty"` // file, hex
	Target string `json:"target,omitempty"` // symlink
	// MTime is the modification time in Unix seconds (file, symlink).
	// Portage records it in var/db/pkg/*/*/CONTENTS and, when a later
	// build upgrades or removes the package, leaves alone every file whose
	// mtime no longer matches ("!mtime"): so it is published as built.
	MTime int64 `json:"mtime,omitempty"`
}

// IsDir reports whether the entry is a directory (plain or opaque).
func (e Entry) IsDir() bool { return e.Type == Dir || e.Type == Opaque }

// Manifest lists every path of an upper layer, sorted by Path.
type Manifest struct {
	Version int     `json:"version"`
	Entries []Entry `json:"entries"`
}

// Deleted lists the whiteout paths: what the artifact removes.
func (m Manifest) Deleted() []string { return m.paths(Whiteout) }

// OpaqueDirs lists the directories whose published contents the artifact
// replaces entirely.
func (m Manifest) OpaqueDirs() []string { return m.paths(Opaque) }

func (m Manifest) paths(t Type) []string {
	var out []string
	for _, e := range m.Entries {
		if e.Type == t {
			out = append(out, e.Path)
		}
	}
	return out
}

// ContentSize is the sum of the file sizes.
func (m Manifest) ContentSize() int64 {
	var n int64
	for _, e := range m.Entries {
		n += e.Size
	}
	return n
}

// Validate checks what a manifest read from disk must satisfy before Apply
// trusts its paths: version, clean relative paths, sorted and unique,
// known types with their fields.
func (m Manifest) Validate() error {
	if m.Version != ManifestVersion {
		return fmt.Errorf("manifest: version %d, want %d", m.Version, ManifestVersion)
	}
	for i, e := range m.Entries {
		where := fmt.Sprintf("manifest: entries[%d] (path %q)", i, e.Path)
		if err := checkRel(e.Path); err != nil {
			return fmt.Errorf("%s: %v", where, err)
		}
		if i > 0 && m.Entries[i-1].Path >= e.Path {
			return fmt.Errorf("%s: not sorted after %q, or duplicate", where, m.Entries[i-1].Path)
		}
		switch e.Type {
		case File:
			if len(e.SHA256) != 64 || strings.Trim(e.SHA256, "0123456789abcdef") != "" {
				return fmt.Errorf("%s: sha256 %q is not 64 lower-case hex digits", where, e.SHA256)
			}
			if e.Size < 0 {
				return fmt.Errorf("%s: negative size", where)
			}
		case Symlink:
			if e.Target == "" {
				return fmt.Errorf("%s: symlink without target", where)
			}
		case Dir, Opaque, Whiteout:
		default:
			return fmt.Errorf("%s: unknown type %q (want file, dir, symlink, whiteout or opaque)", where, e.Type)
		}
	}
	return nil
}

func checkRel(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case strings.HasPrefix(p, "/"):
		return errors.New("absolute path")
	case path.Clean(p) != p:
		return errors.New("path is not clean")
	case p == ".." || strings.HasPrefix(p, "../"):
		return errors.New("path escapes the tree")
	case strings.ContainsRune(p, 0):
		return errors.New("path contains NUL")
	}
	return nil
}

const (
	whPrefix = ".wh."
	whOpaque = ".wh..wh..opq"
	whMeta   = ".wh..wh."
)

// Xattr names overlayfs (trusted.*, as root), unprivileged overlayfs
// (user.*, userxattr) and fuse-overlayfs use.
var (
	opaqueXattrs   = []string{"trusted.overlay.opaque", "user.overlay.opaque", "user.fuseoverlayfs.opaque"}
	redirectXattrs = []string{"trusted.overlay.redirect", "user.overlay.redirect"}
	metacopyXattrs = []string{"trusted.overlay.metacopy", "user.overlay.metacopy"}
)

// scanned is an entry plus where it is on disk.
type scanned struct {
	Entry
	abs string
}

// scan walks an upper directory and returns its entries, sorted, without
// file hashes.
func scan(ctx context.Context, upper string) ([]scanned, error) {
	fi, err := os.Stat(upper)
	if err != nil {
		return nil, fmt.Errorf("artifact: upper layer: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("artifact: upper layer %s: not a directory", upper)
	}
	var out []scanned
	opaque := map[string]bool{} // from .wh..wh..opq files
	n := 0
	err = filepath.WalkDir(upper, func(abs string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if abs == upper {
			return nil
		}
		rel := filepath.ToSlash(abs[len(upper)+1:])
		fail := func(format string, a ...any) error {
			return fmt.Errorf("artifact: upper layer %s: %s: %s", upper, rel, fmt.Sprintf(format, a...))
		}
		if !utf8.ValidString(rel) {
			return fail("file name is not valid UTF-8")
		}
		name := d.Name()
		if name == whOpaque {
			opaque[path.Dir(rel)] = true
			return nil
		}
		if strings.HasPrefix(name, whMeta) {
			// Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs).
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(name, whPrefix) {
			out = append(out, scanned{Entry: Entry{Path: path.Join(path.Dir(rel), name[len(whPrefix):]), Type: Whiteout}, abs: abs})
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := scanned{Entry: Entry{Path: rel}, abs: abs}
		switch m := info.Mode(); {
		case m.IsRegular():
			if x := hasXattr(abs, metacopyXattrs); x != "" {
				return fail("has %s: a metadata-only copy-up whose data is in the lower layer (mount with metacopy=off)", x)
			}
			e.Type, e.Mode, e.Size, e.MTime = File, modeOf(m), info.Size(), info.ModTime().Unix()
		case m.IsDir():
			if x := hasXattr(abs, redirectXattrs); x != "" {
				return fail("has %s: a renamed directory that points into the lower layer (mount with redirect_dir=off)", x)
			}
			e.Type, e.Mode = Dir, modeOf(m)
			if xattrIsY(abs, opaqueXattrs) {
				e.Type = Opaque
			}
		case m&fs.ModeSymlink != 0:
			t, err := os.Readlink(abs)
			if err != nil {
				return err
			}
			e.Type, e.Target, e.MTime = Symlink, t, info.ModTime().Unix()
		case m&fs.ModeCharDevice != 0:
			// os.Lstat's Sys is a *syscall.Stat_t (never a *unix.Stat_t).
			if rdev := uint64(info.Sys().(*syscall.Stat_t).Rdev); rdev != 0 {
				return fail("character device %d:%d: only whiteouts (0:0) can be in an artifact", unix.Major(rdev), unix.Minor(rdev))
			}
			e.Type = Whiteout
		default:
			return fail("unsupported file type %v: only files, directories, symlinks and deletions can be in an artifact", m.Type())
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Type == Dir && opaque[out[i].Path] {
			out[i].Type = Opaque
		}
		if out[i].Type == Opaque {
			opaque[out[i].Path] = true
		}
	}
	// A whiteout under an opaque directory hides nothing (the directory
	// already hides all of the lower layer), and fuse-overlayfs leaves
	// such internal ones (".wh..opq") beside its opaque markers: drop them.
	kept := out[:0]
	for _, e := range out {
		if e.Type != Whiteout || !underOpaque(e.Path, opaque) {
			kept = append(kept, e)
		}
	}
	out = kept
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	for i := 1; i < len(out); i++ {
		if out[i].Path == out[i-1].Path {
			return nil, fmt.Errorf("artifact: upper layer %s: %s is both deleted (.wh. file) and present", upper, out[i].Path)
		}
	}
	return out, nil
}

func underOpaque(p string, opaque map[string]bool) bool {
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if opaque[d] {
			return true
		}
	}
	return false
}

func hasXattr(p string, names []string) string {
	var buf [1]byte
	for _, n := range names {
		if _, err := unix.Lgetxattr(p, n, buf[:0]); err == nil {
			return n
		}
	}
	return ""
}

func xattrIsY(p string, names []string) bool {
	var buf [8]byte
	for _, n := range names {
		if sz, err := unix.Lgetxattr(p, n, buf[:]); err == nil && sz == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

// BuildManifest reads an upper directory (after the overlay is unmounted)
// and returns its manifest with every file hashed.
func BuildManifest(ctx context.Context, upperDir string) (Manifest, error) {
	upperDir = filepath.Clean(upperDir)
	ents, err := scan(ctx, upperDir)
	if err != nil {
		return Manifest{}, err
	}
	// Hash on a few goroutines: with many small files the time goes to
	// open/read latency, which overlaps well even on few cores.
	workers := min(runtime.GOMAXPROCS(0)*2, 8)
	jobs := make(chan int)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 128<<10)
			for i := range jobs {
				if errs[w] != nil {
					continue
				}
				ents[i].SHA256, errs[w] = hashFile(ents[i].abs, ents[i].Size, buf)
			}
		}()
	}
	var ctxErr error
	for i := range ents {
		if ents[i].Type != File {
			continue
		}
		if i%256 == 0 {
			if ctxErr = ctx.Err(); ctxErr != nil {
				break
			}
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(append(errs, ctxErr)...); err != nil {
		return Manifest{}, err
	}
	m := Manifest{Version: ManifestVersion, Entries: make([]Entry, len(ents))}
	for i, e := range ents {
		m.Entries[i] = e.Entry
	}
	return m, nil
}

// FileSHA256 is the hex SHA-256 of the file at p.
func FileSHA256(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("artifact: %w", err)
	}
	return hashFile(p, fi.Size(), make([]byte, 64<<10))
}

func hashFile(p string, size int64, buf []byte) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("artifact: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, buf)
	if err != nil {
		return "", fmt.Errorf("artifact: read %s: %w", p, err)
	}
	if n != size {
		return "", fmt.Errorf("artifact: %s changed size while reading (%d, then %d bytes): is the overlay still in use?", p, size, n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

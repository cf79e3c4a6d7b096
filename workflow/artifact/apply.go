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
	"sort"

	"golang.org/x/sys/unix"
)

// Apply writes an artifact onto the tree at dstDir, as the overlay showed it
// on top of its lower layer: whiteout paths are removed, opaque directories
// are emptied, then directories, files and symlinks from the tarball are
// created or replace what is there (a path of another type is removed
// first). The digest is verified before anything is touched, and every
// file's content is checked against the manifest while it is written. All
// access goes through an os.Root, so no path (or symlink already in
// dstDir) can lead outside dstDir. Modes and the mtimes of files and
// symlinks are restored; ownership is not (the artifact has none), nor are
// directory mtimes.
//
// On error dstDir is partly updated: apply into a transaction (the
// publisher does) and abort it.
func Apply(ctx context.Context, art Artifact, dstDir string) error {
	if err := art.Manifest.Validate(); err != nil {
		return fmt.Errorf("artifact: apply %s: %w", art.Digest, err)
	}
	if err := verifyDigest(art); err != nil {
		return err
	}
	root, err := os.OpenRoot(dstDir)
	if err != nil {
		return fmt.Errorf("artifact: apply %s: %w", art.Digest, err)
	}
	defer root.Close()
	fail := func(p string, err error) error {
		return fmt.Errorf("artifact: apply %s to %s: %s: %w", art.Digest, dstDir, p, err)
	}

	for _, e := range art.Manifest.Entries {
		switch e.Type {
		case Whiteout:
			if err := root.RemoveAll(e.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fail(e.Path, err)
			}
		case Opaque:
			if err := clearDir(root, e.Path); err != nil {
				return fail(e.Path, err)
			}
		}
	}

	var dirs []Entry
	parents := &parentCache{root: root}
	defer parents.closeAll()
	err = walkTar(ctx, art, func(e Entry, r io.Reader) error {
		switch e.Type {
		case Dir, Opaque:
			parents.close()
			fi, err := root.Lstat(e.Path)
			if err == nil && !fi.IsDir() {
				if err := root.RemoveAll(e.Path); err != nil {
					return fail(e.Path, err)
				}
			}
			if err != nil || !fi.IsDir() {
				// Owner-writable while filling; the real mode comes last.
				if err := root.Mkdir(e.Path, 0o700); err != nil {
					return fail(e.Path, err)
				}
			}
			dirs = append(dirs, e)
		case File:
			dir, fd, err := parents.get(path.Dir(e.Path))
			if err != nil {
				return fail(e.Path, err)
			}
			base := path.Base(e.Path)
			if err := writeFile(dir, base, e, r); err != nil {
				return fail(e.Path, err)
			}
			if err := setMTime(fd, base, e.MTime); err != nil {
				return fail(e.Path, err)
			}
		case Symlink:
			dir, fd, err := parents.get(path.Dir(e.Path))
			if err != nil {
				return fail(e.Path, err)
			}
			base := path.Base(e.Path)
			if err := replaceable(dir, base); err != nil {
				return fail(e.Path, err)
			}
			if err := dir.Symlink(e.Target, base); err != nil {
				return fail(e.Path, err)
			}
			if err := setMTime(fd, base, e.MTime); err != nil {
				return fail(e.Path, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Deepest first, so a read-only directory is closed after its children.
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].Path > dirs[j].Path })
	for _, d := range dirs {
		if err := root.Chmod(d.Path, d.Mode.FileMode()); err != nil {
			return fail(d.Path, err)
		}
	}
	return nil
}

// replaceable removes whatever is at p, so a file or symlink can take its
// place; a missing path is fine.
func replaceable(root *os.Root, p string) error {
	if _, err := root.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return root.RemoveAll(p)
}

func clearDir(root *os.Root, p string) error {
	fi, err := root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return root.RemoveAll(p)
	}
	d, err := root.Open(p)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := root.RemoveAll(path.Join(p, n)); err != nil {
			return err
		}
	}
	return nil
}

// parentCache keeps the directory of the last file written open: entries
// are sorted, so a directory's files come together, and working on base
// names in it spares resolving every path component again per call. It
// also holds the directory open as a file, for the *at calls os.Root has
// no method for (setting a symlink's mtime).
type parentCache struct {
	root     *os.Root
	rootFile *os.File
	name     string
	dir      *os.Root
	dirFile  *os.File
}

func (c *parentCache) get(name string) (*os.Root, int, error) {
	if name == "." {
		if c.rootFile == nil {
			f, err := c.root.Open(".")
			if err != nil {
				return nil, -1, err
			}
			c.rootFile = f
		}
		return c.root, int(c.rootFile.Fd()), nil
	}
	if c.dir != nil && c.name == name {
		return c.dir, int(c.dirFile.Fd()), nil
	}
	c.close()
	d, err := c.root.OpenRoot(name)
	if err != nil {
		return nil, -1, err
	}
	f, err := d.Open(".")
	if err != nil {
		d.Close()
		return nil, -1, err
	}
	c.name, c.dir, c.dirFile = name, d, f
	return d, int(f.Fd()), nil
}

// close releases the cached directory (not the root's own handle).
func (c *parentCache) close() {
	if c.dir != nil {
		c.dirFile.Close()
		c.dir.Close()
		c.dir, c.dirFile, c.name = nil, nil, ""
	}
}

func (c *parentCache) closeAll() {
	c.close()
	if c.rootFile != nil {
		c.rootFile.Close()
		c.rootFile = nil
	}
}

// setMTime sets the mtime of base in the directory dirfd, without
// following a symlink; the atime is left alone.
func setMTime(dirfd int, base string, mtime int64) error {
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Sec: mtime}}
	if err := unix.UtimesNanoAt(dirfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set mtime: %w", err)
	}
	return nil
}

// writeFile creates a new file in place; an existing one is replaced by
// writing a temporary name beside it and renaming it over, so a reader of
// dstDir sees the old or the new file, never half. dir is the parent
// directory, base the file's name in it.
func writeFile(dir *os.Root, base string, e Entry, r io.Reader) error {
	fi, err := dir.Lstat(base)
	exists := err == nil
	if exists && fi.IsDir() {
		if err := dir.RemoveAll(base); err != nil {
			return err
		}
		exists = false
	}
	name := base
	if exists {
		name = ".compatbot-apply-" + base
	}
	f, err := dir.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) && exists {
		// A temporary file left by an interrupted Apply.
		if err = dir.Remove(name); err == nil {
			f, err = dir.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		}
	}
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 {
			err = fmt.Errorf("content sha256 %s, manifest says %s", got, e.SHA256)
		}
	}
	if err == nil {
		err = f.Chmod(e.Mode.FileMode())
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && exists {
		err = dir.Rename(name, base)
	}
	if err != nil {
		_ = dir.Remove(name)
	}
	return err
}

// Payload adapts an Artifact to publish.Payload (ApplyTo + Digest()).
type Payload struct{ art Artifact }

// Payload returns the artifact as something a publisher can apply.
func (a Artifact) Payload() Payload { return Payload{art: a} }

// ApplyTo applies the artifact onto dir (see Apply).
func (p Payload) ApplyTo(ctx context.Context, dir string) error { return Apply(ctx, p.art, dir) }

// Digest is the artifact's digest.
func (p Payload) Digest() string { return p.art.Digest }

package publish

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// failpoint kills the process with SIGKILL when COMPATBOT_PUBLISH_FAILPOINT
// names this step, so crash tests can stop a publish between any two
// durable steps exactly as a power cut or OOM kill would.
func failpoint(name string) {
	if os.Getenv("COMPATBOT_PUBLISH_FAILPOINT") == name {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		for {
			// Never run past the failpoint while the signal lands (a bare
			// select{} could trip the runtime's deadlock detector first).
			time.Sleep(time.Second)
		}
	}
}

// syncFS flushes the whole filesystem holding dir: one syncfs(2) for a
// freshly built revision instead of an fsync per file.
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// cloneTree makes dst a copy of src in which every regular file is a hard
// link to src's, so a new revision costs directory entries, not data.
// Directories, symlinks and device nodes are created new.
func cloneTree(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("clone %s: not a directory", src)
	}
	if err := os.Mkdir(dst, fi.Mode().Perm()); err != nil {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		if err := cloneEntry(s, d); err != nil {
			return err
		}
	}
	return copyMeta(fi, dst)
}

func cloneEntry(s, d string) error {
	fi, err := os.Lstat(s)
	if err != nil {
		return err
	}
	switch m := fi.Mode(); {
	case m.IsDir():
		return cloneTree(s, d)
	case m.IsRegular():
		err := os.Link(s, d)
		if errors.Is(err, syscall.EMLINK) {
			// ext4 caps an inode at 65000 links; a file unchanged across that
			// many revisions gets a fresh copy that later revisions link to.
			return copyFile(s, d, fi)
		}
		return err
	case m&os.ModeSymlink != 0:
		target, err := os.Readlink(s)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, d); err != nil {
			return err
		}
		return lchownLike(fi, d)
	default:
		st := fi.Sys().(*syscall.Stat_t)
		if err := unix.Mknod(d, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod %s: %w", d, err)
		}
		return copyMeta(fi, d)
	}
}

func copyFile(s, d string, fi os.FileInfo) error {
	in, err := os.Open(s)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(d, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
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
	return copyMeta(fi, d)
}

func lchownLike(fi os.FileInfo, d string) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if err := os.Lchown(d, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, syscall.EPERM) {
		return err
	}
	return nil
}

// copyMeta gives d the mode, owner and times of fi (not for symlinks).
func copyMeta(fi os.FileInfo, d string) error {
	if err := os.Chmod(d, fi.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
		return err
	}
	if err := lchownLike(fi, d); err != nil {
		return err
	}
	return os.Chtimes(d, fi.ModTime(), fi.ModTime())
}

// isWhiteout reports an overlayfs whiteout: a 0/0 character device.
func isWhiteout(fi os.FileInfo) bool {
	if fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

func isOpaque(path string) bool {
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(path, "trusted.overlay.opaque", buf)
	return err == nil && n > 0 && buf[0] == 'y'
}

// dropOverlayXattrs removes overlayfs's bookkeeping (origin, opaque, ...)
// from an entry moved out of the upper layer, so a published tree never
// carries xattrs that a later overlay using it as a lower layer would obey.
func dropOverlayXattrs(path string) {
	sz, err := unix.Llistxattr(path, nil)
	if err != nil || sz <= 0 {
		return
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(path, buf)
	if err != nil {
		return
	}
	for _, name := range strings.Split(string(buf[:sz]), "\x00") {
		if strings.HasPrefix(name, "trusted.overlay.") {
			unix.Lremovexattr(path, name)
		}
	}
}

// applyUpper moves an overlayfs upper layer's changes into dst, a clone of
// the lower layer: whiteouts delete, opaque directories replace, files and
// symlinks are renamed into place. Renaming over a hard-linked file
// replaces the directory entry only, so the previous revision's inode is
// never written.
func applyUpper(upper, dst string) error {
	fi, err := os.Lstat(upper)
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(upper)
	if err != nil {
		return err
	}
	for _, e := range ents {
		u, d := filepath.Join(upper, e.Name()), filepath.Join(dst, e.Name())
		ufi, err := os.Lstat(u)
		if err != nil {
			return err
		}
		if isWhiteout(ufi) {
			if err := os.RemoveAll(d); err != nil {
				return err
			}
			continue
		}
		dfi, derr := os.Lstat(d)
		exists := derr == nil
		if ufi.IsDir() {
			if exists && (!dfi.IsDir() || isOpaque(u)) {
				if err := os.RemoveAll(d); err != nil {
					return err
				}
				exists = false
			}
			if !exists {
				if err := os.Mkdir(d, 0o700); err != nil {
					return err
				}
			}
			if err := applyUpper(u, d); err != nil {
				return err
			}
			continue
		}
		if exists && dfi.IsDir() {
			if err := os.RemoveAll(d); err != nil {
				return err
			}
		}
		dropOverlayXattrs(u)
		if err := os.Rename(u, d); err != nil {
			return err
		}
	}
	return copyMeta(fi, dst)
}

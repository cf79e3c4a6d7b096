package overlay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

func fuseAvailable() error {
	if _, err := exec.LookPath("fuse-overlayfs"); err != nil {
		return errors.New("fuse-overlayfs not found in PATH (Debian: apt-get install fuse-overlayfs fuse3)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("/dev/fuse: %s", describe(err))
	}
	if os.Geteuid() != 0 && fusermount() == "" {
		return errors.New("neither fusermount3 nor fusermount found in PATH (Debian: apt-get install fuse3)")
	}
	return nil
}

func fusermount() string {
	for _, name := range []string{"fusermount3", "fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func (m *Mount) mountFUSE(ctx context.Context) error {
	o := m.opts
	cmd := exec.CommandContext(ctx, "fuse-overlayfs", "-o", layerData(o), o.Target)
	// fuse-overlayfs daemonizes once the mount is up and the daemon keeps
	// the inherited stdout/stderr: with pipes, Wait would block until the
	// unmount. A file has no such reader to wait for.
	errf, err := os.CreateTemp("", "fuse-overlayfs-*.log")
	if err != nil {
		return fmt.Errorf("overlay: fuse-overlayfs: %w", err)
	}
	defer os.Remove(errf.Name())
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = errf, errf
	runErr := cmd.Run()
	out, _ := os.ReadFile(errf.Name())
	msg := strings.TrimSpace(string(out))
	if runErr != nil {
		if msg == "" {
			msg = runErr.Error()
		}
		return fmt.Errorf("overlay: fuse-overlayfs at %s (lowerdir=%s, upperdir=%s): %s", o.Target, strings.Join(o.Lower, ":"), o.Upper, msg)
	}
	if !isMountPoint(o.Target) {
		return fmt.Errorf("overlay: fuse-overlayfs exited 0 but %s is not a mount point: %s", o.Target, msg)
	}
	return nil
}

func (m *Mount) unmountFUSE() error {
	t := m.opts.Target
	if !isMountPoint(t) {
		return nil
	}
	fm := fusermount()
	if fm == "" {
		// Root can unmount a FUSE mount like any other.
		return m.unmountKernel()
	}
	out, err := exec.Command(fm, "-u", t).CombinedOutput()
	if err == nil {
		return nil
	}
	if bytes.Contains(out, []byte("busy")) {
		if out2, err2 := exec.Command(fm, "-u", "-z", t).CombinedOutput(); err2 != nil {
			return fmt.Errorf("overlay: %s -u -z %s: %s", filepath.Base(fm), t, strings.TrimSpace(string(out2)))
		}
		m.detached = true
		return nil
	}
	return fmt.Errorf("overlay: %s -u %s: %s", filepath.Base(fm), t, strings.TrimSpace(string(out)))
}

// isMountPoint compares the directory's device with its parent's: cheap,
// and enough for a mount this package made on a directory it validated.
func isMountPoint(dir string) bool {
	var a, b unix.Stat_t
	if unix.Stat(dir, &a) != nil || unix.Stat(filepath.Dir(dir), &b) != nil {
		return false
	}
	return a.Dev != b.Dev || a.Ino == b.Ino
}

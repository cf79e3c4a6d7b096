package overlay

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// RemoveScratch deletes a run's scratch directory (as made by Stage) after
// detaching any mount still at or below it, deepest first. Use it instead
// of os.RemoveAll: after a crash the overlay can still be mounted at
// scratchDir/merged, and RemoveAll would walk into the merged view and
// whiteout the whole published tree file by file (the lower layer itself
// stays untouched, but that costs as much as the tree is large).
func RemoveScratch(scratchDir string) error {
	if !filepath.IsAbs(scratchDir) {
		return fmt.Errorf("overlay: RemoveScratch %q: not an absolute path", scratchDir)
	}
	scratchDir = filepath.Clean(scratchDir)
	mps, err := mountsUnder(scratchDir)
	if err != nil {
		return err
	}
	for _, mp := range mps {
		if err := detach(mp); err != nil {
			return err
		}
	}
	if left, err := mountsUnder(scratchDir); err != nil || len(left) > 0 {
		return fmt.Errorf("overlay: RemoveScratch %s: still mounted: %v (%v); not removing", scratchDir, left, err)
	}
	return os.RemoveAll(scratchDir)
}

// DetachBelow lazily detaches every mount strictly below dir, deepest
// first, and returns the mount points it detached. It is for the mounts a
// crashed process left (the kernel keeps a mount after its process dies):
// lazily, since an orphaned build may still hold files open. dir itself
// is left alone, as it may be a filesystem the operator mounted.
func DetachBelow(dir string) (detached []string, err error) {
	dir = filepath.Clean(dir)
	mps, err := mountsUnder(dir)
	if err != nil {
		return nil, err
	}
	for _, mp := range mps {
		if mp == dir {
			continue
		}
		if err := detach(mp); err != nil {
			return detached, err
		}
		detached = append(detached, mp)
	}
	return detached, nil
}

// MountsUnder lists this mount namespace's mount points at or below dir,
// deepest first, as /proc/self/mountinfo has them (unescaped).
func MountsUnder(dir string) ([]string, error) {
	return mountsUnder(filepath.Clean(dir))
}

func detach(mp string) error {
	err := unix.Unmount(mp, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if fm := fusermount(); fm != "" && errors.Is(err, unix.EPERM) {
		if out, ferr := exec.Command(fm, "-u", "-z", mp).CombinedOutput(); ferr != nil {
			return fmt.Errorf("overlay: detach %s: %v; %s -u -z: %s", mp, err, filepath.Base(fm), strings.TrimSpace(string(out)))
		}
		return nil
	}
	return fmt.Errorf("overlay: detach %s: %w", mp, err)
}

// mountsUnder lists this mount namespace's mount points at or below dir,
// deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if within(dir, mp) {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("overlay: read /proc/self/mountinfo: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

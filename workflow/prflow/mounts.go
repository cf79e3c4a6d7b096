package prflow

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// unmountStale detaches the overlay mounts a crashed process left under
// runsDir: the kernel keeps a mount after its process dies, and a build
// that Recover runs again stages a new one. Deepest first, lazily, since
// an orphaned build may still hold files open.
func unmountStale(runsDir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	prefix := filepath.Clean(runsDir) + string(filepath.Separator)
	var stale []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if strings.HasPrefix(mp, prefix) {
			stale = append(stale, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.Slice(stale, func(i, j int) bool { return len(stale[i]) > len(stale[j]) })
	var done []string
	for _, mp := range stale {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
			return done, fmt.Errorf("unmount stale %s: %w", mp, err)
		}
		done = append(done, mp)
	}
	return done, nil
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

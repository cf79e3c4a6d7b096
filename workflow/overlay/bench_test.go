package overlay

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// benchRoot holds the lower trees, built once per process and removed by
// TestMain.
var (
	benchRoot    string
	benchRootErr error
	benchOnce    sync.Once
	lowerMu      sync.Mutex
	lowerTrees   = map[int]string{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchRoot != "" {
		os.RemoveAll(benchRoot)
	}
	os.Exit(code)
}

// lowerTree returns a directory with n small files (100 per directory),
// the shape of a compat layer's many small files.
func lowerTree(b *testing.B, n int) string {
	b.Helper()
	benchOnce.Do(func() { benchRoot, benchRootErr = os.MkdirTemp("", "overlay-bench-") })
	if benchRootErr != nil {
		b.Fatal(benchRootErr)
	}
	lowerMu.Lock()
	defer lowerMu.Unlock()
	if d, ok := lowerTrees[n]; ok {
		return d
	}
	dir := filepath.Join(benchRoot, "lower-"+strconv.Itoa(n))
	content := make([]byte, 200)
	for i := range content {
		content[i] = byte('a' + i%26)
	}
	for i := 0; i < n; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("usr/lib/pkg%04d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("file%03d.so", i%100)), content, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	// Flush the new tree now, so the first unmount's syncfs does not
	// pay for writing it out.
	unix.Sync()
	lowerTrees[n] = dir
	return dir
}

var benchSizes = []int{1000, 10000, 100000}

// BenchmarkStage: mount an overlay over the lower tree (the Unmount is
// outside the timer: see BenchmarkStageUnmount).
func BenchmarkStage(b *testing.B) { benchStage(b, false) }

// BenchmarkStageUnmount: mount and unmount. Unmounting an overlay syncs the
// upper layer's filesystem (syncfs), so this also pays for whatever else is
// dirty on that filesystem: noisy on a shared disk.
func BenchmarkStageUnmount(b *testing.B) { benchStage(b, true) }

func benchStage(b *testing.B, timeUnmount bool) {
	if os.Geteuid() != 0 {
		b.Fatal("BenchmarkStage mounts kernel overlays and must run as root")
	}
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			lower := lowerTree(b, n)
			scratch := b.TempDir()
			i := 0
			for b.Loop() {
				i++
				m, err := Stage(context.Background(), lower, filepath.Join(scratch, strconv.Itoa(i)))
				if err != nil {
					b.Fatal(err)
				}
				if !timeUnmount {
					b.StopTimer()
				}
				if err := m.Unmount(); err != nil {
					b.Fatal(err)
				}
				if !timeUnmount {
					b.StartTimer()
				}
			}
		})
	}
}

// BenchmarkCopyLower: what staging avoids, copying the lower tree.
func BenchmarkCopyLower(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			lower := lowerTree(b, n)
			scratch := b.TempDir()
			i := 0
			for b.Loop() {
				i++
				dst := filepath.Join(scratch, strconv.Itoa(i))
				if err := copyTree(lower, dst); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(dst)
				b.StartTimer()
			}
		})
	}
}

func copyTree(src, dst string) error {
	buf := make([]byte, 64<<10)
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Mkdir(out, info.Mode().Perm())
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		o, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.CopyBuffer(o, in, buf); err != nil {
			o.Close()
			return err
		}
		return o.Close()
	})
}

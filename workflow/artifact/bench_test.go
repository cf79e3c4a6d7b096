package artifact

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// makeUpper writes an upper layer of n files of 1 KiB (100 per
// directory) with some deletions, like a build's upper layer.
func makeUpper(b *testing.B, n int) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "upper")
	content := make([]byte, 1024)
	for i := 0; i < n; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("usr/lib/pkg%03d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				b.Fatal(err)
			}
			// One deletion per directory.
			if err := unix.Mknod(filepath.Join(sub, "removed.so"), unix.S_IFCHR, 0); err != nil {
				b.Fatal(err)
			}
		}
		copy(content, strconv.Itoa(i))
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("file%03d.so", i%100)), content, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	unix.Sync()
	return dir
}

func BenchmarkManifest10k(b *testing.B) {
	requireRoot(b)
	upper := makeUpper(b, 10000)
	for b.Loop() {
		m, err := BuildManifest(context.Background(), upper)
		if err != nil {
			b.Fatal(err)
		}
		if len(m.Entries) != 10000+100+100+2 {
			b.Fatalf("%d entries", len(m.Entries))
		}
	}
}

// BenchmarkPut10k: manifest + tarball + fsync + rename into the store.
func BenchmarkPut10k(b *testing.B) {
	requireRoot(b)
	upper := makeUpper(b, 10000)
	st := &Store{Dir: filepath.Join(b.TempDir(), "store")}
	for b.Loop() {
		a, err := st.Put(context.Background(), upper, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(a.Path)
		b.StartTimer()
	}
}

// BenchmarkApply10k: verify and apply onto an empty tree.
func BenchmarkApply10k(b *testing.B) {
	requireRoot(b)
	upper := makeUpper(b, 10000)
	st := &Store{Dir: filepath.Join(b.TempDir(), "store")}
	a, err := st.Put(context.Background(), upper, nil)
	if err != nil {
		b.Fatal(err)
	}
	scratch := b.TempDir()
	i := 0
	for b.Loop() {
		i++
		dst := filepath.Join(scratch, strconv.Itoa(i))
		b.StopTimer()
		if err := os.Mkdir(dst, 0o755); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := Apply(context.Background(), a, dst); err != nil {
			b.Fatal(err)
		}
	}
}

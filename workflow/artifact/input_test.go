package artifact

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testtree"
	"golang.org/x/sys/unix"
)

// A manifest read back from the store is input: decoding and validating it
// must never panic, and what validates must have clean, sorted, relative
// paths that Apply can trust.
func FuzzDecodeManifest(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "manifest.golden.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(`{"version":1,"entries":[{"path":"../x","type":"whiteout"}]}`))
	f.Add([]byte(`{"version":1,"entries":[{"path":"a","type":"file","mode":"9999"}]}`))
	f.Add([]byte(`{"version":1,"entries":[{"path":"b","type":"dir"},{"path":"a","type":"dir"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeManifest(b)
		if err != nil {
			return
		}
		for i, e := range m.Entries {
			if checkRel(e.Path) != nil || strings.Contains("/"+e.Path+"/", "/../") {
				t.Fatalf("validated manifest has path %q", e.Path)
			}
			if i > 0 && m.Entries[i-1].Path >= e.Path {
				t.Fatalf("validated manifest not sorted at %d", i)
			}
			if e.Mode&^0o7777 != 0 {
				t.Fatalf("mode %o", e.Mode)
			}
		}
		// Round trip: encoding a valid manifest and decoding it again
		// gives the same manifest.
		enc, err := encodeManifest(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := decodeManifest(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(m2.Entries) != len(m.Entries) {
			t.Fatal("round trip lost entries")
		}
	})
}

func TestPutCancelled(t *testing.T) {
	upper := t.TempDir()
	for i := range 3000 {
		testtree.Write(t, filepath.Join(upper, "d", strings.Repeat("x", i%50+1)+string(rune('a'+i%26))+itoa(i)), "x", 0o644)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st := &Store{Dir: filepath.Join(t.TempDir(), "store")}
	if _, err := st.Put(ctx, upper, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context: %v", err)
	}
	if _, err := BuildManifest(ctx, upper); !errors.Is(err, context.Canceled) {
		t.Errorf("BuildManifest with a cancelled context: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(st.Dir, "sha256")); len(ents) != 0 {
		t.Errorf("cancelled Put stored %v", ents)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestApplyCancelled(t *testing.T) {
	upper := t.TempDir()
	for i := range 600 {
		testtree.Write(t, filepath.Join(upper, "d", strconv.Itoa(i)), "x", 0o644)
	}
	st := &Store{Dir: filepath.Join(t.TempDir(), "store")}
	art, err := st.Put(context.Background(), upper, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Apply(ctx, art, t.TempDir()); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply with a cancelled context: %v", err)
	}
	if _, err := st.Put(context.Background(), filepath.Join(upper, "d", "1"), nil); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Put of a file as upper: %v", err)
	}
	if err := Apply(context.Background(), art, filepath.Join(upper, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Apply onto a missing dir: %v", err)
	}
}

// A full store disk: Put fails with ENOSPC named, and leaves nothing
// behind (no partial artifact under its digest, no temporary files).
func TestPutStoreDiskFull(t *testing.T) {
	requireRoot(t)
	upper := t.TempDir()
	testtree.Write(t, filepath.Join(upper, "big"), strings.Repeat("x", 2<<20), 0o644)
	small := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(small, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", small, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(small, unix.MNT_DETACH)
	st := &Store{Dir: filepath.Join(small, "store")}
	_, err := st.Put(context.Background(), upper, nil)
	if !errors.Is(err, unix.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("Put onto a full disk: %v, want ENOSPC", err)
	}
	for _, sub := range []string{"sha256", "tmp"} {
		if ents, _ := os.ReadDir(filepath.Join(st.Dir, sub)); len(ents) != 0 {
			t.Errorf("%s left after a failed Put: %v", sub, ents)
		}
	}
}

// A file that grew after the scan recorded its size overflows its tar
// entry: packing must name it and say why, not pass on tar's bare error.
func TestCopyFileGrew(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	testtree.Write(t, p, "0123456789", 0o644)
	tw := tar.NewWriter(io.Discard)
	if err := tw.WriteHeader(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Size: 5, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	_, err := copyFile(tw, p, 5, make([]byte, 4))
	if err == nil || !strings.Contains(err.Error(), p+" grew while packing it") {
		t.Errorf("copyFile of a grown file: %v, want %q", err, p+" grew while packing it")
	}
}

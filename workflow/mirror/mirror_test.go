package mirror

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/blake2b"
)

var update = flag.Bool("update", false, "rewrite golden files")

func write(t testing.TB, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// distdir is a DISTDIR as Portage leaves it after a build.
func distdir(t *testing.T) string {
	d := t.TempDir()
	write(t, d, "bash-5.2.tar.gz", "bash source")
	write(t, d, "zlib-1.3.1.tar.xz", "zlib source")
	write(t, d, "zlib-copy.tar.xz", "zlib source") // same bytes, other name
	write(t, d, ".locks/zlib-1.3.1.tar.xz", "")
	write(t, d, "git3-src/repo/HEAD", "ref")
	write(t, d, "gcc-14.tar.xz.__download__", "partial")
	write(t, d, "foo.tar.gz._checksum_failure_.abc", "bad")
	if err := os.Symlink("bash-5.2.tar.gz", filepath.Join(d, "bash-link.tar.gz")); err != nil {
		t.Fatal(err)
	}
	return d
}

func sums(content string) (string, string) {
	b := blake2b.Sum512([]byte(content))
	s := sha512.Sum512([]byte(content))
	return hex.EncodeToString(b[:]), hex.EncodeToString(s[:])
}

func entry(name, content string) Entry {
	b, s := sums(content)
	return Entry{Name: name, Size: int64(len(content)), BLAKE2B: b, SHA512: s}
}

func TestAddStoresContentOnceWithManifestChecksums(t *testing.T) {
	ctx := context.Background()
	m := &Mirror{Dir: t.TempDir()}
	got, err := m.Add(ctx, distdir(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		entry("bash-5.2.tar.gz", "bash source"),
		entry("bash-link.tar.gz", "bash source"),
		entry("zlib-1.3.1.tar.xz", "zlib source"),
		entry("zlib-copy.tar.xz", "zlib source"),
	}
	if !cmp.Equal(got, want) {
		t.Fatalf("Add: %s", cmp.Diff(want, got))
	}
	blobs, _ := os.ReadDir(filepath.Join(m.Dir, "blobs", "sha512"))
	if len(blobs) != 2 {
		t.Errorf("%d blobs, want 2 (identical content stored once)", len(blobs))
	}
	for _, e := range want {
		if b, err := os.ReadFile(filepath.Join(m.Dir, "blobs", "sha512", e.SHA512)); err != nil || len(b) != int(e.Size) {
			t.Errorf("blob of %s: %v", e.Name, err)
		}
		if got, err := m.Lookup(e.Name); err != nil || got != e {
			t.Errorf("Lookup(%s) = %+v, %v", e.Name, got, err)
		}
	}
	manifest, err := os.ReadFile(filepath.Join(m.Dir, "Manifest"))
	if err != nil {
		t.Fatal(err)
	}
	testtree.Golden(t, "Manifest", string(manifest), *update)
	if !bytes.Equal(manifest, FormatManifest(want)) {
		t.Errorf("Manifest:\n%s\nwant FormatManifest of the entries:\n%s", manifest, FormatManifest(want))
	}
	// Adding the same DISTDIR again changes nothing.
	if again, err := m.Add(ctx, distdir(t)); err != nil || !cmp.Equal(again, want) {
		t.Errorf("second Add = %v, %v", again, err)
	}
}

func TestAddRefusesAReusedNameWithOtherContent(t *testing.T) {
	ctx := context.Background()
	m := &Mirror{Dir: t.TempDir()}
	d := t.TempDir()
	write(t, d, "foo-1.0.tar.gz", "original")
	if _, err := m.Add(ctx, d); err != nil {
		t.Fatal(err)
	}
	write(t, d, "foo-1.0.tar.gz", "re-rolled upstream")
	_, err := m.Add(ctx, d)
	if err == nil || !strings.Contains(err.Error(), "foo-1.0.tar.gz is already mirrored with different content") {
		t.Fatalf("Add with changed content: %v", err)
	}
	if e, _ := m.Lookup("foo-1.0.tar.gz"); e != entry("foo-1.0.tar.gz", "original") {
		t.Errorf("index changed to %+v", e)
	}
}

func TestMaterializeVerifiesBothChecksums(t *testing.T) {
	ctx := context.Background()
	m := &Mirror{Dir: t.TempDir()}
	entries, err := m.Add(ctx, distdir(t))
	if err != nil {
		t.Fatal(err)
	}
	// Round trip through a Manifest file, as a rebuild would get it.
	parsed, err := ParseManifest("Manifest", FormatManifest(entries))
	if err != nil || !cmp.Equal(parsed, entries) {
		t.Fatalf("ParseManifest round trip: %v %s", err, cmp.Diff(entries, parsed))
	}
	dst := t.TempDir()
	if err := m.Materialize(ctx, parsed, dst); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dst, e.Name))
		if err != nil || entry(e.Name, string(b)) != e {
			t.Errorf("materialized %s: %q, %v", e.Name, b, err)
		}
		fi, _ := os.Lstat(filepath.Join(dst, e.Name))
		if !fi.Mode().IsRegular() {
			t.Errorf("%s is not a regular file copy", e.Name)
		}
	}
	if names, _ := os.ReadDir(dst); len(names) != len(entries) {
		t.Errorf("DISTDIR holds %d entries, want %d (no temporary files)", len(names), len(entries))
	}

	bash := entries[0]
	wrongBlake := bash
	wrongBlake.BLAKE2B = strings.Repeat("0", 128)
	wrongSHAOnly := bash
	missing := entry("never-mirrored.tar.gz", "x")
	for _, tc := range []struct {
		name    string
		e       Entry
		corrupt bool
		want    string
	}{
		{"missing", missing, false, "distfile never-mirrored.tar.gz: not in the mirror"},
		{"wrong BLAKE2B in Manifest", wrongBlake, false, "distfile bash-5.2.tar.gz: mirror copy"},
		{"corrupted blob", wrongSHAOnly, true, "SHA512"},
		{"no SHA512", Entry{Name: "a.tar", Size: 1, BLAKE2B: bash.BLAKE2B}, false, "needs both BLAKE2B and SHA512"},
		{"path in name", Entry{Name: "../x", SHA512: bash.SHA512, BLAKE2B: bash.BLAKE2B}, false, "plain file name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.corrupt {
				blob := filepath.Join(m.Dir, "blobs", "sha512", tc.e.SHA512)
				b, _ := os.ReadFile(blob)
				b[0] ^= 0xff
				if err := os.WriteFile(blob, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			dst := t.TempDir()
			err := m.Materialize(ctx, []Entry{tc.e}, dst)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Materialize = %v, want error containing %q", err, tc.want)
			}
			if names, _ := os.ReadDir(dst); len(names) != 0 {
				t.Errorf("failed Materialize left %d files in DISTDIR", len(names))
			}
		})
	}
	// Resolve by name goes through the index.
	if _, err := m.Resolve([]string{"bash-5.2.tar.gz", "nope.tar"}); err == nil || !strings.Contains(err.Error(), "distfile nope.tar: not in the mirror") {
		t.Errorf("Resolve: %v", err)
	}
}

func TestParseManifestErrors(t *testing.T) {
	b, s := sums("x")
	good := "EBUILD foo-1.ebuild 10 SHA512 00\nDIST foo.tar 1 BLAKE2B " + b + " SHA512 " + s + "\n"
	es, err := ParseManifest("cat/pkg/Manifest", []byte(good))
	if err != nil || len(es) != 1 || es[0] != entry("foo.tar", "x") {
		t.Fatalf("ParseManifest = %+v, %v", es, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"DIST foo.tar\n", "cat/pkg/Manifest:1: want DIST"},
		{"\nDIST foo.tar x BLAKE2B aa\n", `cat/pkg/Manifest:2: size "x"`},
		{"DIST foo.tar 1 BLAKE2B\n", "cat/pkg/Manifest:1: want DIST"},
		{"DIST foo.tar 1 SHA512 zz\n", `SHA512 checksum "zz" is not hex`},
		{"DIST a/b 1 SHA512 00\n", "plain file name"},
	} {
		_, err := ParseManifest("cat/pkg/Manifest", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseManifest(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func benchDistdir(b *testing.B) (string, int64) {
	d := b.TempDir()
	data := bytes.Repeat([]byte("compat layer source "), 8<<20/20)
	if err := os.WriteFile(filepath.Join(d, "big-1.0.tar.xz"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	return d, int64(len(data))
}

func BenchmarkAdd(b *testing.B) {
	src, n := benchDistdir(b)
	b.SetBytes(n)
	for i := 0; i < b.N; i++ {
		m := &Mirror{Dir: b.TempDir()}
		if _, err := m.Add(context.Background(), src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMaterialize(b *testing.B) {
	src, n := benchDistdir(b)
	m := &Mirror{Dir: b.TempDir()}
	es, err := m.Add(context.Background(), src)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.Materialize(context.Background(), es, b.TempDir()); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add("DIST foo.tar 1 BLAKE2B aa SHA512 bb\nEBUILD x 1 SHA512 00\n")
	f.Fuzz(func(t *testing.T, s string) {
		es, err := ParseManifest("Manifest", []byte(s))
		if err != nil {
			return
		}
		// Whatever is accepted must be safe to use as a DISTDIR file name.
		for _, e := range es {
			if ValidName(e.Name) != nil || e.Size < 0 {
				t.Fatalf("accepted %+v from %q", e, s)
			}
		}
	})
}

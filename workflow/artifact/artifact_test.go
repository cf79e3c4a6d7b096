package artifact

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/compatbot/compatbot/workflow/overlay"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite golden files")

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("artifact tests build upper layers with real overlay mounts and must run as root (CI does)")
	}
}

// newLower makes a temporary directory with a small published tree at
// dir/lower.
func newLower(t testing.TB) (dir, lower string) {
	t.Helper()
	dir = t.TempDir()
	lower = filepath.Join(dir, "lower")
	files := testtree.Prefix()
	files["usr/lib/libold.so.1"] = testtree.File{Content: "old lib\n", Mode: 0o755}
	files["usr/lib/libold.so"] = testtree.File{Link: "libold.so.1"}
	files["usr/share/doc/sub/b.txt"] = testtree.File{Content: "b\n"}
	files["opt/was-a-dir/x"] = testtree.File{Content: "x\n"}
	testtree.Build(t, lower, files)
	return dir, lower
}

// The build: constant test data run by sh through the overlay. It adds,
// modifies, deletes (file and package directory), replaces a directory by
// a new one (opaque), a directory by a file, a file by a symlink, and
// sets special mode bits.
const build = `set -e
t="$1"
mkdir -p "$t/usr/bin" "$t/var/db/pkg/app-misc/new-2"
printf 'new tool\n' > "$t/usr/bin/new"
chmod 0755 "$t/usr/bin/new"
echo "export B=2" >> "$t/etc/profile"
rm "$t/usr/bin/tool"
rm -r "$t/var/db/pkg/app-misc/old-1"
printf 'obj /usr/bin/new\n' > "$t/var/db/pkg/app-misc/new-2/CONTENTS"
printf '0\n' > "$t/var/db/pkg/app-misc/new-2/SLOT"
rm -r "$t/usr/share/doc"
mkdir "$t/usr/share/doc"
printf 'c\n' > "$t/usr/share/doc/c.txt"
rm -r "$t/opt/was-a-dir"
printf 'now a file\n' > "$t/opt/was-a-dir"
rm "$t/usr/lib/libold.so"
ln -s libnew.so.2 "$t/usr/lib/libold.so"
mkdir -p "$t/tmp-sticky"
chmod 1777 "$t/tmp-sticky"
printf '' > "$t/usr/bin/empty"
chmod 4711 "$t/usr/bin/empty"
`

// stageAndBuild mounts lower under a real overlay, runs the build script
// through it, snapshots the merged view and unmounts. It returns the
// upper directory and the merged snapshot.
func stageAndBuild(t testing.TB, lower, scratch string, method overlay.Method) (string, map[string]string) {
	t.Helper()
	o := overlay.Options{Lower: []string{lower}, Upper: filepath.Join(scratch, "upper"), Work: filepath.Join(scratch, "work"), Target: filepath.Join(scratch, "merged"), Method: method}
	for _, d := range []string{o.Upper, o.Work, o.Target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m, err := overlay.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unmount()
	cmd, err := m.Command(context.Background(), "/bin/sh", "-c", build, "sh", m.Target())
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build through the overlay: %v\n%s", err, out)
	}
	var merged map[string]string
	if m.Visible() {
		merged = snapshot(t, m.Target())
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	return o.Upper, merged
}

// snapshot describes every path under dir with its mode and mtime, for
// comparing trees exactly.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	return testtree.Snapshot(t, dir, true)
}

// put stores upper in st and fails the test if that fails.
func put(t testing.TB, st *Store, upper string, meta map[string]string) Artifact {
	t.Helper()
	art, err := st.Put(context.Background(), upper, meta)
	if err != nil {
		t.Fatal(err)
	}
	return art
}

func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
}

// The property the deploy relies on: lower + Apply(artifact of upper) is
// exactly what the overlay showed.
func TestPutApplyReproducesMergedView(t *testing.T) {
	requireRoot(t)
	for _, method := range []overlay.Method{overlay.Kernel, overlay.FUSE} {
		t.Run(string(method), func(t *testing.T) {
			ctx := context.Background()
			dir, lower := newLower(t)
			lowerBefore := snapshot(t, lower)
			upper, merged := stageAndBuild(t, lower, filepath.Join(dir, "run"), method)
			st := &Store{Dir: filepath.Join(dir, "store")}
			art := put(t, st, upper, map[string]string{"head": "abc123"})
			dst := filepath.Join(dir, "published")
			copyTree(t, lower, dst)
			if err := Apply(ctx, art, dst); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(merged, snapshot(t, dst)); diff != "" {
				t.Errorf("lower + artifact differs from the merged view (-merged +applied):\n%s", diff)
			}
			if diff := cmp.Diff(lowerBefore, snapshot(t, lower)); diff != "" {
				t.Errorf("lower changed:\n%s", diff)
			}
			// Applying twice is harmless: the result is the same.
			if err := art.Payload().ApplyTo(ctx, dst); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(merged, snapshot(t, dst)); diff != "" {
				t.Errorf("second Apply changed the tree (-merged +applied):\n%s", diff)
			}
			if art.Payload().Digest() != art.Digest {
				t.Errorf("Payload().Digest() = %s, want %s", art.Payload().Digest(), art.Digest)
			}
		})
	}
}

// The manifest of the kernel overlay's upper layer is a golden file: it
// shows the format, and any change to it (and so to digests) is deliberate.
func TestManifestGolden(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	dir, lower := newLower(t)
	upper, _ := stageAndBuild(t, lower, filepath.Join(dir, "run"), overlay.Kernel)
	setAllMTimes(t, upper, 1700000000)
	m, err := BuildManifest(ctx, upper)
	if err != nil {
		t.Fatal(err)
	}
	got, err := encodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	testtree.Golden(t, "manifest.golden.json", string(got), *update)
	// opt/was-a-dir is not deleted but replaced by a file.
	wantDeleted := []string{"usr/bin/tool", "var/db/pkg/app-misc/old-1"}
	if diff := cmp.Diff(wantDeleted, m.Deleted()); diff != "" {
		t.Errorf("Deleted() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"usr/share/doc"}, m.OpaqueDirs()); diff != "" {
		t.Errorf("OpaqueDirs() (-want +got):\n%s", diff)
	}
	// Put's one-pass manifest equals BuildManifest's.
	art := put(t, &Store{Dir: filepath.Join(dir, "store")}, upper, nil)
	if diff := cmp.Diff(m, art.Manifest); diff != "" {
		t.Errorf("Put manifest differs from BuildManifest (-build +put):\n%s", diff)
	}
}

func TestSameUpperSameDigest(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	dir, lower := newLower(t)
	// Two independent builds (different times, inode numbers, mount
	// methods) of the same change.
	upper1, _ := stageAndBuild(t, lower, filepath.Join(dir, "run1"), overlay.Kernel)
	upper2, _ := stageAndBuild(t, lower, filepath.Join(dir, "run2"), overlay.UserNS)
	// Builds differ in their files' mtimes, which the artifact keeps; a
	// reproducible build (SOURCE_DATE_EPOCH) makes them agree.
	setAllMTimes(t, upper1, 1700000000)
	setAllMTimes(t, upper2, 1700000000)
	st := &Store{Dir: filepath.Join(dir, "store")}
	a1 := put(t, st, upper1, map[string]string{"run": "1"})
	a2 := put(t, st, upper2, map[string]string{"run": "2"})
	if a1.Digest != a2.Digest || a1.Size != a2.Size {
		t.Errorf("same change, different artifacts: %s (%d bytes) vs %s (%d bytes)", a1.Digest, a1.Size, a2.Digest, a2.Size)
	}
	again, err := st.Put(ctx, upper1, nil)
	if err != nil || again.Digest != a1.Digest {
		t.Errorf("re-Put: %v, %v", again.Digest, err)
	}
	got, err := st.Get(a1.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if got.Path != a1.Path || got.Size != a1.Size || !cmp.Equal(got.Manifest, a1.Manifest) {
		t.Errorf("Get = %+v\nwant %+v", got, a1)
	}
	if err := st.Verify(a1.Digest); err != nil {
		t.Errorf("Verify: %v", err)
	}
	// One byte more in one file: another digest.
	testtree.Write(t, filepath.Join(upper1, "usr/bin/new"), "new tool!\n", 0o755)
	a3 := put(t, st, upper1, nil)
	if a3.Digest == a1.Digest {
		t.Error("changed content, same digest")
	}
	// An mtime change alone: another digest.
	setAllMTimes(t, upper1, 1700000001)
	a3b := put(t, st, upper1, nil)
	if a3b.Digest == a3.Digest {
		t.Error("changed mtimes, same digest")
	}
	// A mode change alone: another digest.
	if err := os.Chmod(filepath.Join(upper1, "usr/bin/new"), 0o700); err != nil {
		t.Fatal(err)
	}
	a4 := put(t, st, upper1, nil)
	if a4.Digest == a3b.Digest {
		t.Error("changed mode, same digest")
	}
	entries, _ := os.ReadDir(filepath.Join(st.Dir, "tmp"))
	if len(entries) != 0 {
		t.Errorf("store tmp not cleaned: %v", entries)
	}
}

func TestVerifyDetectsCorruption(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	dir, lower := newLower(t)
	upper, _ := stageAndBuild(t, lower, filepath.Join(dir, "run"), overlay.Kernel)
	st := &Store{Dir: filepath.Join(dir, "store")}
	art := put(t, st, upper, nil)
	tarb, _ := os.ReadFile(art.TarPath())
	manb, _ := os.ReadFile(art.ManifestPath())
	restore := func() {
		os.WriteFile(art.TarPath(), tarb, 0o644)
		os.WriteFile(art.ManifestPath(), manb, 0o644)
	}
	tests := []struct {
		name    string
		corrupt func()
		want    string
	}{
		{"flipped byte in a file's content", func() {
			b := bytes.Clone(tarb)
			i := bytes.Index(b, []byte("new tool"))
			b[i] = 'N'
			os.WriteFile(art.TarPath(), b, 0o644)
		}, "the artifact is corrupt"},
		{"manifest edited", func() {
			os.WriteFile(art.ManifestPath(), bytes.Replace(manb, []byte(`"0755"`), []byte(`"0777"`), 1), 0o644)
		}, "the artifact is corrupt"},
		{"manifest not JSON", func() {
			os.WriteFile(art.ManifestPath(), []byte("{\n \"version\": 1,\n \"entries\": [}\n"), 0o644)
		}, "line 3, column"},
		{"tarball missing", func() { os.Remove(art.TarPath()) }, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer restore()
			tc.corrupt()
			err := st.Verify(art.Digest)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Verify: %v, want an error containing %q", err, tc.want)
			}
			dst := filepath.Join(t.TempDir(), "dst")
			copyTree(t, lower, dst)
			before := snapshot(t, dst)
			a, gerr := st.Get(art.Digest)
			if gerr == nil {
				if err := Apply(ctx, a, dst); err == nil {
					t.Error("Apply of a corrupt artifact succeeded")
				}
			}
			if diff := cmp.Diff(before, snapshot(t, dst)); diff != "" {
				t.Errorf("Apply of a corrupt artifact touched the tree:\n%s", diff)
			}
		})
	}
	if err := st.Verify(art.Digest); err != nil {
		t.Errorf("restored artifact: %v", err)
	}
}

func TestGetErrors(t *testing.T) {
	st := &Store{Dir: t.TempDir()}
	for _, d := range []string{"", "sha256:", "md5:abc", "sha256:" + strings.Repeat("A", 64), "sha256:" + strings.Repeat("a", 63), "sha256:../../../../etc/passwd" + strings.Repeat("a", 38)} {
		if _, err := st.Get(d); err == nil || !strings.Contains(err.Error(), "64 lower-case hex digits") {
			t.Errorf("Get(%q): %v", d, err)
		}
	}
	_, err := st.Get("sha256:" + strings.Repeat("0", 64))
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of an absent digest: %v, want ErrNotFound", err)
	}
	if _, err := (&Store{Dir: "relative"}).Put(context.Background(), t.TempDir(), nil); err == nil {
		t.Error("Put into a relative store dir succeeded")
	}
}

// Upper layers in the OCI/AUFS convention (fuse-overlayfs without xattr
// support, or layers unpacked from images) mark deletions with .wh. files.
func TestOCIWhiteoutFiles(t *testing.T) {
	upper := t.TempDir()
	testtree.Write(t, filepath.Join(upper, "usr/bin/.wh.tool"), "", 0o644)
	testtree.Write(t, filepath.Join(upper, "usr/share/doc/.wh..wh..opq"), "", 0o644)
	testtree.Write(t, filepath.Join(upper, "usr/share/doc/.wh.ignored"), "", 0o644)
	testtree.Write(t, filepath.Join(upper, "usr/share/doc/c.txt"), "c\n", 0o644)
	testtree.Write(t, filepath.Join(upper, ".wh..wh.plnk/123"), "", 0o644)
	m, err := BuildManifest(context.Background(), upper)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range m.Entries {
		got = append(got, string(e.Type)+" "+e.Path)
	}
	want := []string{"dir usr", "dir usr/bin", "whiteout usr/bin/tool", "dir usr/share", "opaque usr/share/doc", "file usr/share/doc/c.txt"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestUnsupportedUpperContent(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name string
		make func(upper string) error
		want string
	}{
		{"fifo", func(u string) error { return unix.Mkfifo(filepath.Join(u, "x/pipe"), 0o644) }, "x/pipe: unsupported file type"},
		{"device node", func(u string) error {
			return unix.Mknod(filepath.Join(u, "x/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
		}, "x/null: character device 1:3"},
		{"metacopy file", func(u string) error {
			p := filepath.Join(u, "x/meta")
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				return err
			}
			return unix.Setxattr(p, "trusted.overlay.metacopy", nil, 0)
		}, "x/meta: has trusted.overlay.metacopy"},
		{"redirected dir", func(u string) error {
			p := filepath.Join(u, "x/moved")
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			return unix.Setxattr(p, "trusted.overlay.redirect", []byte("/old"), 0)
		}, "x/moved: has trusted.overlay.redirect"},
		{"name not UTF-8", func(u string) error { return os.WriteFile(filepath.Join(u, "x/\xff"), nil, 0o644) }, "not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			upper := t.TempDir()
			if err := os.Mkdir(filepath.Join(upper, "x"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tc.make(upper); err != nil {
				t.Fatal(err)
			}
			_, err := BuildManifest(context.Background(), upper)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), upper) {
				t.Errorf("BuildManifest: %v, want an error naming %s and %q", err, upper, tc.want)
			}
			_, err = (&Store{Dir: filepath.Join(t.TempDir(), "s")}).Put(context.Background(), upper, nil)
			if err == nil {
				t.Error("Put succeeded")
			}
		})
	}
}

// Apply must not write outside the destination, whatever the manifest
// says or whatever symlinks the destination holds.
func TestApplyStaysInside(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	upper := filepath.Join(dir, "upper")
	testtree.Write(t, filepath.Join(upper, "lib/evil.so"), "x\n", 0o644)
	st := &Store{Dir: filepath.Join(dir, "store")}
	art := put(t, st, upper, nil)
	outside := filepath.Join(dir, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "dst")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	// In dst, lib is a symlink leaving the tree. The artifact's "lib" is
	// a directory, so Apply replaces the symlink with a directory.
	if err := os.Symlink(outside, filepath.Join(dst, "lib")); err != nil {
		t.Fatal(err)
	}
	if err := Apply(ctx, art, dst); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(outside, "evil.so")); err == nil {
		t.Error("Apply wrote through a symlink outside the destination")
	}
	if fi, err := os.Lstat(filepath.Join(dst, "lib")); err != nil || !fi.IsDir() {
		t.Errorf("dst/lib: %v, %v; want a directory", fi, err)
	}

	for _, bad := range []string{"../escape", "/abs", "a/../../b", ""} {
		a := art
		a.Manifest = Manifest{Version: 1, Entries: []Entry{{Path: bad, Type: Whiteout}}}
		if err := Apply(ctx, a, dst); err == nil || !strings.Contains(err.Error(), "manifest: entries[0]") {
			t.Errorf("Apply with path %q: %v", bad, err)
		}
	}
}

func TestModeJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mode
		bad  bool
	}{{"0755", 0o755, false}, {"4711", 0o4711, false}, {"0", 0, false}, {"0800", 0, true}, {"17777", 0, true}, {"rwx", 0, true}} {
		var m Mode
		err := m.UnmarshalText([]byte(tc.in))
		if (err != nil) != tc.bad || (!tc.bad && m != tc.want) {
			t.Errorf("Mode(%q) = %o, %v", tc.in, m, err)
		}
	}
	if m := Mode(0o4755).FileMode(); m != fs.ModeSetuid|0o755 {
		t.Errorf("FileMode = %v", m)
	}
}

// setAllMTimes sets the mtime of everything under dir (symlinks
// themselves, not their targets).
func setAllMTimes(t testing.TB, dir string, sec int64) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ts := []unix.Timespec{{Sec: sec}, {Sec: sec}}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		t.Fatal(err)
	}
}

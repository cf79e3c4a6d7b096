package overlay

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// These tests mount real overlays and therefore need root (CI runs them as
// root); for the unprivileged path, TestUserNSAsUnprivilegedUser re-runs
// this test binary as nobody.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("overlay tests mount filesystems and must run as root (CI does)")
	}
}

// makeLower builds a small published tree.
func makeLower(t testing.TB, dir string) {
	t.Helper()
	files := testtree.Prefix()
	files["usr/share/doc/b.txt"] = testtree.File{Content: "b\n"}
	files["usr/bin/tool-link"] = testtree.File{Link: "tool"}
	testtree.Build(t, dir, files)
}

// snapshot describes every path under dir, for comparing trees.
func snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	return testtree.Snapshot(t, dir, false)
}

// lowerIn makes a temporary directory holding the makeLower tree at
// dir/lower.
func lowerIn(t *testing.T) (dir, lower string) {
	t.Helper()
	dir = t.TempDir()
	lower = filepath.Join(dir, "lower")
	makeLower(t, lower)
	return dir, lower
}

// changes is the script each method runs through the merged view: a new
// file, a modified file (copy-up), a deleted file (whiteout), a deleted and
// recreated directory (opaque), a new symlink. It is constant test data,
// passed to sh as a script with the target as "$1".
const changes = `set -e
t="$1"
echo hello > "$t/usr/bin/new"
chmod 0755 "$t/usr/bin/new"
echo "export B=2" >> "$t/etc/profile"
rm "$t/usr/bin/tool"
rm -r "$t/usr/share/doc"
mkdir "$t/usr/share/doc"
echo c > "$t/usr/share/doc/c.txt"
rm -r "$t/var/db/pkg/app-misc/old-1"
ln -s new "$t/usr/bin/new-link"
`

// changedUpper is the upper layer that changes leaves on makeLower (as
// snapshot describes it): whiteouts are 0:0 character devices.
func changedUpper() map[string]string {
	return map[string]string{
		"etc":                       "dir 755",
		"etc/profile":               `file 644 "export A=1\nexport B=2\n"`,
		"usr":                       "dir 755",
		"usr/bin":                   "dir 755",
		"usr/bin/new":               `file 755 "hello\n"`,
		"usr/bin/new-link":          "symlink new",
		"usr/bin/tool":              "chardev 0:0",
		"usr/share":                 "dir 755",
		"usr/share/doc":             "dir 755",
		"usr/share/doc/c.txt":       `file 644 "c\n"`,
		"var":                       "dir 755",
		"var/db":                    "dir 755",
		"var/db/pkg":                "dir 755",
		"var/db/pkg/app-misc":       "dir 755",
		"var/db/pkg/app-misc/old-1": "chardev 0:0",
	}
}

func opaqueXattr(p string) string {
	for _, n := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		buf := make([]byte, 8)
		if sz, err := unix.Lgetxattr(p, n, buf); err == nil {
			return n + "=" + string(buf[:sz])
		}
	}
	return ""
}

func TestMountMethods(t *testing.T) {
	requireRoot(t)
	for _, method := range []Method{Kernel, FUSE, UserNS} {
		t.Run(string(method), func(t *testing.T) {
			ctx := context.Background()
			scratch, lower := lowerIn(t)
			before := snapshot(t, lower)
			o := Options{Lower: []string{lower}, Upper: filepath.Join(scratch, "upper"), Work: filepath.Join(scratch, "work"), Target: filepath.Join(scratch, "merged"), Method: method}
			for _, d := range []string{o.Upper, o.Work, o.Target} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			m, err := New(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Unmount()
			if m.Method() != string(method) {
				t.Errorf("Method() = %q, want %q", m.Method(), method)
			}
			if m.Visible() != (method != UserNS) {
				t.Errorf("Visible() = %v for %s", m.Visible(), method)
			}
			if m.Visible() {
				// The merged view is the lower tree before any change.
				if diff := cmp.Diff(before, snapshot(t, m.Target())); diff != "" {
					t.Errorf("merged view differs from lower (-lower +merged):\n%s", diff)
				}
			}
			cmd, err := m.Command(ctx, "/bin/sh", "-c", changes, "sh", m.Target())
			if err != nil {
				t.Fatal(err)
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("changes through the overlay: %v\n%s", err, out)
			}
			// What the merged view shows after the changes, seen from
			// inside (a second command: the upper persists across
			// namespaces for UserNS).
			cmd, _ = m.Command(ctx, "/bin/sh", "-c", `cat "$1/etc/profile"; ls "$1/usr/share/doc" "$1/usr/bin"; test ! -e "$1/var/db/pkg/app-misc/old-1"`, "sh", m.Target())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("reading the merged view: %v\n%s", err, out)
			}
			wantView := "export A=1\nexport B=2\n" + m.Target() + "/usr/bin:\nnew\nnew-link\ntool-link\n\n" + m.Target() + "/usr/share/doc:\nc.txt\n"
			if got := string(out); got != wantView {
				t.Errorf("merged view:\n%s\nwant:\n%s", got, wantView)
			}
			if err := m.Unmount(); err != nil {
				t.Fatal(err)
			}
			if err := m.Unmount(); err != nil {
				t.Errorf("second Unmount: %v", err)
			}
			if isMountPoint(m.Target()) {
				t.Errorf("%s still mounted", m.Target())
			}
			if diff := cmp.Diff(before, snapshot(t, lower)); diff != "" {
				t.Errorf("lower layer changed (-before +after):\n%s", diff)
			}
			want := changedUpper()
			got := snapshot(t, o.Upper)
			if method == FUSE {
				// fuse-overlayfs (1.10) also marks an opaque directory
				// the AUFS/OCI way, with a .wh..wh..opq file and a
				// .wh..opq whiteout; package artifact understands both.
				for _, k := range []string{"usr/share/doc/.wh..wh..opq", "usr/share/doc/.wh..opq"} {
					if _, ok := got[k]; !ok {
						t.Errorf("fuse-overlayfs upper has no %s", k)
					}
					delete(got, k)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("upper layer (-want +got):\n%s", diff)
			}
			if x := opaqueXattr(filepath.Join(o.Upper, "usr/share/doc")); !strings.HasSuffix(x, "=y") {
				t.Errorf("recreated usr/share/doc: opaque xattr %q, want trusted.overlay.opaque=y or user.overlay.opaque=y", x)
			}
			if x := opaqueXattr(filepath.Join(o.Upper, "usr/bin")); strings.HasSuffix(x, "=y") {
				t.Errorf("usr/bin (merged, not recreated) is opaque: %q", x)
			}
		})
	}
}

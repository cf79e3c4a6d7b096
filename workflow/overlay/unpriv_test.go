package overlay

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const unprivEnv = "OVERLAY_TEST_UNPRIVILEGED_SCRATCH"

// The non-root path for real: this test binary is copied somewhere nobody
// can read it and re-run as nobody (uid 65534), where Detect must pick
// UserNS and a build command must see the overlay.
func TestUserNSAsUnprivilegedUser(t *testing.T) {
	requireRoot(t)
	dir, err := os.MkdirTemp("", "overlay-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "overlay.test")
	if err := copyFile(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	lower := filepath.Join(dir, "lower")
	makeLower(t, lower)
	// The unprivileged bot owns its copy of the published tree; files of
	// other users would be read-only to the build (and show as nobody).
	if out, err := exec.Command("chown", "-R", "-h", "65534:65534", lower).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v\n%s", err, out)
	}
	scratch := filepath.Join(dir, "scratch")
	if err := os.Mkdir(scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(scratch, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestUnprivilegedHelper$", "-test.v", "-test.count=1")
	cmd.Env = []string{unprivEnv + "=" + dir, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestUnprivilegedHelper") {
		t.Fatalf("helper as nobody: %v\n%s", err, out)
	}
	upper := filepath.Join(scratch, "upper")
	want := changedUpper()
	if diff := cmp.Diff(want, snapshot(t, upper)); diff != "" {
		t.Errorf("upper layer written by nobody (-want +got):\n%s", diff)
	}
	if x := opaqueXattr(filepath.Join(upper, "usr/share/doc")); x != "user.overlay.opaque=y" {
		t.Errorf("opaque marker %q, want user.overlay.opaque=y", x)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(upper, "usr/bin/new"), &st); err != nil || st.Uid != 65534 {
		t.Errorf("new file owner uid %d (%v), want 65534 (the invoking user)", st.Uid, err)
	}
}

// TestUnprivilegedHelper is the body of TestUserNSAsUnprivilegedUser; it
// does its work only when that test starts it as nobody.
func TestUnprivilegedHelper(t *testing.T) {
	dir := os.Getenv(unprivEnv)
	if dir == "" {
		return
	}
	if os.Geteuid() == 0 {
		t.Fatal("helper must run unprivileged")
	}
	m, err := Detect()
	if err != nil || m != UserNS {
		t.Fatalf("Detect() as nobody = %q, %v; want userns", m, err)
	}
	mnt, err := Stage(context.Background(), filepath.Join(dir, "lower"), filepath.Join(dir, "scratch"))
	if err != nil {
		t.Fatal(err)
	}
	defer mnt.Unmount()
	if mnt.Method() != "userns" || mnt.Visible() {
		t.Errorf("Method %s, Visible %v", mnt.Method(), mnt.Visible())
	}
	cmd, err := mnt.Command(context.Background(), "/bin/sh", "-c", changes, "sh", mnt.Target())
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("changes: %v\n%s", err, out)
	}
	// Outside the namespace the target is an empty directory.
	if ents, _ := os.ReadDir(mnt.Target()); len(ents) != 0 {
		t.Errorf("merged view visible outside the namespace: %v", ents)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

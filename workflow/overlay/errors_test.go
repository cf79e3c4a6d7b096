package overlay

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/compatbot/compatbot/internal/testtree"
	"golang.org/x/sys/unix"
)

func TestOptionErrors(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"lower", "upper", "work", "merged", "2025.06,linux", "a:b", "upper/inner"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testtree.Write(t, filepath.Join(dir, "file"), "x", 0o644)
	shm := tmpfs(t, filepath.Join(dir, "otherfs"), "size=1m")
	if err := os.Mkdir(filepath.Join(shm, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	j := func(p string) string { return filepath.Join(dir, p) }
	good := Options{Lower: []string{j("lower")}, Upper: j("upper"), Work: j("work"), Target: j("merged")}
	tests := []struct {
		name      string
		edit      func(o *Options)
		field     string
		wantInErr string
	}{
		{"no lower", func(o *Options) { o.Lower = nil }, "Lower", "no lower directory"},
		{"relative lower", func(o *Options) { o.Lower = []string{"lower"} }, "Lower[0]", "not an absolute path"},
		{"comma in lower", func(o *Options) { o.Lower = []string{j("lower"), j("2025.06,linux")} }, "Lower[1]", `contains ','`},
		{"colon in upper", func(o *Options) { o.Upper = j("a:b") }, "Upper", `contains ':'`},
		{"missing work", func(o *Options) { o.Work = j("nope") }, "Work", "does not exist"},
		{"target is a file", func(o *Options) { o.Target = j("file") }, "Target", "not a directory"},
		{"empty target", func(o *Options) { o.Target = "" }, "Target", "empty path"},
		{"work inside upper", func(o *Options) { o.Work = j("upper/inner") }, "Work", "must not be inside Upper"},
		{"work on another filesystem", func(o *Options) { o.Work = filepath.Join(shm, "work") }, "Work", "same filesystem as Upper"},
		{"upper is lower", func(o *Options) { o.Upper = j("lower") }, "Lower[0]", "overlaps Upper"},
		{"unknown method", func(o *Options) { o.Method = "zfs" }, "Method", `unknown method "zfs"`},
		{"options too long", func(o *Options) {
			for range 200 {
				o.Lower = append(o.Lower, j("lower"))
			}
		}, "Lower", "over the kernel's limit of 4095"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			o.Lower = append([]string(nil), good.Lower...)
			tc.edit(&o)
			m, err := New(context.Background(), o)
			if err == nil {
				m.Unmount()
				t.Fatal("New succeeded")
			}
			var oe *OptionError
			if !errors.As(err, &oe) {
				t.Fatalf("error %v is not an *OptionError", err)
			}
			if oe.Field != tc.field || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("error %q (field %s), want field %s and %q", err, oe.Field, tc.field, tc.wantInErr)
			}
		})
	}
}

// tmpfs mounts a fresh tmpfs at dir (created) and unmounts it at cleanup.
func tmpfs(t *testing.T, dir, opts string) string {
	t.Helper()
	requireRoot(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		t.Fatalf("mount tmpfs at %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

func TestUpperWithoutXattrs(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	rfs := filepath.Join(dir, "ramfs")
	if err := os.Mkdir(rfs, 0o755); err != nil {
		t.Fatal(err)
	}
	// ramfs has no extended attributes: the kernel would mount a
	// degraded overlay that cannot mark opaque directories.
	if err := unix.Mount("ramfs", rfs, "ramfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(rfs, unix.MNT_DETACH)
	lower := filepath.Join(dir, "lower")
	makeLower(t, lower)
	for _, method := range []Method{Kernel, UserNS} {
		t.Run(string(method), func(t *testing.T) {
			scratch := filepath.Join(rfs, string(method))
			m, err := stageWith(t, lower, scratch, method)
			if err == nil {
				m.Unmount()
				t.Fatal("mounted an overlay whose upper is on ramfs")
			}
			if !errors.Is(err, ErrUpperUnsupported) || !strings.Contains(err.Error(), "ramfs") || !strings.Contains(err.Error(), scratch+"/upper") {
				t.Errorf("error %q: want ErrUpperUnsupported naming ramfs and the upper dir", err)
			}
		})
	}
}

func stageWith(t *testing.T, lower, scratch string, method Method) (*Mount, error) {
	t.Helper()
	o := Options{Lower: []string{lower}, Upper: filepath.Join(scratch, "upper"), Work: filepath.Join(scratch, "work"), Target: filepath.Join(scratch, "merged"), Method: method}
	for _, d := range []string{o.Upper, o.Work, o.Target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return New(context.Background(), o)
}

// A full upper filesystem: the write through the overlay fails with ENOSPC,
// for the writer in this process and for a build command alike.
func TestUpperDiskFull(t *testing.T) {
	requireRoot(t)
	dir, lower := lowerIn(t)
	small := tmpfs(t, filepath.Join(dir, "small"), "size=1m")
	for _, method := range []Method{Kernel, FUSE, UserNS} {
		t.Run(string(method), func(t *testing.T) {
			m, err := stageWith(t, lower, filepath.Join(small, string(method)), method)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Unmount()
			if m.Visible() {
				big := make([]byte, 2<<20)
				err := os.WriteFile(filepath.Join(m.Target(), "usr/big"), big, 0o644)
				if !errors.Is(err, syscall.ENOSPC) {
					t.Errorf("writing 2 MiB into a 1 MiB upper: %v, want ENOSPC", err)
				}
				os.Remove(filepath.Join(m.Target(), "usr/big"))
			}
			cmd, err := m.Command(context.Background(), "/bin/dd", "if=/dev/zero", "of="+m.Target()+"/usr/big2", "bs=64k", "count=32")
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "No space left on device") {
				t.Errorf("dd 2 MiB into a 1 MiB upper: err %v, output:\n%s", err, out)
			}
			if err := m.Unmount(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestUnmountBusyDetaches(t *testing.T) {
	requireRoot(t)
	for _, method := range []Method{Kernel, FUSE} {
		t.Run(string(method), func(t *testing.T) {
			dir, lower := lowerIn(t)
			m, err := stageWith(t, lower, filepath.Join(dir, "s"), method)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Create(filepath.Join(m.Target(), "etc/open"))
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Unmount(); err != nil {
				t.Fatalf("Unmount with a file open: %v", err)
			}
			if !m.Detached() {
				t.Error("Detached() = false after unmounting a busy overlay")
			}
			if isMountPoint(m.Target()) {
				t.Error("target still mounted after lazy detach")
			}
			// The open file still works and lands in the upper layer.
			if _, err := f.WriteString("still here"); err != nil {
				t.Errorf("write to a file of the detached overlay: %v", err)
			}
			f.Close()
			if err := m.Unmount(); err != nil {
				t.Errorf("second Unmount: %v", err)
			}
		})
	}
}

func TestStage(t *testing.T) {
	requireRoot(t)
	dir, lower := lowerIn(t)
	meth, err := Detect()
	if err != nil || meth != Kernel {
		t.Fatalf("Detect() as root = %q, %v; want kernel", meth, err)
	}
	m, err := Stage(context.Background(), lower, filepath.Join(dir, "run-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unmount()
	if m.Method() != "kernel" || m.Upper() != filepath.Join(dir, "run-1/upper") || m.Target() != filepath.Join(dir, "run-1/merged") {
		t.Errorf("Stage: method %s upper %s target %s", m.Method(), m.Upper(), m.Target())
	}
	b, err := os.ReadFile(filepath.Join(m.Target(), "etc/profile"))
	if err != nil || string(b) != "export A=1\n" {
		t.Errorf("read through the staged overlay: %q, %v", b, err)
	}
	if _, err := Stage(context.Background(), lower, "relative/dir"); err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Errorf("Stage with a relative scratch dir: %v", err)
	}
}

// A runner that builds its own exec.Cmd (clean Env, Dir) calls Prepare:
// the command must see exactly its Env, run in its Dir, and as uid 0 of
// the namespace.
func TestPrepareKeepsCommandSettings(t *testing.T) {
	requireRoot(t)
	dir, lower := lowerIn(t)
	m, err := stageWith(t, lower, filepath.Join(dir, "s"), UserNS)
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command("/bin/sh", "-c", `pwd; echo "ONLY=$ONLY"; env | grep -c COMPATBOT; id -u; test -f "$1/etc/profile"`, "sh", m.Target())
	c.Env = []string{"ONLY=this"}
	c.Dir = lower
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.Prepare(c); err != nil {
		t.Fatal(err)
	}
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if want := lower + "\nONLY=this\n0\n0\n"; string(out) != want {
		t.Errorf("output %q, want %q (cwd, env var, no COMPATBOT_* variable, uid 0)", out, want)
	}
	if !c.SysProcAttr.Setpgid {
		t.Error("Prepare dropped Setpgid")
	}
	if _, err := m.Command(context.Background(), "no-such-command-xyz"); err == nil {
		t.Error("Command with an unknown program succeeded")
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := m.Prepare(exec.Command("/bin/true")); err == nil {
		t.Error("Prepare after Unmount succeeded")
	}
}

package build

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compatbot/compatbot/sets"
)

// newJob returns a job for this machine's arch running a bash script
// written into the test's temp dir.
func newJob(t testing.TB, script string) Job {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"prefix", "work", "distfiles"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sp := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(sp, []byte("#!/bin/bash\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	setFile := filepath.Join(dir, "work", "set")
	if err := os.WriteFile(setFile, []byte("app-shells/bash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Job{
		Target:  sets.Target{Version: "2025.06", OS: "linux", Arch: HostArch()},
		SetName: "eessi-2025.06-linux-" + HostArch(),
		SetFile: setFile,
		Command: []string{sp},
		WorkDir: filepath.Join(dir, "work"),
		Prefix:  filepath.Join(dir, "prefix"),
		DistDir: filepath.Join(dir, "distfiles"),
		LogPath: filepath.Join(dir, "logs", "build.log"),
	}
}

func readLog(t testing.TB, r Result) string {
	t.Helper()
	b, err := os.ReadFile(r.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEnvironmentIsClean(t *testing.T) {
	t.Setenv("COMPATBOT_TEST_SECRET", "s3cret-token")
	t.Setenv("GITHUB_TOKEN", "ghs_leak")
	j := newJob(t, "env\n")
	j.Env = map[string]string{"FEATURES": "-sandbox", "EXTRA": "from config"}
	r := &LocalRunner{}
	res, err := r.Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("result %+v", res)
	}
	log := readLog(t, res)
	for _, leak := range []string{"s3cret-token", "COMPATBOT_TEST_SECRET", "ghs_leak"} {
		if strings.Contains(log, leak) {
			t.Errorf("the bot's environment leaked into the build: %q in\n%s", leak, log)
		}
	}
	want := []string{
		"COMPAT_PREFIX=" + j.Prefix, "COMPAT_SET_FILE=" + j.SetFile, "COMPAT_SET=" + j.SetName,
		"COMPAT_VERSION=2025.06", "COMPAT_OS=linux", "COMPAT_ARCH=" + HostArch(),
		"COMPAT_DISTDIR=" + j.DistDir, "LANG=C.UTF-8", "PATH=" + DefaultPath(j.Prefix),
		"HOME=" + filepath.Join(filepath.Dir(j.LogPath), "home"),
		"FEATURES=-sandbox", "EXTRA=from config",
	}
	for _, w := range want {
		if !strings.Contains(log, "\n"+w+"\n") {
			t.Errorf("build environment lacks %q:\n%s", w, log)
		}
	}
	// env prints a few shell-own variables (PWD, SHLVL, _); anything else is a leak.
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if k, _, ok := strings.Cut(l, "="); ok && envName.MatchString(k) && k != "PWD" && k != "SHLVL" && k != "_" && k != "OLDPWD" {
			n++
		}
	}
	if n != len(want) {
		t.Errorf("build saw %d variables, want exactly %d:\n%s", n, len(want), log)
	}
}

func TestCommandTemplates(t *testing.T) {
	j := newJob(t, `printf '<%s>\n' "$@"; pwd`+"\n")
	j.Command = append(j.Command, "@{{.Set}}", "{{.Version}}/{{.OS}}-{{.Arch}}", "--root={{.Prefix}}", "a b;$(rm -rf /)")
	res, err := (&LocalRunner{}).Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	log := readLog(t, res)
	for _, w := range []string{
		"<@" + j.SetName + ">", "<2025.06/linux-" + HostArch() + ">", "<--root=" + j.Prefix + ">",
		"<a b;$(rm -rf /)>", "\n" + j.WorkDir + "\n",
	} {
		if !strings.Contains(log, w) {
			t.Errorf("log lacks %q:\n%s", w, log)
		}
	}
}

func TestInvalidJobs(t *testing.T) {
	other := "aarch64"
	if HostArch() == other {
		other = "x86_64"
	}
	for _, tc := range []struct {
		name   string
		change func(*Job)
		want   string
	}{
		{"other arch", func(j *Job) { j.Target.Arch = other }, "needs a build host for " + other},
		{"option-like set", func(j *Job) { j.SetName = "--root=/" }, `invalid set name "--root=/"`},
		{"path in version", func(j *Job) { j.Target.Version = "../x" }, "invalid target version"},
		{"empty os", func(j *Job) { j.Target.OS = "" }, "invalid target os"},
		{"empty command", func(j *Job) { j.Command = nil }, "build.command is empty"},
		{"bad template", func(j *Job) { j.Command = []string{"emerge", "@{{.Set"} }, "build.command[1]"},
		{"unknown field", func(j *Job) { j.Command = []string{"emerge", "{{.Secret}}"} }, "build.command[1]"},
		{"reserved env", func(j *Job) { j.Env = map[string]string{"COMPAT_PREFIX": "/"} }, "COMPAT_PREFIX is set by compatbot"},
		{"bad env name", func(j *Job) { j.Env = map[string]string{"A=B": "x"} }, `invalid variable name "A=B"`},
		{"relative prefix", func(j *Job) { j.Prefix = "prefix" }, "prefix must be an absolute path"},
		{"option as removal", func(j *Job) { j.Unmerge = []string{"app-misc/x", "--config-root=/tmp"} }, `package to unmerge "--config-root=/tmp" is not a package atom`},
		{"path as removal", func(j *Job) { j.Unmerge = []string{"/etc/passwd"} }, `package to unmerge "/etc/passwd" is not a package atom`},
		{"missing program", func(j *Job) { j.Command = []string{"no-such-emerge"} }, "no-such-emerge: executable file not found in the build's PATH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJob(t, "exit 0\n")
			tc.change(&j)
			_, err := (&LocalRunner{}).Run(context.Background(), j)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestExitCodeAndTail(t *testing.T) {
	j := newJob(t, "for i in $(seq 1 150); do echo line $i; done; echo oops >&2; exit 3\n")
	res, err := (&LocalRunner{}).Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 3 || res.OK() || res.TimedOut || res.Cancelled {
		t.Fatalf("result %+v, want exit 3", res)
	}
	lines := strings.Split(res.Tail, "\n")
	if len(lines) != TailLines {
		t.Fatalf("tail has %d lines, want %d", len(lines), TailLines)
	}
	if !strings.Contains(res.Tail, "oops") || strings.Contains(res.Tail, "line 40\n") || !strings.HasPrefix(lines[len(lines)-1], "compatbot: exit code 3") {
		t.Errorf("tail:\n%s", res.Tail)
	}
}

// waitGone waits for a process to disappear, a killed group's members
// being reaped by init asynchronously.
func waitGone(t *testing.T, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		// A zombie (state Z) is dead; it only waits for its parent.
		if err != nil || strings.Contains(string(st), ") Z ") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("process %d of the build's group still runs after the build ended", pid)
}

func TestTimeoutKillsTheGroup(t *testing.T) {
	// The child ignores SIGTERM, so only the SIGKILL after the grace stops it.
	j := newJob(t, `(trap '' TERM; sleep 30) & echo $! > "$HOME/child.pid"; echo started; wait`+"\n")
	j.Timeout = 300 * time.Millisecond
	r := &LocalRunner{Grace: 200 * time.Millisecond}
	res, err := r.Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.Cancelled || res.OK() {
		t.Fatalf("result %+v, want timed out", res)
	}
	if res.Duration > 5*time.Second {
		t.Errorf("a 300ms limit took %s", res.Duration)
	}
	if !strings.Contains(res.Tail, "time limit of 300ms reached") {
		t.Errorf("tail:\n%s", res.Tail)
	}
	waitGone(t, filepath.Join(filepath.Dir(j.LogPath), "home", "child.pid"))
}

func TestCancelStopsTheBuild(t *testing.T) {
	j := newJob(t, `sleep 30 & echo $! > "$HOME/child.pid"; echo started; wait`+"\n")
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		// Cancel once the build is really running, as a new push would.
		for i := 0; i < 500; i++ {
			if b, _ := os.ReadFile(j.LogPath); strings.Contains(string(b), "started") {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel(fmt.Errorf("new push abc123"))
	}()
	res, err := (&LocalRunner{Grace: time.Second}).Run(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Cancelled || res.TimedOut {
		t.Fatalf("result %+v, want cancelled", res)
	}
	if !strings.Contains(res.Tail, "build cancelled (new push abc123)") {
		t.Errorf("tail:\n%s", res.Tail)
	}
	waitGone(t, filepath.Join(filepath.Dir(j.LogPath), "home", "child.pid"))
}

func TestLogStreamsWhileRunning(t *testing.T) {
	j := newJob(t, `echo first; while [ ! -e "$HOME/go" ]; do sleep 0.02; done; echo second`+"\n")
	done := make(chan Result, 1)
	go func() {
		res, err := (&LocalRunner{}).Run(context.Background(), j)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	seen := false
	for i := 0; i < 500 && !seen; i++ {
		b, _ := os.ReadFile(j.LogPath)
		seen = strings.Contains(string(b), "first\n")
		time.Sleep(10 * time.Millisecond)
	}
	if !seen {
		t.Fatal("the log did not show the build's output while it ran")
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(j.LogPath), "home", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if !res.OK() || !strings.Contains(res.Tail, "second") {
		t.Fatalf("result %+v", res)
	}
}

func TestSandbox(t *testing.T) {
	// Needs bubblewrap (Debian package "bubblewrap"); CI installs it.
	j := newJob(t, `cat /proc/net/dev; echo > "$COMPAT_PREFIX/written" && echo prefix-writable; `+
		`touch /usr/compatbot-sandbox-test 2>/dev/null || echo host-readonly; echo pid=$$`+"\n")
	j.Sandbox = true
	res, err := (&LocalRunner{}).Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	log := readLog(t, res)
	if !res.OK() {
		t.Fatalf("sandboxed build failed: %+v\n%s", res, log)
	}
	for _, w := range []string{"prefix-writable", "host-readonly", "lo:"} {
		if !strings.Contains(log, w) {
			t.Errorf("sandbox log lacks %q:\n%s", w, log)
		}
	}
	if strings.Contains(log, "eth0") || strings.Contains(log, "ens") {
		t.Errorf("sandbox has a network interface besides lo:\n%s", log)
	}
	// In its own PID namespace the script is one of the first processes
	// (bubblewrap's init is 1); on the host it would be far later.
	if m := regexp.MustCompile(`pid=(\d+)`).FindStringSubmatch(log); m == nil || len(m[1]) > 1 {
		t.Errorf("sandboxed script's pid %v: not in a PID namespace of its own\n%s", m, log)
	}
	if _, err := os.Stat("/usr/compatbot-sandbox-test"); err == nil {
		os.Remove("/usr/compatbot-sandbox-test")
		t.Error("sandboxed build wrote to the host")
	}
	if _, err := os.Stat(filepath.Join(j.Prefix, "written")); err != nil {
		t.Errorf("sandboxed build could not write the Prefix: %v", err)
	}
}

func TestTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	var b strings.Builder
	for i := 1; i <= 20000; i++ {
		fmt.Fprintf(&b, "line %d %s\n", i, strings.Repeat("x", 20))
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Tail(p, 3)
	if err != nil {
		t.Fatal(err)
	}
	x := strings.Repeat("x", 20)
	if want := "line 19998 " + x + "\nline 19999 " + x + "\nline 20000 " + x; got != want {
		t.Errorf("Tail = %q, want %q", got, want)
	}
	// 5,000 lines are about 160 KiB: read in several 64 KiB chunks, which
	// must join without losing or doubling a line at their seams.
	got, err = Tail(p, 5000)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if want := strings.Join(lines[len(lines)-5000:], "\n"); err != nil || got != want {
		t.Errorf("Tail(5000): %v; got %d bytes, want %d", err, len(got), len(want))
	}
}

func TestGentooArch(t *testing.T) {
	for goarch, want := range map[string]string{"amd64": "x86_64", "arm64": "aarch64", "ppc64le": "ppc64le", "riscv64": "riscv64"} {
		if got := GentooArch(goarch); got != want {
			t.Errorf("GentooArch(%s) = %s, want %s", goarch, got, want)
		}
	}
}

// An installer reads files kept beside it (fakeemerge's catalogue); the
// sandbox's private /tmp must not hide them when the checkout is under /tmp.
func TestSandboxSeesFilesBesideProgram(t *testing.T) {
	j := newJob(t, `cat "$(dirname "$0")/beside"`+"\n")
	if err := os.WriteFile(filepath.Join(filepath.Dir(j.Command[0]), "beside"), []byte("catalogue-read\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	j.Sandbox = true
	res, err := (&LocalRunner{}).Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if log := readLog(t, res); !res.OK() || !strings.Contains(log, "catalogue-read") {
		t.Fatalf("sandboxed program could not read the file beside it: %+v\n%s", res, log)
	}
}

// TestMountAt runs the command with the Prefix bind-mounted at its EPREFIX
// in a private mount namespace: the command sees and writes the Prefix
// there (and COMPAT_PREFIX says so), and nothing is mounted there for
// anyone else, during or after the run.
func TestMountAt(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("mounting at the EPREFIX needs root (CI runs as root)")
	}
	for _, tc := range []struct{ sandbox, underWork bool }{{false, false}, {true, false}, {true, true}} {
		sandbox := tc.sandbox
		t.Run(fmt.Sprintf("sandbox=%v_eprefix-in-workdir=%v", sandbox, tc.underWork), func(t *testing.T) {
			if sandbox {
				if _, err := exec.LookPath("bwrap"); err != nil {
					t.Fatal("bubblewrap is needed (Debian package bubblewrap; .ci/run installs it)")
				}
			}
			j := newJob(t, `set -e
echo "prefix=$COMPAT_PREFIX"
cat "$COMPAT_PREFIX/marker"
echo written-at-eprefix > "$COMPAT_PREFIX/installed"
`)
			j.Sandbox = sandbox
			j.MountAt = filepath.Join(t.TempDir(), "cvmfs", "software.eessi.io", "versions", "2025.06", "compat", "linux", HostArch())
			if tc.underWork {
				// The sandbox binds the work dir read-only; the Prefix
				// inside it must stay writable.
				j.MountAt = filepath.Join(j.WorkDir, "cvmfs", "versions", "2025.06", "compat", "linux", HostArch())
			}
			if err := os.WriteFile(filepath.Join(j.Prefix, "marker"), []byte("from-the-overlay\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := (&LocalRunner{}).Run(context.Background(), j)
			if err != nil {
				t.Fatal(err)
			}
			log := readLog(t, res)
			if !res.OK() {
				t.Fatalf("exit %d:\n%s", res.ExitCode, log)
			}
			for _, want := range []string{"prefix=" + j.MountAt + "\n", "from-the-overlay\n", "mounted there in a private mount namespace"} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			if b, err := os.ReadFile(filepath.Join(j.Prefix, "installed")); err != nil || string(b) != "written-at-eprefix\n" {
				t.Errorf("what the build wrote at the EPREFIX is not in the Prefix: %q, %v", b, err)
			}
			if ents, err := os.ReadDir(j.MountAt); err != nil || len(ents) != 0 {
				t.Errorf("outside the build the EPREFIX must be an empty mount point, got %v, %v", ents, err)
			}
		})
	}
}

func TestValidMountAt(t *testing.T) {
	for _, tc := range []struct{ in, wantErr string }{
		{"/cvmfs/software.eessi.io/versions/2025.06/compat/linux/x86_64", ""},
		{"cvmfs/x", "must be an absolute path"},
		{"/cvmfs/x/../y", "is not clean"},
		{"/", "must not be /"},
		{"/cvmfs/a b", "contains whitespace"},
		{"/cvmfs/a:b", "contains whitespace, a quote, '$', ':'"},
	} {
		err := ValidMountAt(tc.in)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("ValidMountAt(%q) = %v, want %q", tc.in, err, tc.wantErr)
		}
	}
}

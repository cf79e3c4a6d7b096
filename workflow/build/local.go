package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// TailLines is how many log lines Result.Tail keeps.
const TailLines = 100

// DefaultGrace is how long a killed build gets between SIGTERM and SIGKILL.
const DefaultGrace = 10 * time.Second

// LocalRunner runs builds on this machine, for its own arch only.
type LocalRunner struct {
	// Arch is the arch this runner builds for; "" means HostArch().
	Arch string
	// Grace between SIGTERM and SIGKILL of the process group; 0 means DefaultGrace.
	Grace time.Duration
	// Bwrap is the bubblewrap binary for sandboxed jobs; "" means "bwrap" on PATH.
	Bwrap string
}

// Run runs the job and waits for it. The error is for runs that could not
// start (invalid job, wrong arch, missing program, unwritable log); how the
// command itself ended is in the Result.
func (r *LocalRunner) Run(ctx context.Context, job Job) (Result, error) {
	arch := r.Arch
	if arch == "" {
		arch = HostArch()
	}
	if err := job.Validate(); err != nil {
		return Result{}, err
	}
	if job.Target.Arch != arch {
		return Result{}, fmt.Errorf("build: this local runner builds %s only; %s needs a build host for %s", arch, job.Target, job.Target.Arch)
	}
	argv, err := job.ExpandCommand()
	if err != nil {
		return Result{}, err
	}
	if job.HomeDir == "" {
		job.HomeDir = filepath.Join(filepath.Dir(job.LogPath), "home")
	}
	if err := os.MkdirAll(job.HomeDir, 0o700); err != nil {
		return Result{}, fmt.Errorf("build: scratch home: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(job.LogPath), 0o755); err != nil {
		return Result{}, fmt.Errorf("build: log dir: %w", err)
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if job.AppendLog {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	logf, err := os.OpenFile(job.LogPath, flags, 0o644)
	if err != nil {
		return Result{}, fmt.Errorf("build: log: %w", err)
	}
	defer logf.Close()

	env := job.Environ()
	path := argv[0]
	if !strings.Contains(path, "/") {
		// Look the program up in the build's PATH, not the bot's.
		if path, err = LookPath(path, envValue(env, "PATH")); err != nil {
			return Result{}, fmt.Errorf("build: %s: %v", argv[0], err)
		}
	}
	prog := argv
	if job.Sandbox {
		bw := r.Bwrap
		if bw == "" {
			bw = "bwrap"
		}
		if bw, err = exec.LookPath(bw); err != nil {
			return Result{}, fmt.Errorf("build: sandbox: %v (install the bubblewrap package)", err)
		}
		prog = append(sandboxArgs(bw, job, path), argv...)
		path = bw
	}
	var sys syscall.SysProcAttr
	// Its own process group, so everything it starts can be killed
	// together and a signal to the bot's group does not reach it.
	sys.Setpgid = true
	where := job.Prefix
	if job.MountAt != "" {
		var spec string
		path, prog, spec = prepareMountNS(&sys, job.Prefix, job.MountAt, path, prog)
		env = append(env[:len(env):len(env)], spec)
		where = job.MountAt + " (" + job.Prefix + " mounted there in a private mount namespace)"
	}
	fmt.Fprintf(logf, "compatbot: building %s in %s\ncompatbot: $ %s\n", job.Target, where, quoteArgv(argv))

	cmd := &exec.Cmd{
		Path:        path,
		Args:        prog,
		Env:         env,
		Dir:         job.WorkDir,
		Stdin:       nil,
		Stdout:      logf,
		Stderr:      logf,
		SysProcAttr: &sys,
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("build: starting %s: %w", prog[0], err)
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var timeout <-chan time.Time
	if job.Timeout > 0 {
		t := time.NewTimer(job.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	res := Result{Argv: argv, LogPath: job.LogPath}
	var waitErr error
	select {
	case waitErr = <-done:
	case <-timeout:
		res.TimedOut = true
		fmt.Fprintf(logf, "\ncompatbot: time limit of %s reached; stopping the build\n", job.Timeout)
		waitErr = r.kill(pgid, done)
	case <-ctx.Done():
		res.Cancelled = true
		fmt.Fprintf(logf, "\ncompatbot: build cancelled (%v); stopping it\n", context.Cause(ctx))
		waitErr = r.kill(pgid, done)
	}
	// Whatever the command left running in its group goes too: a build
	// must not outlive its run and keep writing into the Prefix.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	res.Duration = time.Since(start)
	res.ExitCode = exitCode(waitErr)
	fmt.Fprintf(logf, "compatbot: exit code %d after %s\n", res.ExitCode, res.Duration.Round(time.Millisecond))
	_ = logf.Sync()
	res.Tail, _ = Tail(job.LogPath, TailLines)
	return res, nil
}

// kill stops the whole process group: SIGTERM, then SIGKILL after the grace.
func (r *LocalRunner) kill(pgid int, done <-chan error) error {
	grace := r.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return <-done
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode() // -1 when killed by a signal
	}
	return -1
}

// sandboxArgs is the bubblewrap wrapper: the host read-only, the Prefix,
// home and distdir writable, a private /tmp, no network, its own PID
// namespace so nothing it starts survives it.
func sandboxArgs(bwrap string, j Job, program string) []string {
	a := []string{bwrap,
		"--ro-bind", "/", "/",
		"--dev", "/dev",
		"--proc", "/proc",
		"--tmpfs", "/tmp",
	}
	if filepath.IsAbs(program) {
		// The program and the files beside it (an installer's catalogue,
		// its libraries) may live under the host's /tmp, hidden by the
		// tmpfs. Bound before the writable paths so those win if nested.
		d := filepath.Dir(program)
		a = append(a, "--ro-bind", d, d)
	}
	// Read-only binds first, writable ones last: a later bind covers an
	// earlier one, and a read-only work dir or repository that contains
	// the Prefix (a checkout holding its data dir) must not make the
	// Prefix read-only.
	for _, d := range j.ROBinds {
		a = append(a, "--ro-bind", d, d)
	}
	a = append(a, "--ro-bind", j.WorkDir, j.WorkDir,
		"--bind", j.BuildPrefix(), j.BuildPrefix(),
		"--bind", j.HomeDir, j.HomeDir,
	)
	if j.DistDir != "" {
		a = append(a, "--bind", j.DistDir, j.DistDir)
	}
	for _, d := range j.Binds {
		a = append(a, "--bind", d, d)
	}
	a = append(a, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent")
	return append(a, "--chdir", j.WorkDir, "--")
}

// LookPath finds the executable regular file name in the directories of
// path (a PATH value): exec.LookPath searches the bot's own PATH only.
func LookPath(name, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable file not found in the build's PATH (%s)", path)
}

func envValue(env []string, k string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, k+"="); ok {
			return v
		}
	}
	return ""
}

func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsAny(a, " \t\n\"'\\$`*?[]{}()<>|&;#~") {
			q[i] = a
		} else {
			q[i] = fmt.Sprintf("%q", a)
		}
	}
	return strings.Join(q, " ")
}

// Tail returns the last n lines of a log file, reading only its end so a
// multi-gigabyte build log costs nothing.
func Tail(path string, n int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	const chunk = 64 * 1024
	size := st.Size()
	var buf []byte
	for off := size; off > 0 && bytes.Count(buf, []byte{'\n'}) <= n; {
		step := int64(chunk)
		if off < step {
			step = off
		}
		off -= step
		b := make([]byte, step)
		if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
			return "", err
		}
		buf = append(b, buf...)
		if len(buf) > 4*1024*1024 {
			break
		}
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n"), nil
}

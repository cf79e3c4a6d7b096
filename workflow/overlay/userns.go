package overlay

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// A Go process cannot move itself into a new user namespace (it is
// multi-threaded), and exec.Cmd has no hook between clone and exec. So the
// command is started as this same executable in a new user+mount
// namespace; the init below sees reexecEnv, mounts the overlay there, and
// execs the real command in place. The real argv travels as arguments,
// never through a shell.
const reexecEnv = "COMPATBOT_OVERLAY_USERNS"

type childSpec struct {
	Target string `json:"target"`
	Data   string `json:"data"`
}

func init() {
	spec, ok := os.LookupEnv(reexecEnv)
	if !ok {
		return
	}
	os.Exit(childMain(spec, os.Args))
}

// childMain runs in the re-executed child; it returns only on failure (or
// for the probe, which has no command to run).
func childMain(spec string, args []string) int {
	os.Unsetenv(reexecEnv)
	var s childSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintf(os.Stderr, "compatbot overlay: bad %s: %v\n", reexecEnv, err)
		return 125
	}
	if err := unix.Mount("overlay", s.Target, "overlay", 0, s.Data); err != nil {
		fmt.Fprintf(os.Stderr, "compatbot overlay: mount overlay at %s in a user namespace: %v%s\n", s.Target, err, mountHint(err))
		return 125
	}
	if len(args) < 3 {
		return 0 // probe: the mount worked
	}
	err := unix.Exec(args[1], args[2:], os.Environ())
	fmt.Fprintf(os.Stderr, "compatbot overlay: exec %s: %v\n", args[1], err)
	return 127
}

func prepareUserNS(cmd *exec.Cmd, target, data string) error {
	spec, err := json.Marshal(childSpec{Target: target, Data: data})
	if err != nil {
		return err
	}
	if cmd.Process != nil {
		return errors.New("overlay: Prepare: command already started")
	}
	if cmd.Path != "" && !filepath.IsAbs(cmd.Path) {
		p, err := exec.LookPath(cmd.Path)
		if err != nil {
			return fmt.Errorf("overlay: Prepare: %w", err)
		}
		cmd.Path = p
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	kept := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, reexecEnv+"=") {
			kept = append(kept, kv)
		}
	}
	cmd.Env = append(kept, reexecEnv+"="+string(spec))
	if len(cmd.Args) == 0 {
		cmd.Args = []string{cmd.Path}
	}
	cmd.Args = append([]string{"compatbot-overlay-userns", cmd.Path}, cmd.Args...)
	// /proc/self/exe is resolved in the forked child, so it is this binary
	// even if the file on disk was replaced since it started.
	cmd.Path = "/proc/self/exe"
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	a := cmd.SysProcAttr
	a.Cloneflags |= syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS
	// Only uid 0 inside gets the capabilities mount(2) needs after exec.
	a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
	a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
	a.GidMappingsEnableSetgroups = false
	return nil
}

var (
	usernsOnce sync.Once
	usernsErr  error
)

// userNSAvailable mounts a throwaway overlay in a throwaway namespace,
// once per process.
func userNSAvailable() error {
	usernsOnce.Do(func() { usernsErr = probeUserNS() })
	return usernsErr
}

func probeUserNS() error {
	dir, err := os.MkdirTemp("", "overlay-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	o := Options{
		Lower:  []string{filepath.Join(dir, "l")},
		Upper:  filepath.Join(dir, "u"),
		Work:   filepath.Join(dir, "w"),
		Target: filepath.Join(dir, "m"),
	}
	for _, d := range []string{o.Lower[0], o.Upper, o.Work, o.Target} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	cmd := &exec.Cmd{Path: "/proc/self/exe"}
	if err := prepareUserNS(cmd, o.Target, kernelData(o, true)); err != nil {
		return err
	}
	cmd.Args = cmd.Args[:1] // no command: the child exits 0 after mounting
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("overlay in a user namespace does not work here: %s", msg)
	}
	return nil
}

package build

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A Gentoo Prefix is built for one path: EPREFIX is compiled into programs
// and written into the package database and env files. So a build must run
// with the Prefix at the path it will be published at, while the overlay
// it installs into is mounted at a scratch path. The command is started as
// this same executable in a new mount namespace (exec.Cmd has no hook
// between clone and exec, and a Go process cannot enter a namespace
// itself); the init below sees mountNSEnv, makes every mount private,
// bind-mounts the overlay at MountAt and execs the real argv. No shell, and
// no mount is visible outside the build.
const mountNSEnv = "COMPATBOT_BUILD_MOUNTNS"

type mountSpec struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

func init() {
	spec, ok := os.LookupEnv(mountNSEnv)
	if !ok {
		return
	}
	os.Exit(mountNSMain(spec, os.Args))
}

func mountNSMain(spec string, args []string) int {
	os.Unsetenv(mountNSEnv)
	var s mountSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintf(os.Stderr, "compatbot build: bad %s: %v\n", mountNSEnv, err)
		return 125
	}
	// Private first: otherwise the bind below would propagate back to the
	// host's (shared) mount tree.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fmt.Fprintf(os.Stderr, "compatbot build: making the mount namespace private: %v\n", err)
		return 125
	}
	// The mount point has to exist; on a CVMFS client the published path
	// does, elsewhere it is created (empty) once and left for later builds.
	if err := os.MkdirAll(s.Target, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "compatbot build: creating the EPREFIX mount point %s: %v\n", s.Target, err)
		return 125
	}
	if err := unix.Mount(s.Source, s.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		fmt.Fprintf(os.Stderr, "compatbot build: mounting the Prefix %s at its EPREFIX %s: %v (needs root)\n", s.Source, s.Target, err)
		return 125
	}
	if len(args) < 3 {
		return 0
	}
	err := unix.Exec(args[1], args[2:], os.Environ())
	fmt.Fprintf(os.Stderr, "compatbot build: exec %s: %v\n", args[1], err)
	return 127
}

// prepareMountNS turns (path, argv) into the re-executed child that mounts
// source at target in a new mount namespace and then runs them; envEntry
// carries the spec to the child (the child removes it before the exec).
func prepareMountNS(sys *syscall.SysProcAttr, source, target, path string, argv []string) (newPath string, newArgv []string, envEntry string) {
	spec, _ := json.Marshal(mountSpec{Source: source, Target: target})
	sys.Cloneflags |= syscall.CLONE_NEWNS
	// /proc/self/exe is resolved in the forked child: this binary.
	return "/proc/self/exe", append([]string{"compatbot-build-mountns", path}, argv...), mountNSEnv + "=" + string(spec)
}

// ValidMountAt checks an EPREFIX: absolute, clean, not the root, and free of
// characters that would make it ambiguous in Portage's configuration.
func ValidMountAt(p string) error {
	switch {
	case !filepath.IsAbs(p):
		return fmt.Errorf("build: EPREFIX %q must be an absolute path", p)
	case filepath.Clean(p) != p:
		return fmt.Errorf("build: EPREFIX %q is not clean (want %q)", p, filepath.Clean(p))
	case p == "/":
		return fmt.Errorf("build: EPREFIX must not be /")
	case strings.ContainsAny(p, " \t\n\"'\\$`:,\x00"):
		return fmt.Errorf("build: EPREFIX %q contains whitespace, a quote, '$', ':', ',' or a backslash", p)
	}
	return nil
}

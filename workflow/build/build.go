// Package build runs the configured build command for one target (version,
// os, arch) into a Prefix: with argv only, a clean environment, its own
// process group, a time limit, and its output streamed to a log file.
//
// The Runner interface is the seam for a cluster scheduler: LocalRunner
// builds for the machine's own arch; a runner that dispatches to build
// hosts of other arches can take its place without the pipeline changing.
package build

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/compatbot/compatbot/sets"
)

// Job is one build of one set for one target.
type Job struct {
	Target sets.Target
	// SetName is the set as Portage names it (e.g. "eessi-2025.06-linux-x86_64");
	// SetFile is the absolute path of the proposed set file.
	SetName, SetFile string
	// Command is the argv from the bot's config. Each element is expanded as
	// a text/template with {{.Set}}, {{.Version}}, {{.OS}}, {{.Arch}},
	// {{.Prefix}}, {{.SetFile}} and {{.DistDir}}; no shell ever sees it.
	Command []string
	// Env is extra configuration environment (from the bot's config, never
	// from the PR). Keys must be valid names; COMPAT_* are reserved.
	Env map[string]string
	// WorkDir is the working directory (the checkout of the PR head).
	WorkDir string
	// Prefix is where the build installs (the overlay mount).
	Prefix  string
	DistDir string
	// HomeDir is a scratch HOME; it is created when missing.
	HomeDir string
	// Timeout is the run's time limit; 0 means none besides ctx.
	Timeout time.Duration
	// LogPath receives stdout and stderr as they are produced.
	LogPath string
	// Sandbox runs the command under bubblewrap with no network.
	Sandbox bool
	// MountAt, when set, is the path the Prefix is built for (its
	// EPREFIX, e.g. /cvmfs/software.eessi.io/versions/2026.06/compat/linux/x86_64):
	// the command runs in a private mount namespace where Prefix is
	// bind-mounted there, so what it installs records the real path and
	// nothing outside the build sees the mount. {{.Prefix}} and
	// COMPAT_PREFIX are then MountAt. Needs root (CAP_SYS_ADMIN).
	MountAt string
	// Use are package.use lines of this target (the repo config's
	// targets: entries), for an installer that knows Portage's
	// configuration (workflow/portage).
	Use []string
	// Mask and Unmask are package.mask and package.unmask lines of this
	// target (EESSI's prefix_mask_packages / prefix_unmask_packages), and
	// ExtraSets the "@name" package sets it installs besides SetName: for
	// an installer that knows Portage's configuration (workflow/portage).
	Mask, Unmask, ExtraSets []string
	// Unmerge are the packages this target removes after the install
	// (EESSI's prefix_remove_packages), for an installer that knows
	// Portage. They come from the PR, so each must be an atom (Validate).
	Unmerge []string
	// AppendLog appends to LogPath instead of truncating it (a second
	// command of the same build, e.g. emerge --depclean).
	AppendLog bool
	// Binds are more directories the command writes (a sandbox binds them
	// writable), e.g. Portage's scratch and the distfiles mirror.
	Binds []string
	// ROBinds are directories the command reads that a sandbox's private
	// /tmp could hide (a Portage release, ebuild repositories, the helper
	// programs' executable).
	ROBinds []string
}

// BuildPrefix is the path the command sees the Prefix at: MountAt when
// set, else Prefix.
func (j Job) BuildPrefix() string {
	if j.MountAt != "" {
		return j.MountAt
	}
	return j.Prefix
}

// Result is what a finished build run reports. A command that ran and
// failed is a Result with a non-zero ExitCode, not an error.
type Result struct {
	Argv      []string
	ExitCode  int // -1 when killed by a signal
	Duration  time.Duration
	TimedOut  bool
	Cancelled bool
	LogPath   string
	// Tail is the last TailLines lines of the log, for the check run text.
	Tail string
}

// OK reports a clean success.
func (r Result) OK() bool { return r.ExitCode == 0 && !r.TimedOut && !r.Cancelled }

// Runner builds one job. Implementations must honour ctx cancellation.
type Runner interface {
	Run(ctx context.Context, job Job) (Result, error)
}

// HostArch is the machine's arch with the names Gentoo and EESSI use.
func HostArch() string { return GentooArch(runtime.GOARCH) }

// GentooArch maps a Go GOARCH to the arch name used in set paths.
func GentooArch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "x86"
	}
	// ppc64le, riscv64, s390x are spelled the same.
	return goarch
}

// safeName is what target fields and set names may contain. They come from
// paths in the PR, end up in argv and paths, and must not look like options.
var safeName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]*$`)

// SafeName reports whether s may name a target field, a set or a run: letters,
// digits and ._+-, not starting with - or a dot, and no "..", so that it is
// one path component and cannot be taken for an option.
func SafeName(s string) bool { return safeName.MatchString(s) && !strings.Contains(s, "..") }

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// vars is what command templates can refer to.
type vars struct {
	Set, Version, OS, Arch, Prefix, SetFile, DistDir string
}

// Validate checks a job's PR-derived fields and config before anything runs.
func (j Job) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"target version", j.Target.Version}, {"target os", j.Target.OS},
		{"target arch", j.Target.Arch}, {"set name", j.SetName},
	} {
		if !SafeName(f.v) {
			return fmt.Errorf("build: invalid %s %q: want letters, digits and ._+-, not starting with - or a dot", f.name, f.v)
		}
	}
	if len(j.Command) == 0 {
		return fmt.Errorf("build: build.command is empty")
	}
	for k, v := range j.Env {
		if !envName.MatchString(k) {
			return fmt.Errorf("build: build.env: invalid variable name %q", k)
		}
		if strings.HasPrefix(k, "COMPAT_") {
			return fmt.Errorf("build: build.env: %s is set by compatbot and cannot be configured", k)
		}
		if strings.ContainsRune(v, 0) {
			return fmt.Errorf("build: build.env: %s contains a NUL byte", k)
		}
	}
	for _, p := range []struct{ name, v string }{{"prefix", j.Prefix}, {"set file", j.SetFile}, {"log path", j.LogPath}, {"work dir", j.WorkDir}} {
		if p.v == "" || !strings.HasPrefix(p.v, "/") {
			return fmt.Errorf("build: %s must be an absolute path, got %q", p.name, p.v)
		}
	}
	if j.MountAt != "" {
		if err := ValidMountAt(j.MountAt); err != nil {
			return err
		}
	}
	for _, u := range j.Unmerge {
		// An argument of emerge: an option here ("--config-root=...")
		// would be PR text steering the installer.
		if _, err := sets.ParseAtom(u); err != nil || strings.HasPrefix(u, "-") {
			return fmt.Errorf("build: package to unmerge %q is not a package atom", u)
		}
	}
	return nil
}

// ExpandCommand expands each argv element of the command template. A
// template error names the element, so a config mistake is easy to find.
func (j Job) ExpandCommand() ([]string, error) {
	v := vars{Set: j.SetName, Version: j.Target.Version, OS: j.Target.OS, Arch: j.Target.Arch,
		Prefix: j.BuildPrefix(), SetFile: j.SetFile, DistDir: j.DistDir}
	out := make([]string, len(j.Command))
	for i, el := range j.Command {
		t, err := template.New("").Option("missingkey=error").Parse(el)
		if err != nil {
			return nil, fmt.Errorf("build: build.command[%d] %q: %v", i, el, err)
		}
		var b strings.Builder
		if err := t.Execute(&b, v); err != nil {
			return nil, fmt.Errorf("build: build.command[%d] %q: %v", i, el, err)
		}
		out[i] = b.String()
	}
	if out[0] == "" {
		return nil, fmt.Errorf("build: build.command[0] expands to an empty program name")
	}
	return out, nil
}

// DefaultPath is the PATH a build gets unless the config's env sets one:
// the Prefix's own bin dirs first, then the host's standard ones.
func DefaultPath(prefix string) string {
	return strings.Join([]string{
		prefix + "/usr/bin", prefix + "/bin",
		"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin",
	}, ":")
}

// Environ is the complete environment of the build process: nothing of the
// bot's own environment is inherited, so its secrets cannot leak.
func (j Job) Environ() []string {
	env := map[string]string{
		"PATH":            DefaultPath(j.BuildPrefix()),
		"HOME":            j.HomeDir,
		"LANG":            "C.UTF-8",
		"COMPAT_PREFIX":   j.BuildPrefix(),
		"COMPAT_SET_FILE": j.SetFile,
		"COMPAT_SET":      j.SetName,
		"COMPAT_VERSION":  j.Target.Version,
		"COMPAT_OS":       j.Target.OS,
		"COMPAT_ARCH":     j.Target.Arch,
		"COMPAT_DISTDIR":  j.DistDir,
	}
	for k, v := range j.Env {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// Package overlay stages a writable view of a read-only tree with a real
// Linux overlay mount, so a build can install into the published compat
// layer without copying it: the lower layer (the current published
// revision) is never written, everything the build changes lands in the
// upper directory, and that upper directory is what becomes the artifact
// (see package artifact).
//
// Staging costs one mount(2) call (or one fuse-overlayfs start): it does not
// read the lower tree, so it takes the same time for 1,000 or 100,000 files.
//
// Three methods, chosen once per process by Detect (or forced with
// Options.Method):
//
//   - Kernel: kernel overlayfs mounted by this process. Needs root
//     (CAP_SYS_ADMIN). The mount is visible to every process.
//   - UserNS: kernel overlayfs mounted inside a new user+mount namespace, for
//     unprivileged users (Linux >= 5.11). Such a mount exists only inside
//     that namespace, so the merged view is NOT visible at Target to other
//     processes: run the build with (*Mount).Command or (*Mount).Prepare,
//     which start the command in a fresh namespace with the overlay mounted
//     at Target. Inside, the command runs as uid 0 mapped to the invoking
//     user.
//   - FUSE: the fuse-overlayfs binary (Debian packages fuse-overlayfs and
//     fuse3), unmounted with fusermount3 -u. Needs /dev/fuse. Visible to
//     every process of the user.
//
// Upper and Work must be on one filesystem that supports extended
// attributes (trusted.* as root, user.* in a user namespace) and whiteouts
// (ext4, xfs, btrfs, tmpfs): overlayfs records opaque directories in xattrs,
// and an upper layer without them could not express "this directory replaces
// the published one". New checks this and says so instead of mounting a
// degraded overlay.
package overlay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Method is how an overlay is mounted.
type Method string

const (
	// Auto picks the method Detect reports.
	Auto Method = ""
	// Kernel mounts kernel overlayfs directly (root).
	Kernel Method = "kernel"
	// UserNS mounts kernel overlayfs inside a user namespace per command.
	UserNS Method = "userns"
	// FUSE runs fuse-overlayfs.
	FUSE Method = "fuse-overlayfs"
)

// Options describes one overlay mount. All paths must be absolute, existing
// directories without ',', ':' or '\' (they would break the mount option
// string; such names can come from version or arch names, so they are
// rejected rather than escaped).
type Options struct {
	// Lower are the read-only layers, topmost first. At least one.
	Lower []string
	// Upper receives every change; Work is overlayfs' scratch directory.
	// They must be on the same filesystem, and neither inside the other.
	Upper, Work string
	// Target is where the merged view appears.
	Target string
	// Method forces a mount method; Auto (the zero value) uses Detect.
	Method Method
}

// OptionError says which option is wrong and why.
type OptionError struct {
	Field  string // "Lower[0]", "Upper", "Work", "Target", "Method"
	Path   string
	Reason string
}

func (e *OptionError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("overlay: Options.%s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("overlay: Options.%s %q: %s", e.Field, e.Path, e.Reason)
}

// ErrUpperUnsupported is wrapped by the error New returns when the upper
// directory's filesystem cannot hold what overlayfs records there: extended
// attributes (opaque directories) and whiteouts (deletions).
var ErrUpperUnsupported = errors.New("upper filesystem does not support overlayfs extended attributes or whiteouts")

// Mount is a staged overlay. Unmount it when done; Unmount is idempotent.
type Mount struct {
	opts   Options
	method Method
	data   string // kernel mount data (Kernel, UserNS)

	mu        sync.Mutex
	unmounted bool
	detached  bool
}

// New validates opts and mounts the overlay. For UserNS nothing is mounted
// in this process: the mount is made by each Command in its own namespace.
func New(ctx context.Context, opts Options) (*Mount, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts.Lower = append([]string(nil), opts.Lower...)
	if err := validate(&opts); err != nil {
		return nil, err
	}
	method := opts.Method
	if method == Auto {
		var err error
		if method, err = Detect(); err != nil {
			return nil, err
		}
	}
	data := kernelData(opts, method == UserNS)
	if len(data) > maxMountData {
		return nil, &OptionError{Field: "Lower", Reason: fmt.Sprintf("mount options are %d bytes, over the kernel's limit of %d: use fewer or shorter lower paths", len(data), maxMountData)}
	}
	m := &Mount{opts: opts, method: method}
	switch method {
	case Kernel:
		m.data = data
		if err := checkUpperFS(opts, "trusted.overlay."); err != nil {
			return nil, err
		}
		if err := m.mountKernel(); err != nil {
			// A root without CAP_SYS_ADMIN (some containers) can still
			// use FUSE; only when the caller let us choose.
			if opts.Method == Auto && errors.Is(err, unix.EPERM) && fuseAvailable() == nil {
				m.method, m.data = FUSE, ""
				if ferr := m.mountFUSE(ctx); ferr != nil {
					return nil, fmt.Errorf("%w; fuse-overlayfs fallback: %v", err, ferr)
				}
				return m, nil
			}
			return nil, err
		}
	case UserNS:
		m.data = data
		if err := userNSAvailable(); err != nil {
			return nil, err
		}
		if err := checkUpperFS(opts, "user.overlay."); err != nil {
			return nil, err
		}
	case FUSE:
		if err := fuseAvailable(); err != nil {
			return nil, err
		}
		if err := m.mountFUSE(ctx); err != nil {
			return nil, err
		}
	default:
		return nil, &OptionError{Field: "Method", Reason: fmt.Sprintf("unknown method %q (want %q, %q or %q)", method, Kernel, UserNS, FUSE)}
	}
	return m, nil
}

// Stage creates scratchDir/{upper,work,merged} and mounts lower read-only
// under merged with upper as the writable layer, with the detected method.
func Stage(ctx context.Context, lower, scratchDir string) (*Mount, error) {
	if !filepath.IsAbs(scratchDir) {
		return nil, &OptionError{Field: "scratchDir", Path: scratchDir, Reason: "not an absolute path"}
	}
	o := Options{
		Lower:  []string{lower},
		Upper:  filepath.Join(scratchDir, "upper"),
		Work:   filepath.Join(scratchDir, "work"),
		Target: filepath.Join(scratchDir, "merged"),
	}
	for _, d := range []string{o.Upper, o.Work, o.Target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("overlay: stage: %w", err)
		}
	}
	return New(ctx, o)
}

// Method reports how this overlay is mounted: "kernel", "userns" or
// "fuse-overlayfs".
func (m *Mount) Method() string { return string(m.method) }

// Target is where the merged view is (inside Command's namespace for UserNS).
func (m *Mount) Target() string { return m.opts.Target }

// Upper is the writable layer: the artifact's source after Unmount.
func (m *Mount) Upper() string { return m.opts.Upper }

// Visible reports whether other processes see the merged view at Target
// (false for UserNS: use Command or Prepare).
func (m *Mount) Visible() bool { return m.method != UserNS }

// Detached reports whether Unmount had to lazily detach a busy mount.
func (m *Mount) Detached() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.detached
}

// Command returns a command that runs argv with the merged view at Target.
// For Kernel and FUSE it is a plain exec.CommandContext; for UserNS it runs
// argv in a new user+mount namespace where the overlay is mounted first.
// argv is passed as an argument vector; no shell is involved.
func (m *Mount) Command(ctx context.Context, argv ...string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, errors.New("overlay: Command: empty argv")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if cmd.Err != nil {
		return nil, fmt.Errorf("overlay: Command: %w", cmd.Err)
	}
	if err := m.Prepare(cmd); err != nil {
		return nil, err
	}
	return cmd, nil
}

// Prepare adapts a command built elsewhere (with its own Dir, Env, process
// group, output) so it sees the overlay at Target. It is a no-op for Kernel
// and FUSE. For UserNS it must be called once, after cmd.Path/Args/Env are
// set and before Start; it keeps cmd.SysProcAttr's other settings.
func (m *Mount) Prepare(cmd *exec.Cmd) error {
	if m.method != UserNS {
		return nil
	}
	m.mu.Lock()
	done := m.unmounted
	m.mu.Unlock()
	if done {
		return errors.New("overlay: Prepare: the overlay was unmounted")
	}
	return prepareUserNS(cmd, m.opts.Target, m.data)
}

// Unmount unmounts the overlay. A busy mount (a process still has a file
// open) is detached lazily: it disappears from Target at once and the
// kernel finishes when the last user is gone. Calling Unmount again is a
// no-op. For UserNS there is nothing mounted in this process; each
// namespace's mount ends with its last process.
func (m *Mount) Unmount() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.unmounted {
		return nil
	}
	var err error
	switch m.method {
	case Kernel:
		err = m.unmountKernel()
	case FUSE:
		err = m.unmountFUSE()
	}
	if err == nil {
		m.unmounted = true
	}
	return err
}

func (m *Mount) mountKernel() error {
	err := unix.Mount("overlay", m.opts.Target, "overlay", 0, m.data)
	if err != nil {
		return fmt.Errorf("overlay: mount overlay at %s (lowerdir=%s, upperdir=%s): %w%s",
			m.opts.Target, strings.Join(m.opts.Lower, ":"), m.opts.Upper, err, mountHint(err))
	}
	return nil
}

func mountHint(err error) string {
	switch {
	case errors.Is(err, unix.EPERM):
		return " (needs root with CAP_SYS_ADMIN; use Method userns or fuse-overlayfs otherwise)"
	case errors.Is(err, unix.EINVAL):
		return " (the kernel rejected the options or a layer's filesystem; see dmesg for the overlayfs message)"
	case errors.Is(err, unix.ENODEV):
		return " (kernel has no overlay filesystem; modprobe overlay or use fuse-overlayfs)"
	case errors.Is(err, unix.EBUSY):
		return " (upper or work dir is in use by another overlay mount)"
	}
	return ""
}

func (m *Mount) unmountKernel() error {
	err := unix.Unmount(m.opts.Target, 0)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL):
		// Not a mount point any more: someone else unmounted it.
		return nil
	case errors.Is(err, unix.EBUSY):
		if derr := unix.Unmount(m.opts.Target, unix.MNT_DETACH); derr != nil {
			return fmt.Errorf("overlay: unmount %s: busy, and lazy detach failed: %w", m.opts.Target, derr)
		}
		m.detached = true
		return nil
	}
	return fmt.Errorf("overlay: unmount %s: %w", m.opts.Target, err)
}

// maxMountData is what mount(2) copies of the option string (one page,
// NUL included).
const maxMountData = 4095

// kernelData builds the mount(2) option string. redirect_dir and metacopy
// stay off: with them a renamed directory or a chmod'ed file would be only
// a pointer into the lower layer, and the upper layer would no longer be a
// self-contained artifact.
func kernelData(o Options, userns bool) string {
	if userns {
		// userxattr implies redirect_dir=nofollow (no redirects created)
		// and rejects redirect_dir=off.
		return layerData(o) + ",userxattr,metacopy=off"
	}
	return layerData(o) + ",redirect_dir=off,metacopy=off"
}

// layerData is the lowerdir, upperdir and workdir options, which kernel
// overlayfs and fuse-overlayfs spell the same.
func layerData(o Options) string {
	return "lowerdir=" + strings.Join(o.Lower, ":") + ",upperdir=" + o.Upper + ",workdir=" + o.Work
}

func validate(o *Options) error {
	if len(o.Lower) == 0 {
		return &OptionError{Field: "Lower", Reason: "no lower directory given"}
	}
	check := func(field, p string) (string, error) {
		if p == "" {
			return "", &OptionError{Field: field, Reason: "empty path"}
		}
		if !filepath.IsAbs(p) {
			return "", &OptionError{Field: field, Path: p, Reason: "not an absolute path"}
		}
		if i := strings.IndexAny(p, ",:\\\n"); i >= 0 {
			return "", &OptionError{Field: field, Path: p, Reason: fmt.Sprintf("contains %q at byte %d, which would break the mount options", p[i], i)}
		}
		p = filepath.Clean(p)
		fi, err := os.Stat(p)
		if err != nil {
			return "", &OptionError{Field: field, Path: p, Reason: describe(err)}
		}
		if !fi.IsDir() {
			return "", &OptionError{Field: field, Path: p, Reason: "not a directory"}
		}
		return p, nil
	}
	var err error
	for i := range o.Lower {
		if o.Lower[i], err = check(fmt.Sprintf("Lower[%d]", i), o.Lower[i]); err != nil {
			return err
		}
	}
	if o.Upper, err = check("Upper", o.Upper); err != nil {
		return err
	}
	if o.Work, err = check("Work", o.Work); err != nil {
		return err
	}
	if o.Target, err = check("Target", o.Target); err != nil {
		return err
	}
	if isMountPoint(o.Target) {
		return &OptionError{Field: "Target", Path: o.Target, Reason: "already a mount point (left by an earlier run? RemoveScratch detaches it)"}
	}
	if within(o.Upper, o.Work) || within(o.Work, o.Upper) {
		return &OptionError{Field: "Work", Path: o.Work, Reason: fmt.Sprintf("must not be inside Upper %q or contain it", o.Upper)}
	}
	for i, l := range o.Lower {
		if within(o.Upper, l) || within(l, o.Upper) {
			return &OptionError{Field: fmt.Sprintf("Lower[%d]", i), Path: l, Reason: fmt.Sprintf("overlaps Upper %q", o.Upper)}
		}
	}
	var su, sw unix.Stat_t
	if err := unix.Stat(o.Upper, &su); err != nil {
		return &OptionError{Field: "Upper", Path: o.Upper, Reason: describe(err)}
	}
	if err := unix.Stat(o.Work, &sw); err != nil {
		return &OptionError{Field: "Work", Path: o.Work, Reason: describe(err)}
	}
	if su.Dev != sw.Dev {
		return &OptionError{Field: "Work", Path: o.Work, Reason: fmt.Sprintf("must be on the same filesystem as Upper %q", o.Upper)}
	}
	if err := unix.Access(o.Upper, unix.W_OK); err != nil {
		return &OptionError{Field: "Upper", Path: o.Upper, Reason: "not writable: " + describe(err)}
	}
	return nil
}

func describe(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, os.ErrNotExist) {
		return "does not exist"
	}
	return err.Error()
}

func within(dir, p string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

// checkUpperFS sets and removes a probe xattr in the prefix overlayfs will
// use on the work directory (same filesystem as upper). The kernel would
// otherwise mount anyway, in a degraded mode where removing and recreating
// a published directory cannot be recorded.
func checkUpperFS(o Options, prefix string) error {
	name := prefix + "compatbot-probe"
	err := unix.Setxattr(o.Work, name, []byte("y"), 0)
	if err == nil {
		_ = unix.Removexattr(o.Work, name)
		if os.Geteuid() != 0 {
			return nil
		}
		// Deletions are 0/0 character devices in the upper layer.
		wh := filepath.Join(o.Work, ".compatbot-whiteout-probe")
		_ = unix.Unlink(wh)
		if err = unix.Mknod(wh, unix.S_IFCHR, 0); err == nil { // mode 0, device 0/0
			_ = unix.Unlink(wh)
			return nil
		}
		return fmt.Errorf("overlay: Options.Upper %q: cannot create whiteouts (0/0 character devices) on its filesystem (%v): %w", o.Upper, err, ErrUpperUnsupported)
	}
	fs := "unknown"
	var st unix.Statfs_t
	if unix.Statfs(o.Upper, &st) == nil {
		fs = fsName(st.Type)
	}
	return fmt.Errorf("overlay: Options.Upper %q is on a %s filesystem where %s* extended attributes fail (%v): %w; put the scratch directory on ext4, xfs, btrfs or tmpfs",
		o.Upper, fs, prefix, err, ErrUpperUnsupported)
}

func fsName(t int64) string {
	switch t {
	case unix.EXT4_SUPER_MAGIC:
		return "ext2/3/4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.RAMFS_MAGIC:
		return "ramfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlay"
	case unix.NFS_SUPER_MAGIC:
		return "nfs"
	case unix.FUSE_SUPER_MAGIC:
		return "fuse"
	case unix.MSDOS_SUPER_MAGIC:
		return "vfat"
	}
	return fmt.Sprintf("type 0x%x", t)
}

// Detect reports the method Auto uses, probing once per process: Kernel
// for root, else UserNS when an unprivileged overlay mount works in a user
// namespace, else FUSE when fuse-overlayfs and /dev/fuse are present.
func Detect() (Method, error) {
	detectOnce.Do(func() { detected, detectErr = detect() })
	return detected, detectErr
}

var (
	detectOnce sync.Once
	detected   Method
	detectErr  error
)

func detect() (Method, error) {
	if os.Geteuid() == 0 && kernelHasOverlay() {
		return Kernel, nil
	}
	var reasons []string
	if os.Geteuid() == 0 {
		reasons = append(reasons, "kernel: no overlay in /proc/filesystems")
	} else {
		reasons = append(reasons, "kernel: not root")
	}
	uerr := userNSAvailable()
	if uerr == nil {
		return UserNS, nil
	}
	reasons = append(reasons, "userns: "+uerr.Error())
	ferr := fuseAvailable()
	if ferr == nil {
		return FUSE, nil
	}
	reasons = append(reasons, "fuse-overlayfs: "+ferr.Error())
	return "", fmt.Errorf("overlay: no mount method works here (%s)", strings.Join(reasons, "; "))
}

func kernelHasOverlay() bool {
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return true // let mount(2) give the real error
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(strings.TrimPrefix(line, "nodev")) == "overlay" {
			return true
		}
	}
	return false
}

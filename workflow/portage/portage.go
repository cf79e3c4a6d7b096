// Package portage prepares and runs Gentoo's real package manager against a
// Prefix: an unpacked Portage release (never installed on the host), the
// ebuild repositories given to the build, the profile, the set as a Portage
// user set and the per-target package.mask/unmask/use, all as
// ../shared/portage/README.md verified for Portage 3.0.82 running
// uninstalled.
//
// What Portage needs only for the build (its scratch dirs, distdir, the
// gtar helper) lives in a work directory outside the Prefix and is
// configured through the environment, so the Prefix's own etc/portage
// keeps only what belongs to the Prefix: the set, the package.* files.
package portage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/compatbot/compatbot/workflow/artifact"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/build"
)

// Release is a Portage release ready to run uninstalled: Dir holds bin/,
// lib/, cnf/ and the .portage_not_installed marker that makes Portage take
// its paths from the tree. A zero Release means the Portage installed in
// the Prefix (its usr/bin/emerge), as on a published EESSI compat layer.
type Release struct{ Dir string }

// Installed reports whether the Prefix's own Portage is used.
func (r Release) Installed() bool { return r.Dir == "" }

// Unpack makes src usable: an unpacked tree is checked and used in place; a
// tarball is unpacked once under cacheDir/portage/<sha256 of the tarball>/
// and reused by later builds (concurrent callers each unpack into a temporary
// directory and the first rename wins). "" is the Prefix's installed Portage.
func Unpack(ctx context.Context, src, cacheDir string) (Release, error) {
	if src == "" {
		return Release{}, nil
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return Release{}, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return Release{}, fmt.Errorf("portage: release %s: %w", src, err)
	}
	if st.IsDir() {
		return checkTree(abs)
	}
	sum, err := artifact.FileSHA256(abs)
	if err != nil {
		return Release{}, fmt.Errorf("portage: release %s: %w", src, err)
	}
	final := filepath.Join(cacheDir, "portage", sum[:32])
	if r, err := unpacked(final); err == nil {
		return r, nil
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return Release{}, fmt.Errorf("portage: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(final), ".unpack-")
	if err != nil {
		return Release{}, fmt.Errorf("portage: %w", err)
	}
	defer os.RemoveAll(tmp)
	// GNU tar picks the decompressor from the file's contents (xz, gzip,
	// bzip2), so any of upstream's formats works.
	out, err := exec.CommandContext(ctx, "tar", "-xf", abs, "-C", tmp, "--no-same-owner").CombinedOutput()
	if err != nil {
		return Release{}, fmt.Errorf("portage: unpacking %s: %v: %s", src, err, strings.TrimSpace(string(out)))
	}
	if _, err := unpacked(tmp); err != nil {
		return Release{}, fmt.Errorf("portage: %s: %v", src, err)
	}
	if err := os.Rename(tmp, final); err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, errNotEmpty) {
		return Release{}, fmt.Errorf("portage: %w", err)
	}
	return unpacked(final)
}

var errNotEmpty = errors.New("directory not empty")

// unpacked finds the release tree in dir: dir itself or its only
// top-level directory (tarballs carry portage-<version>/).
func unpacked(dir string) (Release, error) {
	if r, err := checkTree(dir); err == nil {
		return r, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return Release{}, err
	}
	if len(ents) != 1 || !ents[0].IsDir() {
		return Release{}, fmt.Errorf("no Portage tree (bin/emerge) in %s", dir)
	}
	return checkTree(filepath.Join(dir, ents[0].Name()))
}

func checkTree(dir string) (Release, error) {
	for _, f := range []string{"bin/emerge", "cnf/make.globals", ".portage_not_installed"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return Release{}, fmt.Errorf("portage: %s is not a Portage release tree: no %s (want an unpacked release with .portage_not_installed, or its tarball)", dir, f)
		}
	}
	return Release{Dir: dir}, nil
}

// Repo is an ebuild repository.
type Repo struct {
	Name string // profiles/repo_name
	Dir  string // absolute
}

// OpenRepo reads an ebuild repository's name.
func OpenRepo(dir string) (Repo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Repo{}, err
	}
	b, err := os.ReadFile(filepath.Join(abs, "profiles", "repo_name"))
	if err != nil {
		return Repo{}, fmt.Errorf("portage: ebuild repository %s: %w (every repository names itself in profiles/repo_name)", dir, err)
	}
	name := strings.TrimSpace(string(b))
	if !validRepoName(name) {
		return Repo{}, fmt.Errorf("portage: %s/profiles/repo_name: invalid repository name %q (letters, digits, _ and -, not starting with -)", dir, name)
	}
	return Repo{Name: name, Dir: abs}, nil
}

// validRepoName is PMS's repository name rule.
func validRepoName(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// StableProfile is the first profile profiles.desc marks stable, for arch
// when arch is not "" (Gentoo's keyword, e.g. amd64).
func (r Repo) StableProfile(arch string) (string, error) {
	p := filepath.Join(r.Dir, "profiles", "profiles.desc")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("portage: repository %s: no profile given and %w", r.Name, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return "", fmt.Errorf("portage: %s:%d: want \"ARCH PROFILE STATUS\", got %q", p, n, sc.Text())
		}
		if f[2] == "stable" && (arch == "" || f[0] == arch) {
			dir := filepath.Join(r.Dir, "profiles", filepath.FromSlash(f[1]))
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				return "", fmt.Errorf("portage: %s:%d: profile %s is not a directory", p, n, f[1])
			}
			return dir, nil
		}
	}
	return "", fmt.Errorf("portage: %s: no stable profile%s; give one (--profile)", p, forArch(arch))
}

func forArch(a string) string {
	if a == "" {
		return ""
	}
	return " for " + a
}

// KeywordArch is Gentoo's arch keyword for an EESSI arch name.
func KeywordArch(arch string) string {
	switch arch {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "ppc64le":
		return "ppc64"
	}
	return arch
}

// Config is one build's Portage setup.
type Config struct {
	Release Release
	// Repos are the ebuild repositories; the first is the main one.
	Repos []Repo
	// Profile is the profile directory etc/portage/make.profile links to;
	// "" keeps the Prefix's own (an error when it has none).
	Profile string
	// EPrefix is the path the Prefix is built for and mounted at during
	// the build (PORTAGE_OVERRIDE_EPREFIX).
	EPrefix string
	// WorkDir holds what Portage needs outside the Prefix: distdir/, tmp/,
	// pkgdir/ and bin/ (gtar and the fetch refusal).
	WorkDir string
	// Mirror is the directory of verified distfiles emerge may take sources
	// from (GENTOO_MIRRORS as a local path). Nothing else is fetched.
	Mirror string
	// Mask, Unmask and Use are lines for etc/portage/package.mask,
	// package.unmask and package.use (from the repo config, per target).
	Mask, Unmask, Use []string
	// fetchHelper: FETCHCOMMAND is FetchHelper (Runner with a Mirror)
	// rather than the refusal.
	fetchHelper bool
}

// Features are the FEATURES compatbot builds with, each removing a
// failure or noise seen running uninstalled on a Debian host (see
// ../shared/portage/README.md): no Gentoo sandbox binary, the host's libc
// not in the Prefix's VDB, and a background fetcher racing the build.
const Features = "-sandbox -usersandbox -ipc-sandbox -network-sandbox -pid-sandbox -qa-unresolved-soname-deps -parallel-fetch"

// Env is the environment emerge needs besides PATH/HOME/LANG: the prefix,
// the repositories, the scratch paths outside the Prefix and the mirror.
// Portage reads these from the environment ahead of make.conf, so the
// Prefix's make.conf stays as published.
func (c Config) Env() map[string]string {
	usr, grp := "root", "root"
	if u, err := user.Current(); err == nil {
		usr = u.Username
		if g, err := user.LookupGroupId(u.Gid); err == nil {
			grp = g.Name
		}
	}
	var rc strings.Builder
	fmt.Fprintf(&rc, "[DEFAULT]\nmain-repo = %s\n", c.Repos[0].Name)
	for _, r := range c.Repos {
		fmt.Fprintf(&rc, "[%s]\nlocation = %s\n", r.Name, r.Dir)
	}
	w := c.WorkDir
	fetch := filepath.Join(w, "bin", NoFetch) + ` "${URI}" "${FILE}"`
	if c.fetchHelper {
		fetch = filepath.Join(w, "bin", FetchHelper) + ` "${URI}" "${DISTDIR}" "${FILE}"`
	}
	env := map[string]string{
		"PORTAGE_REPOSITORIES": rc.String(),
		"PORTAGE_USERNAME":     usr,
		"PORTAGE_GRPNAME":      grp,
		"FEATURES":             Features,
		"DISTDIR":              filepath.Join(w, "distdir"),
		"PORTAGE_TMPDIR":       filepath.Join(w, "tmp"),
		"PKGDIR":               filepath.Join(w, "pkgdir"),
		// A plain absolute path is a local mirror with the files in it.
		"GENTOO_MIRRORS": c.Mirror,
		"ACCEPT_LICENSE": "*",
		// The log is read by people and by the failure parser: no colour.
		"NOCOLOR": "true",
		// Portage's pauses for a person at the keyboard: none here.
		"CLEAN_DELAY":          "0",
		"EMERGE_WARNING_DELAY": "0",
		// Anything not in the mirror would be fetched from SRC_URI with
		// these: without compatbot's mirror the helper refuses, naming the
		// file; with it, FetchHelper brings the file into the mirror.
		"FETCHCOMMAND":  fetch,
		"RESUMECOMMAND": fetch,
		"PATH":          Path(w, c.EPrefix),
	}
	if !c.Release.Installed() {
		env["PORTAGE_OVERRIDE_EPREFIX"] = c.EPrefix
	}
	return env
}

// NoFetch is the helper Portage calls instead of wget.
const NoFetch = "compatbot-no-upstream"

// Path is the build's PATH: the helpers (gtar) first, then the Prefix's
// bin dirs, then the host's.
func Path(workDir, eprefix string) string {
	return strings.Join([]string{filepath.Join(workDir, "bin"),
		eprefix + "/usr/bin", eprefix + "/bin",
		"/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}, ":")
}

// Emerge is the argv that runs emerge with args: the release's
// bin/emerge under python3, or the Prefix's installed emerge.
func (c Config) Emerge(args ...string) []string {
	if c.Release.Installed() {
		return append([]string{"emerge"}, args...)
	}
	return append([]string{"python3", filepath.Join(c.Release.Dir, "bin", "emerge")}, args...)
}

// InstallArgs and DepcleanArgs are the two emerge runs of a build: bring
// the set up to date (recording it in the world file, as EESSI's playbooks
// do), then remove what nothing needs any more (packages the PR dropped).
var (
	InstallArgs  = []string{"--ask=n", "--verbose", "--update", "--deep", "--newuse", "@{{.Set}}"}
	DepcleanArgs = []string{"--ask=n", "--depclean"}
	// UnmergeArgs precede the target's removals (build.Job.Unmerge), which
	// are validated atoms; "--" keeps them arguments all the same.
	UnmergeArgs = []string{"--ask=n", "--unmerge", "--"}
)

// Prepare writes the build's configuration: into root (the Prefix as this
// process sees it, the overlay's merged view) the user set
// etc/portage/sets/<setName>, the make.profile link and the package.*
// lines; into WorkDir the scratch dirs and helper programs.
func (c Config) Prepare(root, setName, setFile string) error {
	if len(c.Repos) == 0 {
		return errors.New("portage: no ebuild repository given")
	}
	w := c.WorkDir
	for _, d := range []string{"bin", "distdir", "tmp", "pkgdir"} {
		if err := os.MkdirAll(filepath.Join(w, d), 0o755); err != nil {
			return fmt.Errorf("portage: work dir: %w", err)
		}
	}
	// Portage 3.0.82 unpacks and packs with the command "gtar", which
	// Debian does not have.
	tar, err := exec.LookPath("tar")
	if err != nil {
		return fmt.Errorf("portage: GNU tar is needed: %w", err)
	}
	if err := replaceSymlink(tar, filepath.Join(w, "bin", "gtar")); err != nil {
		return err
	}
	noFetch := "#!/bin/sh\n# Portage runs this instead of wget: sources come from compatbot's mirror only.\n" +
		"echo \"compatbot: not fetching $1: $2 is not in compatbot's distfiles mirror (sources are fetched only from the mirror)\" >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(w, "bin", NoFetch), []byte(noFetch), 0o755); err != nil {
		return err
	}
	if c.fetchHelper {
		// This executable answers as FetchHelper when called by that name.
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("portage: %w", err)
		}
		if err := replaceSymlink(self, filepath.Join(w, "bin", FetchHelper)); err != nil {
			return err
		}
	}
	ep := filepath.Join(root, "etc", "portage")
	if err := os.MkdirAll(filepath.Join(ep, "sets"), 0o755); err != nil {
		return fmt.Errorf("portage: %w", err)
	}
	set, err := os.ReadFile(setFile)
	if err != nil {
		return fmt.Errorf("portage: set file: %w", err)
	}
	if err := os.WriteFile(filepath.Join(ep, "sets", setName), set, 0o644); err != nil {
		return fmt.Errorf("portage: %w", err)
	}
	if c.Profile != "" {
		if err := replaceSymlink(c.Profile, filepath.Join(ep, "make.profile")); err != nil {
			return err
		}
	} else if _, err := os.Stat(filepath.Join(ep, "make.profile")); err != nil {
		return fmt.Errorf("portage: no profile: the Prefix has no etc/portage/make.profile and none was given")
	}
	for _, f := range []struct {
		name  string
		lines []string
	}{{"package.mask", c.Mask}, {"package.unmask", c.Unmask}, {"package.use", c.Use}} {
		if err := writePackageFile(filepath.Join(ep, f.name), f.lines); err != nil {
			return err
		}
	}
	if !c.Release.Installed() {
		// An installed Portage puts its set definitions here; without them
		// emerge warns "incomplete set configuration" for @world.
		dst := filepath.Join(root, SetsConf)
		if _, err := os.Stat(dst); errors.Is(err, fs.ErrNotExist) {
			b, err := os.ReadFile(filepath.Join(c.Release.Dir, "cnf", "sets", "portage.conf"))
			if err != nil {
				return fmt.Errorf("portage: %w", err)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// SetsConf is where an installed Portage keeps its set definitions.
const SetsConf = "usr/share/portage/config/sets/portage.conf"

// writePackageFile writes lines into a package.* file, or into a file
// "compatbot" when the Prefix has package.* as a directory. No lines
// leaves the Prefix's file alone.
func writePackageFile(p string, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	for i, l := range lines {
		if strings.ContainsAny(l, "\n\r\x00") {
			return fmt.Errorf("portage: %s line %d: %q contains a line break or NUL", filepath.Base(p), i+1, l)
		}
	}
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		p = filepath.Join(p, "compatbot")
	}
	body := "# Written by compatbot from the repository config for this target.\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		return fmt.Errorf("portage: %w", err)
	}
	return nil
}

func replaceSymlink(target, link string) error {
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	_ = os.Remove(link)
	if err := os.Symlink(target, link); err != nil {
		return fmt.Errorf("portage: %w", err)
	}
	return nil
}

// KeptOut are the paths (relative to the Prefix) that Portage or compatbot
// write during a build but that are not part of the artifact: logs and
// caches of this build host, scratch dirs, and the helper configuration
// that points outside the Prefix (make.profile links to the build's copy
// of the repository; portage.conf belongs to an installed Portage). They
// are removed from the upper layer after the build, so the published
// version (if any) shows through unchanged. The world file, etc/env.d,
// profile.env and the VDB stay: they are the Prefix.
var KeptOut = []string{
	"var/log/emerge.log",
	"var/log/emerge-fetch.log",
	"var/log/portage",
	"var/cache/edb",
	"tmp",
	"var/tmp",
	"etc/portage/make.profile",
	SetsConf,
}

// Scrub removes KeptOut from an unmounted overlay's upper directory.
// Removing an upper entry reverts the path to the lower layer's version,
// so nothing the published tree had is deleted.
func Scrub(upper string, paths []string) ([]string, error) {
	var removed []string
	for _, p := range paths {
		full := filepath.Join(upper, filepath.FromSlash(p))
		if _, err := os.Lstat(full); err != nil {
			continue
		}
		if err := os.RemoveAll(full); err != nil {
			return removed, fmt.Errorf("portage: keeping %s out of the artifact: %w", p, err)
		}
		removed = append(removed, p)
	}
	// Directories left empty by the removals (var/log, var/cache) are
	// still copy-ups of the lower's or new; an empty new dir would be an
	// artifact entry for nothing, so drop those too.
	for _, d := range []string{"var/log", "var/cache", "usr/share/portage/config/sets", "usr/share/portage/config", "usr/share/portage"} {
		full := filepath.Join(upper, d)
		if ents, err := os.ReadDir(full); err == nil && len(ents) == 0 {
			if os.Remove(full) == nil {
				removed = append(removed, d)
			}
		}
	}
	sort.Strings(removed)
	return removed, nil
}

// DefaultEPrefix is where EESSI publishes a target's compat layer, as a
// template of the target's {{.Version}}, {{.OS}} and {{.Arch}}.
const DefaultEPrefix = "/cvmfs/software.eessi.io/versions/{{.Version}}/compat/{{.OS}}/{{.Arch}}"

// ExpandEPrefix fills an EPREFIX template for a target. An unknown field
// or a result that is no usable EPREFIX is an error naming the template.
func ExpandEPrefix(tmpl string, t sets.Target) (string, error) {
	if tmpl == "" {
		tmpl = DefaultEPrefix
	}
	tp, err := template.New("eprefix").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("portage: EPREFIX template %q: %v", tmpl, err)
	}
	var b strings.Builder
	if err := tp.Execute(&b, t); err != nil {
		return "", fmt.Errorf("portage: EPREFIX template %q: %v", tmpl, err)
	}
	if err := build.ValidMountAt(b.String()); err != nil {
		return "", fmt.Errorf("portage: EPREFIX template %q for %s: %v", tmpl, t, err)
	}
	return b.String(), nil
}

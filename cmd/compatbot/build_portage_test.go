package main

// compatbot build with real Portage (../shared/portage, unmodified) on
// compatbot's test ebuild repository, through a real overlay at a real
// EPREFIX, as root (CI runs as root).

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/portage"
)

const (
	sharedPortage = "../../../shared/portage/portage-3.0.82.tar.xz"
	portageRepo   = "../../testdata/portage/repo"
	portageDist   = "../../testdata/portage/distfiles"
	portageSets   = "../../testdata/portage/sets"
)

func TestBuildCmdPortageUsage(t *testing.T) {
	data := t.TempDir()
	set := filepath.Join(portageSets, "base")
	tgt := "2026.06/linux-" + build.HostArch()
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"portage without repo", []string{"--portage", sharedPortage}, "--portage, --distfiles and --profile need --ebuild-repo"},
		{"missing repo", []string{"--ebuild-repo", "/nonexistent/repo"}, "--ebuild-repo: portage: ebuild repository /nonexistent/repo: open /nonexistent/repo/profiles/repo_name"},
		{"command and repo", []string{"--ebuild-repo", portageRepo, "--command", "true"}, "--command and --ebuild-repo exclude each other"},
		{"not a release", []string{"--ebuild-repo", portageRepo, "--portage", portageRepo}, "--portage: portage: " + mustAbs(t, portageRepo) + " is not a Portage release tree"},
		{"bad eprefix field", []string{"--ebuild-repo", portageRepo, "--eprefix", "/cvmfs/{{.Nope}}"}, `--eprefix: portage: EPREFIX template "/cvmfs/{{.Nope}}"`},
		{"relative eprefix", []string{"--ebuild-repo", portageRepo, "--eprefix", "versions/{{.Version}}"}, `EPREFIX "versions/2026.06" must be an absolute path`},
		{"missing profile", []string{"--ebuild-repo", portageRepo, "--profile", "/nonexistent"}, "--profile /nonexistent: not a directory"},
		{"missing distfiles", []string{"--ebuild-repo", portageRepo, "--distfiles", "/nonexistent"}, "--distfiles /nonexistent: not a directory or an http(s) URL"},
		{"bad tool", []string{"--ebuild-repo", portageRepo, "--tools", "a,,b"}, `--tools "a,,b": "" is not a tool name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"--data-dir", data, "--set", set, "--target", tgt}, tc.args...)
			if code := buildCmd(args, &out, &errb); code != 2 {
				t.Fatalf("exit %d, want 2\n%s%s", code, out.String(), errb.String())
			}
			if !strings.Contains(errb.String(), tc.err) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.err)
			}
		})
	}
	var out bytes.Buffer
	buildCmd([]string{"--help"}, &out, &out)
	if !strings.Contains(out.String(), "default "+portage.DefaultEPrefix) || !strings.Contains(out.String(), "--ebuild-repo REPO") {
		t.Errorf("--help does not state the EPREFIX:\n%s", out.String())
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestCheckExampleRealPortage runs the whole PR cycle of check --example
// on real Portage: the real-Portage example's base (libgreet and hello)
// built from source into an empty tree through compatbot build's pipeline
// (buildOne with --portage's options) and published to both targets, the
// PR (adds oldtool) built by the server's lifecycle code with the runner
// and build config the server's build: keys give (portageBuild), deployed
// to test and to production. It is the one real-emerge test of this
// package, so it also checks what compatbot build --portage records
// (results.json, the unpacked release, the mirror); sandboxed when
// bubblewrap is installed (CI installs it). About 45 s, most of it
// Portage's own per-package work (three packages, two emerge runs).
func TestCheckExampleRealPortage(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("needs root: overlay and mount namespace (CI runs as root)")
	}
	if build.HostArch() != "x86_64" {
		t.Skip("the test ebuild repository has an amd64 profile only")
	}
	t.Parallel() // emerge compiles while the end-to-end servers wait on each other
	data := filepath.Join(t.TempDir(), "example")
	// The EPREFIX under the test's directory, laid out as EESSI's.
	root := filepath.Dir(data)
	tmpl := root + "/cvmfs/software.eessi.io/versions/{{.Version}}/compat/{{.OS}}/{{.Arch}}"
	eprefix := root + "/cvmfs/software.eessi.io/versions/2026.06/compat/linux/x86_64"
	args := []string{"--example", "--data-dir", data, "--portage", sharedPortage, "--eprefix", tmpl}
	if _, err := exec.LookPath("bwrap"); err == nil {
		args = append(args, "--sandbox")
	}
	code, out, errs := runCmd(checkRun, args...)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{
		"Installer: **real Portage**, Gentoo's emerge from `portage-3.0.82` (" + mustAbs(t, sharedPortage) + ", run uninstalled), on the ebuild repository `compatbot-test`",
		"## compat sets: sets OK: 1 change",
		"`2026.06-linux-x86_64-base-",
		"## compat 2026.06 linux-x86_64: Built and tested: 1 package change",
		"| app-misc/oldtool | added | - | 1.0:0::compatbot-test |",
		"| hello | `/usr/bin/hello` | hello 1.0 (libgreet 1.0) |", // the repo config's tools list
		"| generic-cpu | ✅ pass |",
		"**The cycle ran through:**",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "fake installer") || strings.Contains(out, "| python3 |") {
		t.Errorf("the report names the fake installer or the built-in tools:\n%s", out)
	}
	if !strings.Contains(errs, "real emerge at EPREFIX "+eprefix) {
		t.Errorf("stderr does not say the EPREFIX:\n%s", errs)
	}

	// Production holds the base and the PR, built by Portage with the
	// repo config's lines: libgreet held at 1.0 by package.mask, hello
	// without its "hi" alias by package.use.
	tree := filepath.Join(data, "targets", "prod", "current", "versions", "2026.06", "compat", "linux", "x86_64")
	got := installed(t, tree)
	slices.Sort(got)
	if want := []string{"app-misc/hello-1.0", "app-misc/oldtool-1.0", "dev-libs/libgreet-1.0"}; !slices.Equal(got, want) {
		t.Errorf("prod has %v, want %v", got, want)
	}
	for f, want := range map[string]string{
		"etc/portage/package.mask": "\n>=dev-libs/libgreet-1.1\n",
		"etc/portage/package.use":  "\n# no two-letter alias in the users' PATH\napp-misc/hello -hi\n",
	} {
		if b, err := os.ReadFile(filepath.Join(tree, f)); err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s = %q, %v; want it to contain %q", f, b, err, want)
		}
	}
	if use, err := os.ReadFile(filepath.Join(tree, "var/db/pkg/app-misc/hello-1.0/USE")); err != nil || strings.Contains(string(use), "hi") {
		t.Errorf("hello's USE = %q, %v; want hi off", use, err)
	}
	if _, err := os.Lstat(filepath.Join(tree, "usr/bin/hi")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("usr/bin/hi exists (%v): package.use did not reach Portage", err)
	}
	// Built for the EPREFIX, whose tail is the publish layout; nothing is
	// mounted there outside the builds.
	if msg, err := exec.Command(filepath.Join(tree, "usr/bin/hello")).Output(); err != nil || strings.TrimSpace(string(msg)) != "prefix "+eprefix {
		t.Errorf("hello says %q (%v), want prefix %s", msg, err, eprefix)
	}
	if ents, _ := os.ReadDir(eprefix); len(ents) != 0 {
		t.Errorf("the EPREFIX %s is not empty outside the builds: %v", eprefix, ents)
	}
	for _, env := range []string{"test", "prod"} {
		tags := cycleTags(t, data, env)
		if len(tags) != 2 || !strings.HasPrefix(tags[0], "2026.06-linux-x86_64-pr1-") || !strings.HasPrefix(tags[1], "2026.06-linux-x86_64-base-") {
			t.Errorf("%s tags %v, want the PR's over the base's", env, tags)
		}
	}

	// What each build recorded: the EPREFIX in results.json, Portage
	// unpacked once under the data dir, the sources in compatbot's mirror.
	res, _ := filepath.Glob(filepath.Join(data, "build", "runs", "*", "results.json"))
	if len(res) != 2 {
		t.Fatalf("results.json of the base and the PR: %v", res)
	}
	for _, f := range res {
		var r struct {
			EPrefix string `json:"eprefix"`
		}
		b, _ := os.ReadFile(f)
		if err := json.Unmarshal(b, &r); err != nil || r.EPrefix != eprefix {
			t.Errorf("%s: eprefix = %q (%v), want %s", f, r.EPrefix, err, eprefix)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(data, "build", "portage", "*", "portage-3.0.82", "bin", "emerge")); len(m) != 1 {
		t.Errorf("Portage not unpacked once under the data dir: %v", m)
	}
	for _, f := range []string{"layout.conf", "libgreet-1.0.tar.gz", "hello-1.0.tar.gz", "oldtool-1.0.tar.gz"} {
		if _, err := os.Stat(filepath.Join(data, "build", "mirror", "distfiles", f)); err != nil {
			t.Errorf("mirror: %v", err)
		}
	}
}

// check --example --portage refuses what it cannot build with, before
// building anything.
func TestCheckExamplePortageUsage(t *testing.T) {
	data := filepath.Join(t.TempDir(), "example")
	code, _, errs := runCmd(checkRun, "--example", "--data-dir", data, "--portage", "/nonexistent/portage.tar.xz")
	if code != 2 || !strings.Contains(errs, "--portage: portage: release /nonexistent/portage.tar.xz") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	code, _, errs = runCmd(checkRun, "--example", "--data-dir", data, "--portage", sharedPortage, "--eprefix", "versions/{{.Version}}/{{.OS}}/{{.Arch}}")
	if code != 2 || !strings.Contains(errs, `--eprefix: portage: EPREFIX template "versions/{{.Version}}/{{.OS}}/{{.Arch}}"`) || !strings.Contains(errs, "must be an absolute path") {
		t.Errorf("relative EPREFIX: exit %d, stderr %q", code, errs)
	}
}

package main

// compatbot build with real Portage (../shared/portage, unmodified) on
// compatbot's test ebuild repository, through a real overlay at a real
// EPREFIX, as root (CI runs as root).

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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

// TestBuildCmdRealPortage builds one package with real emerge into a fresh
// (empty) published tree and checks what the run records.
func TestBuildCmdRealPortage(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("needs root: overlay and mount namespace (CI runs as root)")
	}
	t.Parallel() // emerge compiles while the end-to-end servers wait on each other
	data := t.TempDir()
	tmpl := data + "/cvmfs/software.eessi.io/versions/{{.Version}}/compat/{{.OS}}/{{.Arch}}"
	eprefix := data + "/cvmfs/software.eessi.io/versions/2026.06/compat/linux/" + build.HostArch()
	var out, errb bytes.Buffer
	args := []string{"--data-dir", data, "--set", filepath.Join(portageSets, "base"), "--target", "2026.06/linux-" + build.HostArch(),
		"--portage", sharedPortage, "--ebuild-repo", portageRepo, "--distfiles", portageDist, "--eprefix", tmpl, "--tools", "oldtool"}
	// In bubblewrap when it is installed (CI installs it): host read-only,
	// no network, a private /tmp that hides the data dir but for the
	// paths the build is given.
	if _, err := exec.LookPath("bwrap"); err == nil {
		args = append(args, "--sandbox")
	}
	code := buildCmd(args, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"Built and tested: 2 package changes", "| dev-libs/libgreet | added | - | 1.0:0/1::compatbot-test |", "| generic-cpu | ✅ pass |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errb.String(), "real emerge at EPREFIX "+eprefix) {
		t.Errorf("stderr does not say the EPREFIX:\n%s", errb.String())
	}
	res, _ := filepath.Glob(filepath.Join(data, "runs", "*", "results.json"))
	if len(res) != 1 {
		t.Fatalf("results.json: %v", res)
	}
	var r struct {
		EPrefix string `json:"eprefix"`
	}
	b, _ := os.ReadFile(res[0])
	if err := json.Unmarshal(b, &r); err != nil || r.EPrefix != eprefix {
		t.Errorf("results.json eprefix = %q (%v), want %s", r.EPrefix, err, eprefix)
	}
	// Portage was unpacked once into the data dir, and the sources are in
	// compatbot's mirror.
	if m, _ := filepath.Glob(filepath.Join(data, "portage", "*", "portage-3.0.82", "bin", "emerge")); len(m) != 1 {
		t.Errorf("Portage not unpacked under the data dir: %v", m)
	}
	for _, f := range []string{"layout.conf", "libgreet-1.0.tar.gz", "oldtool-1.0.tar.gz"} {
		if _, err := os.Stat(filepath.Join(data, "mirror", "distfiles", f)); err != nil {
			t.Errorf("mirror: %v", err)
		}
	}
}

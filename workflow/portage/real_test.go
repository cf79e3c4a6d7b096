package portage_test

// These tests run Gentoo's real Portage (../shared/portage/, unmodified
// 3.0.82, uninstalled) on compatbot's own ebuild repository
// (testdata/portage/repo) through real overlays, as root, the way CI runs
// them. Unpacking Portage is done once per test binary.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/compattest"
	"github.com/compatbot/compatbot/workflow/mirror"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/portage"
	"github.com/compatbot/compatbot/workflow/report"
)

const (
	portageTarball = "../../../shared/portage/portage-3.0.82.tar.xz"
	testRepo       = "../../testdata/portage/repo"
	testDistfiles  = "../../testdata/portage/distfiles"
	testSets       = "../../testdata/portage/sets"
)

var (
	cacheDir    string
	releaseOnce sync.Once
	release     portage.Release
	releaseErr  error
)

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "portage-test-cache-")
	if err != nil {
		panic(err)
	}
	cacheDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// sharedRelease unpacks the shared Portage tarball once for all tests.
func sharedRelease(t testing.TB) portage.Release {
	t.Helper()
	releaseOnce.Do(func() {
		release, releaseErr = portage.Unpack(context.Background(), portageTarball, cacheDir)
	})
	if releaseErr != nil {
		t.Fatalf("Portage release (../shared/portage must sit beside the checkout): %v", releaseErr)
	}
	return release
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatal("real builds mount overlays and a mount namespace: run as root (CI does)")
	}
}

func abs(t testing.TB, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// realEnv is one published target and what a pipeline run needs to build
// into it with real Portage.
type realEnv struct {
	dataDir, published, eprefix string
	store                       *artifact.Store
	runner                      *portage.Runner
	target                      sets.Target
	n                           int
	// extra and unmerge go to the next run only: emerge arguments after
	// the set, and the target's removals (build.Job.ExtraSets, Unmerge).
	extra, unmerge []string
}

func newRealEnv(t testing.TB) *realEnv {
	rel := sharedRelease(t)
	repo, err := portage.OpenRepo(testRepo)
	if err != nil {
		t.Fatal(err)
	}
	profile, err := repo.StableProfile("amd64")
	if err != nil {
		t.Fatal(err)
	}
	dd := t.TempDir()
	e := &realEnv{
		dataDir: dd,
		target:  sets.Target{Version: "2026.06", OS: "linux", Arch: build.HostArch()},
		store:   &artifact.Store{Dir: filepath.Join(dd, "artifacts")},
		// The path the target is published at, as EESSI lays it out:
		// nothing is ever mounted here outside a build's namespace.
		eprefix: filepath.Join(dd, "cvmfs", "software.eessi.io", "versions", "2026.06", "compat", "linux", build.HostArch()),
	}
	e.published, _, err = pipeline.DirLower{Root: filepath.Join(dd, "published")}.Current(context.Background(), e.target)
	if err != nil {
		t.Fatal(err)
	}
	e.runner = &portage.Runner{Inner: &build.LocalRunner{}, Config: portage.Config{
		Release: rel, Repos: []portage.Repo{repo}, Profile: profile,
	}, Mirror: &mirror.Mirror{Dir: filepath.Join(dd, "mirror")}, Distfiles: abs(t, testDistfiles)}
	return e
}

// run builds setFile (under testdata/portage/sets) for the target through
// the pipeline and returns the outcome.
func (e *realEnv) run(t testing.TB, setFile string, tools ...string) pipeline.Outcome {
	t.Helper()
	e.n++
	var ts []compattest.Tool
	for _, n := range tools {
		ts = append(ts, compattest.ToolNamed(n))
	}
	sf := abs(t, filepath.Join(testSets, setFile))
	out, err := pipeline.Run(context.Background(), pipeline.Params{
		ID: fmt.Sprintf("run%d", e.n), DataDir: e.dataDir, Target: e.target,
		SetName: "compat", SetFile: sf, SetPath: "sets/" + setFile,
		ExtraSets: e.extra, Unmerge: e.unmerge,
		WorkDir: filepath.Dir(sf), HeadSHA: "abc",
		Build: pipeline.BuildConfig{
			Command: e.runner.Config.DefaultCommand(), Timeout: 20 * time.Minute,
			MountAt: e.eprefix, KeepOut: portage.KeptOut,
		},
		Tests:  pipeline.TestConfig{Tools: ts},
		Runner: e.runner, Lower: pipeline.DirLower{Root: filepath.Join(e.dataDir, "published")}, Store: e.store,
	})
	e.extra, e.unmerge = nil, nil
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// deploy publishes an outcome's artifact onto the published tree, as a
// deploy does.
func (e *realEnv) deploy(t *testing.T, out pipeline.Outcome) {
	t.Helper()
	if out.Artifact == nil {
		t.Fatalf("no artifact to deploy: %s: %s\n%s", out.Check.Conclusion, out.Check.Title, out.Check.Text)
	}
	if err := artifact.Apply(context.Background(), *out.Artifact, e.published); err != nil {
		t.Fatal(err)
	}
}

func manifestTypes(a *artifact.Artifact) map[string]artifact.Type {
	m := map[string]artifact.Type{}
	for _, en := range a.Manifest.Entries {
		m[en.Path] = en.Type
	}
	return m
}

// TestRealEmergeThroughOverlay builds the published base into an empty
// prefix, deploys it, then builds a PR that upgrades libgreet (a new
// sub-slot), adds hello (which depends on it) and drops oldtool, all with
// real emerge at the real EPREFIX, and checks what the artifacts hold.
func TestRealEmergeThroughOverlay(t *testing.T) {
	needRoot(t)
	if compattest.BaselineEmulator("x86_64") == nil {
		t.Fatal("qemu-x86_64 is needed (Debian package qemu-user; .ci/run installs it)")
	}
	e := newRealEnv(t)

	// seedtool is installed by name besides the set, as a bootstrap
	// installs a package: it lands in the world file, so depclean keeps
	// it, and only a removal (EESSI's prefix_remove_packages) takes it out.
	e.extra = []string{"app-misc/seedtool"}
	base := e.run(t, "base", "oldtool", "seedtool")
	if base.Check.Conclusion != report.Success {
		t.Fatalf("base build: %s: %s\n%s\n%s", base.Check.Conclusion, base.Check.Title, base.Check.Summary, base.Check.Text)
	}
	bt := manifestTypes(base.Artifact)
	for _, p := range []string{"usr/bin/oldtool", "usr/lib/libgreet.a", "usr/include/greet.h",
		"var/db/pkg/dev-libs/libgreet-1.0/CONTENTS", "var/db/pkg/app-misc/oldtool-1.0/COUNTER",
		"etc/portage/sets/compat", "var/lib/portage/world_sets", "etc/profile.env",
		"usr/bin/seedtool", "var/lib/portage/world"} {
		if bt[p] != artifact.File {
			t.Errorf("base artifact: %s is %q, want a file", p, bt[p])
		}
	}
	for _, p := range portage.KeptOut {
		if _, ok := bt[p]; ok {
			t.Errorf("base artifact contains %s, which is kept out", p)
		}
	}
	e.deploy(t, base)
	// The sources went through compatbot's mirror, in Gentoo's layout;
	// only what the build needed.
	mirrored, _ := os.ReadDir(e.runner.Mirror.DistfilesDir())
	var names []string
	for _, m := range mirrored {
		names = append(names, m.Name())
	}
	if want := []string{"layout.conf", "libgreet-1.0.tar.gz", "oldtool-1.0.tar.gz"}; !slices.Equal(names, want) {
		t.Errorf("mirror distfiles/ = %q, want %q", names, want)
	}

	// The target removes seedtool, and fastmath, which is not installed.
	e.unmerge = []string{"app-misc/seedtool", "app-misc/fastmath"}
	pr := e.run(t, "pr", "hello")
	if pr.Check.Conclusion != report.Success {
		t.Fatalf("PR build: %s: %s\n%s\n%s", pr.Check.Conclusion, pr.Check.Title, pr.Check.Summary, pr.Check.Text)
	}
	pt := manifestTypes(pr.Artifact)
	want := map[string]artifact.Type{
		"usr/bin/hello":                          artifact.File,
		"usr/bin/hi":                             artifact.Symlink,
		"var/db/pkg/app-misc/hello-1.0/CONTENTS": artifact.File,
		"var/db/pkg/dev-libs/libgreet-1.1/SLOT":  artifact.File,
		"usr/lib/libgreet.a":                     artifact.File,
		"usr/bin/oldtool":                        artifact.Whiteout, // depclean removed it
		"var/db/pkg/app-misc/oldtool-1.0":        artifact.Whiteout,
		"var/db/pkg/dev-libs/libgreet-1.0":       artifact.Whiteout, // replaced by 1.1
		"usr/bin/seedtool":                       artifact.Whiteout, // the removal unmerged it
		"var/db/pkg/app-misc/seedtool-1.0":       artifact.Whiteout,
	}
	for p, ty := range want {
		if pt[p] != ty {
			t.Errorf("PR artifact: %s is %q, want %q", p, pt[p], ty)
		}
	}
	var changes []string
	for _, c := range pr.Tests.Changes {
		changes = append(changes, c.Kind+" "+c.Package+" "+c.Before+">"+c.After)
	}
	slices.Sort(changes)
	wantChanges := []string{"added app-misc/hello >1.0:0::compatbot-test", "removed app-misc/oldtool 1.0:0::compatbot-test>",
		"removed app-misc/seedtool 1.0:0::compatbot-test>",
		"upgraded dev-libs/libgreet 1.0:0/1::compatbot-test>1.1:0/1.1::compatbot-test"}
	if !slices.Equal(changes, wantChanges) {
		t.Errorf("changes = %q, want %q", changes, wantChanges)
	}
	log, err := os.ReadFile(pr.Build.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--unmerge -- app-misc/seedtool", "compatbot: removals not installed, nothing to unmerge: app-misc/fastmath"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("build log lacks %q", want)
		}
	}
	e.deploy(t, pr)
	// Unmerging took seedtool out of the world file too.
	if w, err := os.ReadFile(filepath.Join(e.published, "var/lib/portage/world")); err == nil && strings.Contains(string(w), "seedtool") {
		t.Errorf("world still lists seedtool:\n%s", w)
	}

	// The program and the database carry the real EPREFIX, not the
	// overlay's scratch mount point.
	got, err := exec.Command(filepath.Join(e.published, "usr/bin/hello")).Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != "prefix "+e.eprefix {
		t.Errorf("hello says %q, want prefix %s", got, e.eprefix)
	}
	ver, err := exec.Command(filepath.Join(e.published, "usr/bin/hello"), "--version").Output()
	if err != nil || !strings.Contains(string(ver), "libgreet 1.1") {
		t.Errorf("hello --version = %q, %v; want it linked with libgreet 1.1", ver, err)
	}
	contents, err := os.ReadFile(filepath.Join(e.published, "var/db/pkg/app-misc/hello-1.0/CONTENTS"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(contents), "obj "+e.eprefix+"/usr/bin/hello ") {
		t.Errorf("CONTENTS does not record %s/usr/bin/hello:\n%s", e.eprefix, contents)
	}
	if strings.Contains(string(contents), e.dataDir+"/runs") {
		t.Errorf("CONTENTS records the scratch mount point:\n%s", contents)
	}
	// Nothing stays mounted at the EPREFIX outside the builds.
	if ents, _ := os.ReadDir(e.eprefix); len(ents) != 0 {
		t.Errorf("the EPREFIX %s is not empty outside the build: %v", e.eprefix, ents)
	}
	world, _ := os.ReadFile(filepath.Join(e.published, "var/lib/portage/world_sets"))
	if !slices.Contains(strings.Fields(string(world)), "@compat") {
		t.Errorf("world_sets = %q, want @compat", world)
	}

	failedRuns(t, e)

	// A package built for a newer CPU: it builds, but the generic-CPU
	// check finds its AVX2 instruction, and under qemu's baseline model
	// the tool dies with SIGILL.
	fm := e.run(t, "fastmath", "hello", "fastmath")
	if fm.Check.Conclusion != report.Failure || fm.Artifact != nil {
		t.Fatalf("fastmath: %s: %s, want a failure without artifact", fm.Check.Conclusion, fm.Check.Title)
	}
	if fm.Check.Title != "Tests failed: tools, generic-cpu" {
		t.Errorf("fastmath title %q", fm.Check.Title)
	}
	var found bool
	for _, a := range fm.Check.Annotations {
		if a.Title == "built for a newer CPU than x86-64 v1" && a.StartLine == 4 && // line 1 is a comment
			strings.Contains(a.Message, "app-misc/fastmath: usr/bin/fastmath uses AVX2 (vpaddd ymm2,ymm1,ymm0)") {
			found = true
		}
	}
	if !found {
		t.Errorf("no generic-CPU annotation on the fastmath line: %+v", fm.Check.Annotations)
	}
	if !strings.Contains(fm.Check.Summary, "killed by signal: illegal instruction under qemu-x86_64 -cpu qemu64") {
		t.Errorf("summary lacks the SIGILL under qemu:\n%s", fm.Check.Summary)
	}
}

// failedRuns continue on the PR's published tree: a package that does not
// compile, and sources that are missing or corrupt. Each fails the check
// naming the package or the file, and keeps nothing.
func failedRuns(t *testing.T, e *realEnv) {
	missing, corrupt := t.TempDir(), t.TempDir()
	ents, err := os.ReadDir(testDistfiles)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range ents {
		b, err := os.ReadFile(filepath.Join(testDistfiles, en.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if en.Name() != "fastmath-1.0.tar.gz" {
			write(t, filepath.Join(missing, en.Name()), string(b))
		} else {
			b[len(b)/2] ^= 1
		}
		write(t, filepath.Join(corrupt, en.Name()), string(b))
	}
	for _, tc := range []struct {
		name, set, distfiles string
		title, text          []string
	}{
		{name: "src_compile fails", set: "broken", distfiles: abs(t, testDistfiles),
			title: []string{"Build failed: app-misc/broken-1.0 did not build (compile phase)"},
			text:  []string{"### app-misc/broken-1.0: its build log", "error: ‘this_is_not_declared’ undeclared", "ERROR: app-misc/broken-1.0::compatbot-test failed (compile phase)"}},
		{name: "source missing", set: "fastmath", distfiles: missing,
			title: []string{"Build failed: distfile fastmath-1.0.tar.gz: missing from the source " + missing}},
		{name: "source corrupt", set: "fastmath", distfiles: corrupt,
			title: []string{"Build failed: distfile fastmath-1.0.tar.gz from " + corrupt + "/fastmath-1.0.tar.gz does not match the ebuild repository's Manifest: BLAKE2B"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.runner.Distfiles = tc.distfiles
			out := e.run(t, tc.set, "hello")
			if out.Check.Conclusion != report.Failure || out.Artifact != nil {
				t.Fatalf("%s: %s (artifact %v), want a failure and nothing kept\n%s", out.Check.Conclusion, out.Check.Title, out.Artifact, out.Check.Text)
			}
			for _, w := range tc.title {
				if !strings.Contains(out.Check.Title, w) {
					t.Errorf("title %q lacks %q", out.Check.Title, w)
				}
			}
			for _, w := range tc.text {
				if !strings.Contains(out.Check.Text, w) {
					t.Errorf("text lacks %q:\n%s", w, out.Check.Text)
				}
			}
			if _, err := os.Stat(filepath.Join(e.runner.Mirror.DistfilesDir(), "fastmath-1.0.tar.gz")); err == nil {
				t.Errorf("a bad source entered the mirror")
			}
		})
	}
	e.runner.Distfiles = abs(t, testDistfiles)
}

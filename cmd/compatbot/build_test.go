package main

// These tests mount real overlays (they run as root, as CI does); only
// emerge is a test double (testdata/fakeemerge, see its README).

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/setscheck"
)

func useFakeEmerge(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../testdata/fakeemerge/fakeemerge")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("COMPATBOT_FAKEEMERGE", p)
	return p
}

func writeSet(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sets", "2026.06", "linux-"+build.HostArch())
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const smallSet = "=sys-devel/gcc-14.2.1_p20250301 # toolchain\n=dev-lang/python-3.12.10 # EasyBuild\nsys-cluster/lmod # modules\nsys-devel/binutils # ld\n"

func TestBuildCmd(t *testing.T) {
	useFakeEmerge(t)
	set := writeSet(t, smallSet)
	data := t.TempDir()
	name := "compat 2026.06 linux-" + build.HostArch()
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{"success", []string{"--set", set}, 0, "## " + name + ": Built and tested: 9 package changes, artifact", "log at " + data},
		{"failure", []string{"--set", set, "--env", "FAKEEMERGE_FAIL=sys-devel/binutils"}, 1, "## " + name + ": Build failed: sys-devel/binutils-2.44 did not build", ""},
		{"explicit command", []string{"--set", set, "--command", `["` + os.Getenv("COMPATBOT_FAKEEMERGE") + `", "@{{.Set}}"]`, "--target", "2026.06/linux-" + build.HostArch()}, 0, "Built and tested", ""},
		{"no set", nil, 2, "", "--set is required"},
		{"bad target", []string{"--set", set, "--target", "2026.06"}, 2, "", "want VERSION/OS-ARCH"},
		{"bad command", []string{"--set", set, "--command", `["x",`}, 2, "", "not a JSON array"},
		{"bad env", []string{"--set", set, "--env", "NOEQUALS"}, 2, "", "want NAME=VALUE"},
		{"missing set", []string{"--set", filepath.Join(data, "nope")}, 2, "", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"--data-dir", data}, tc.args...)
			if code := buildCmd(args, &out, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.err) {
				t.Errorf("stdout:\n%s\nstderr:\n%s\nwant %q / %q", out.String(), errb.String(), tc.out, tc.err)
			}
		})
	}
}

func TestRunLocalBuildExample(t *testing.T) {
	fe := useFakeEmerge(t)
	ctx := context.Background()
	repo := filepath.Join(t.TempDir(), "example")
	if err := makeExample(ctx, repo); err != nil {
		t.Fatal(err)
	}
	_, rev, err := setscheck.CheckRefs(ctx, repo, "main", "pr")
	if err != nil {
		t.Fatal(err)
	}
	opts := localBuildOptions{DataDir: t.TempDir(), Command: []string{fe, "@{{.Set}}"}, Env: map[string]string{}, SeedFromBase: true}
	var progress bytes.Buffer
	builds, err := runLocalBuild(ctx, opts, repo, rev, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	var checks []report.Check
	byName := map[string]report.Check{}
	for _, b := range builds {
		checks = append(checks, b.Check)
		byName[b.Check.Name] = b.Check
		// Built targets carry their artifact and the set's changes for
		// a deploy; skipped ones carry nothing.
		built := b.Check.Conclusion == report.Success
		if built != (b.Outcome != nil && b.Outcome.Artifact != nil) || built != (len(b.Changes) > 0) {
			t.Errorf("%s: %s, outcome %v, %d changes", b.Check.Name, b.Check.Conclusion, b.Outcome, len(b.Changes))
		}
	}
	other := "aarch64"
	if build.HostArch() == "aarch64" {
		other = "x86_64"
	}
	if len(checks) != 4 {
		t.Fatalf("%d checks, want one per changed target (4): %+v", len(checks), checks)
	}
	for _, v := range []string{"2025.06", "2026.06"} {
		if c := byName["compat "+v+" linux-"+other]; c.Conclusion != report.Skipped || !strings.Contains(c.Title, "No build host") {
			t.Errorf("%s %s: %+v", v, other, c)
		}
	}
	c := byName["compat 2026.06 linux-"+build.HostArch()]
	if c.Conclusion != report.Success {
		t.Fatalf("2026.06: %s %s\n%s\n%s\nprogress:\n%s", c.Conclusion, c.Title, c.Summary, c.Text, progress.String())
	}
	// Seeded from the base, so the table shows what the PR changes.
	for _, w := range []string{"| sys-cluster/lmod | upgraded | 8.7.53:0::eessi | 8.7.60:0::eessi |", "| app-arch/zstd | added |"} {
		if !strings.Contains(c.Summary, w) {
			t.Errorf("2026.06 summary lacks %q:\n%s", w, c.Summary)
		}
	}
	if c := byName["compat 2025.06 linux-"+build.HostArch()]; c.Conclusion != report.Success || !strings.Contains(c.Summary, "| app-arch/xz-utils | upgraded | 5.8.1:0::eessi | 5.8.2:0::eessi |") {
		t.Errorf("2025.06: %s %s\n%s", c.Conclusion, c.Title, c.Summary)
	}
	if !strings.Contains(progress.String(), "publishing the base") {
		t.Errorf("progress:\n%s", progress.String())
	}
	// A second run reuses the published trees and builds the same.
	builds, err = runLocalBuild(ctx, opts, repo, rev, &progress)
	if err != nil || len(builds) != 4 {
		t.Fatalf("second run: %v %d", err, len(builds))
	}
}

// localCheckBuild must be a checkBuild; this fails to compile otherwise.
var _ checkBuild = localCheckBuild

// localCheckBuild is what check --build is wired to: it must fit the hook
// and build the example through it.
func TestLocalCheckBuild(t *testing.T) {
	useFakeEmerge(t)
	hook := localCheckBuild
	ctx := context.Background()
	repo := filepath.Join(t.TempDir(), "example")
	if err := makeExample(ctx, repo); err != nil {
		t.Fatal(err)
	}
	_, rev, err := setscheck.CheckRefs(ctx, repo, "main", "pr")
	if err != nil {
		t.Fatal(err)
	}
	// Its data goes to ./var/build: run it from a temp dir.
	wd, _ := os.Getwd()
	dir := t.TempDir()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	var stderr bytes.Buffer
	checks, err := hook(ctx, repo, rev, io.Discard, &stderr)
	if err != nil || len(checks) != 4 {
		t.Fatalf("%v, %d checks\n%s", err, len(checks), stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "var", "build", "artifacts")); err != nil {
		t.Errorf("no artifacts under ./var/build: %v", err)
	}
}

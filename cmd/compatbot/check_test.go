package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testgit"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/setscheck"
)

func checkRun(args []string, out, errb *bytes.Buffer) int { return checkCmd(args, out, errb) }

// The example repository (what --example makes at <data-dir>/repo) is a
// normal git repository; check reports on it without building anything.
// TestCheckExampleCycle checks that step 1 of --example is this report.
func TestCheckExample(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	if err := makeExample(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(checkRun, "--repo", dir, "--base", "main", "--head", "pr")
	if code != 0 {
		t.Fatalf("exit %d, want 0 (the example PR lints clean; python needs approval)\nstderr: %s", code, errs)
	}
	golden(t, "check_example.md", out)
	// The defaults (base main, head HEAD = pr) say the same.
	code3, out3, errs3 := runCmd(checkRun, "--repo", dir)
	if code3 != 0 || out3 != out {
		t.Errorf("check --repo %s: exit %d, output equal %v\n%s", dir, code3, out3 == out, errs3)
	}
	// A clean comparison concludes success and exits 0.
	code4, out4, errs4 := runCmd(checkRun, "--repo", dir, "--base", "main", "--head", "main")
	if code4 != 0 || !strings.HasPrefix(out4, "## compat sets: sets OK: 0 changes\n") {
		t.Errorf("main against main: exit %d\n%s%s", code4, out4, errs4)
	}
}

func TestCheckExampleRefusesForeignDir(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "precious.txt")
	os.WriteFile(keep, []byte("do not delete"), 0o644)
	code, _, errs := runCmd(checkRun, "--example", "--data-dir", dir)
	if code != 2 || !strings.Contains(errs, "refusing to replace") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("--example deleted a directory it did not create: %v", err)
	}
}

func TestCheckErrors(t *testing.T) {
	repo := testgit.ExampleRepo(t)
	notRepo := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown head", []string{"--repo", repo, "--head", "nosuch"}, `no commit named "nosuch"`},
		{"option-like base", []string{"--repo", repo, "--base", "--upload-pack=x"}, "starts with '-'"},
		{"not a repository", []string{"--repo", notRepo}, "no origin/HEAD, main or master"},
		{"example with repo", []string{"--example", "--repo", repo}, "drop --repo"},
		{"portage without example", []string{"--repo", repo, "--deploy", "--portage", sharedPortage}, "--portage needs --example"},
		{"eprefix without portage", []string{"--example", "--eprefix", "/cvmfs/x/{{.Version}}/{{.OS}}/{{.Arch}}"}, "--eprefix needs --portage"},
		{"sandbox without a cycle", []string{"--repo", repo, "--sandbox"}, "--sandbox needs --example or --deploy"},
		{"unknown flag", []string{"--frob"}, "flag provided but not defined"},
		{"argument", []string{"extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := runCmd(checkRun, tt.args...)
			if code != 2 || !strings.Contains(errs, tt.wantErr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and %q", code, errs, tt.wantErr)
			}
		})
	}
}

func TestCheckHelp(t *testing.T) {
	code, out, _ := runCmd(checkRun, "--help")
	for _, want := range []string{"compatbot check --example", "Exit status", "-data-dir", "--portage PATH", "default /cvmfs/software.eessi.io/versions/{{.Version}}/compat/{{.OS}}/{{.Arch}}"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("exit %d, help lacks %q:\n%s", code, want, out)
		}
	}
}

// The build step is a checkBuild; its checks are printed after the sets
// report and a failed build fails the command.
func TestCheckBuildStep(t *testing.T) {
	repo := testgit.ExampleRepo(t)
	with := func(b checkBuild) func([]string, *bytes.Buffer, *bytes.Buffer) int {
		return func(args []string, out, errb *bytes.Buffer) int { return checkMain(b, args, out, errb) }
	}
	if code, _, errs := runCmd(with(nil), "--repo", repo, "--head", "main", "--build"); code != 2 || !strings.Contains(errs, "--build is not available") {
		t.Errorf("without a build step: exit %d, %q", code, errs)
	}
	var gotSHA string
	checkRun := with(func(ctx context.Context, gitDir string, rev *setscheck.Revisions, stdout, stderr io.Writer) ([]report.Check, error) {
		gotSHA = rev.HeadSHA
		return []report.Check{{Name: "compat 2026.06 linux-x86_64", Title: "build failed", Conclusion: report.Failure}}, nil
	})
	code, out, errs := runCmd(checkRun, "--repo", repo, "--head", "main", "--build")
	if code != 1 || !strings.Contains(out, "## compat 2026.06 linux-x86_64: build failed") || len(gotSHA) != 40 {
		t.Errorf("exit %d, head %q\n%s%s", code, gotSHA, out, errs)
	}
	// A head that fails the sets check is not built.
	gotSHA = ""
	if code, _, _ := runCmd(checkRun, "--repo", testgit.LintErrorRepo(t), "--head", "pr", "--build"); code != 1 || gotSHA != "" {
		t.Errorf("exit %d; build ran on a head with lint errors (%q)", code, gotSHA)
	}
}

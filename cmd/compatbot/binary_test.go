package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestInstalledBinary builds compatbot as `go install` would (a binary
// on its own, VCS-stamped from this checkout) and runs it from an empty
// directory with HOME elsewhere: `version` names the checkout's commit, and
// `check --example` runs the whole cycle with nothing from the checkout
// (the example and the fake installer are embedded).
func TestInstalledBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	// The toolchain running this test builds the binary.
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		t.Fatalf("the go command of this toolchain: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "compatbot")
	// -buildvcs=auto overrides a GOFLAGS=-buildvcs=false of the machine:
	// the stamp is what `version` reports.
	args := []string{"build", "-buildvcs=auto", "-o", bin}
	if raceEnabled {
		// The packages are in the build cache as this test binary was
		// compiled: with -race, so only the link is left to do.
		args = append(args, "-race")
	}
	build := exec.Command(goBin, append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	empty, home := t.TempDir(), t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C.UTF-8"}
	runBin := func(args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = empty, env
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}

	t.Run("version", func(t *testing.T) {
		out, errs, err := runBin("version")
		if err != nil {
			t.Fatalf("compatbot version: %v\n%s", err, errs)
		}
		// What the go command stamped (go version -m) is what `version`
		// must say. A git worktree (.git is a file) gets no stamp from the
		// go command; a clone, as in CI, does.
		meta, merr := exec.Command(goBin, "version", "-m", bin).Output()
		if merr != nil {
			t.Fatal(merr)
		}
		rev := ""
		for _, l := range strings.Split(string(meta), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "build\tvcs.revision="); ok {
				rev = v
			}
		}
		want := "revision: unknown"
		if rev != "" {
			want = "revision: " + rev
			head, herr := exec.Command("git", "rev-parse", "HEAD").Output()
			if herr == nil && strings.TrimSpace(string(head)) != rev {
				t.Errorf("stamped revision %s is not HEAD %s", rev, head)
			}
		} else {
			t.Log("the go command stamped no VCS revision here (a git worktree?); checking the unstamped answer")
		}
		if !strings.Contains(out, want) || !strings.Contains(out, "module:   github.com/compatbot/compatbot") {
			t.Errorf("compatbot version:\n%s\nwant %q", out, want)
		}
	})

	t.Run("check --example from an empty directory", func(t *testing.T) {
		out, errs, err := runBin("check", "--example")
		if err != nil {
			t.Fatalf("compatbot check --example: %v\nstdout:\n%s\nstderr:\n%s", err, out, errs)
		}
		if !strings.Contains(out, "**The cycle ran through:**") {
			t.Errorf("the cycle did not run through:\n%s", out)
		}
		// It worked in the directory it was run in, and took the fake
		// installer from the binary (the user's cache), not a checkout.
		if _, err := os.Stat(filepath.Join(empty, "var", "example")); err != nil {
			t.Errorf("no var/example in the working directory: %v", err)
		}
		if m, _ := filepath.Glob(filepath.Join(home, ".cache", "compatbot", "fakeemerge-*", "fakeemerge")); len(m) != 1 {
			t.Errorf("embedded fake installer not unpacked under HOME/.cache: %v", m)
		}
	})
}

package testgit

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot"
)

func TestExampleRepo(t *testing.T) {
	a, b := ExampleRepo(t), ExampleRepo(t)
	for _, ref := range []string{"main", "pr"} {
		if sa, sb := Git(t, a, "rev-parse", ref), Git(t, b, "rev-parse", ref); sa != sb {
			t.Errorf("%s: %s and %s: the example's SHAs are not reproducible", ref, sa, sb)
		}
	}
	if br := Git(t, a, "symbolic-ref", "--short", "HEAD"); br != "pr" {
		t.Errorf("HEAD on %s, want pr", br)
	}
	for ref, tree := range map[string]fs.FS{"main": compatbot.ExampleBase, "pr": compatbot.ExampleHead} {
		const p = "sets/2026.06/linux-x86_64"
		want, err := fs.ReadFile(tree, p)
		if err != nil {
			t.Fatal(err)
		}
		if got := Git(t, a, "show", ref+":"+p); got != strings.TrimSpace(string(want)) {
			t.Errorf("%s:%s = %q, want %q", ref, p, got, want)
		}
	}
}

func TestLintErrorRepo(t *testing.T) {
	dir, example := LintErrorRepo(t), ExampleRepo(t)
	if a, b := Git(t, dir, "rev-parse", "main"), Git(t, example, "rev-parse", "main"); a != b {
		t.Errorf("main = %s, want the example's %s", a, b)
	}
	Git(t, dir, "fetch", "--quiet", example, "pr:refs/example/pr")
	if got := Git(t, dir, "diff", "--name-only", "refs/example/pr", "pr"); got != "sets/2026.06/linux-x86_64" {
		t.Errorf("pr differs from the example's in %q, want only sets/2026.06/linux-x86_64", got)
	}
	if got := Git(t, dir, "show", "pr:sets/2026.06/linux-x86_64"); strings.Contains(got, "app-arch/zstd #") || strings.Contains(got, "EasyBuild unpacks .tar.zst") {
		t.Errorf("zstd still has its reason:\n%s", got)
	}
}

func TestCommit(t *testing.T) {
	dir := ExampleRepo(t)
	main := Git(t, dir, "rev-parse", "main")
	sha := Commit(t, dir, main, map[string]string{"README.md": "changed\n", "new/file": "x\n"}, "change 1")
	if got := Git(t, dir, "rev-parse", sha+"^"); got != main {
		t.Errorf("parent = %s, want %s", got, main)
	}
	if got := Git(t, dir, "show", sha+":new/file"); got != "x" {
		t.Errorf("new/file = %q", got)
	}
	if got := Git(t, dir, "log", "-1", "--format=%s", sha); got != "change 1" {
		t.Errorf("message = %q", got)
	}
	if got := Git(t, dir, "diff", "--name-only", main, sha); got != "README.md\nnew/file" {
		t.Errorf("changed files = %q, want only README.md and new/file", got)
	}
	if got := Git(t, dir, "rev-parse", "main"); got != main {
		t.Error("Commit moved main")
	}
}

func TestServeRepos(t *testing.T) {
	srv := ServeRepos(t, t.TempDir(), TokenAuth(func(tok string) bool { return tok == "good" }))
	dir, url := srv.Publish(t, ExampleRepo(t), "eessi", "compat-layer")
	if want := filepath.Join(srv.Root, "eessi", "compat-layer.git"); dir != want {
		t.Errorf("Publish dir = %s, want %s", dir, want)
	}
	if head := Git(t, dir, "symbolic-ref", "HEAD"); head != "refs/heads/main" {
		t.Errorf("published HEAD = %s, want refs/heads/main", head)
	}
	repo := strings.TrimPrefix(url, "http://")
	clone := func(userinfo string) error {
		cmd := exec.Command("git", "clone", "--quiet", "--bare", "http://"+userinfo+repo, filepath.Join(t.TempDir(), "c.git"))
		cmd.Env = append(os.Environ(), identity...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("clone as %q: %v\n%s", userinfo, err, out)
		}
		return err
	}

	if err := clone("x-access-token:good@"); err != nil {
		t.Fatalf("clone with the token failed: %v", err)
	}
	served := srv.Requests.Load()
	if served == 0 {
		t.Error("Requests = 0 after a clone")
	}
	for _, creds := range []string{"", "x-access-token:bad@", "someone:good@"} {
		rejected := srv.Rejected.Load()
		if err := clone(creds); err == nil {
			t.Errorf("clone as %q succeeded", creds)
		}
		if srv.Rejected.Load() == rejected {
			t.Errorf("clone as %q: Rejected did not grow", creds)
		}
	}

	srv.Down.Store(true)
	before := srv.Requests.Load()
	if err := clone("x-access-token:good@"); err == nil {
		t.Error("clone while Down succeeded")
	}
	if n := srv.Requests.Load(); n != before {
		t.Errorf("Requests grew by %d while Down", n-before)
	}
	srv.Down.Store(false)
	if err := clone("x-access-token:good@"); err != nil {
		t.Errorf("clone after Down was cleared: %v", err)
	}
}

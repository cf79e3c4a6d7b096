package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func exampleTrees() (base, head fstest.MapFS) {
	base = fstest.MapFS{
		"README.md":                 {Data: []byte("# example\n")},
		"sets/2026.06/linux-x86_64": {Data: []byte("dev-lang/python # the interpreter\n")},
		".github/compatbot.yml":     {Data: []byte("versions: {}\n")},
	}
	head = fstest.MapFS{
		"README.md":                  {Data: []byte("# example\n")},
		"sets/2026.06/linux-x86_64":  {Data: []byte("dev-lang/python # the interpreter\napp-shells/bash # login shell\n")},
		"sets/2026.06/linux-aarch64": {Data: []byte("app-shells/bash # login shell\n")},
	}
	return base, head
}

func initExample(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	base, head := exampleTrees()
	err := InitFromDirs(context.Background(), dir,
		CommitSpec{Branch: "main", Tree: base, Message: "base"},
		CommitSpec{Branch: "pr", Tree: head, Message: "head"})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func gitOut(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestValidateRef(t *testing.T) {
	good := []string{"main", "HEAD", "refs/heads/main", "refs/pull/12/head", "release/2026.06", "v1.0", "0123abcd", strings.Repeat("a", 40)}
	bad := []string{"", "-main", "--upload-pack=x", "a..b", "main^{tree}", "main~1", "main^", "HEAD@{1}", "@", ":README.md", "a b", "a\nb", "refs/heads/", "/main", "x.lock", "a//b", ".hidden", "a/.b", "x.", "ma*n", "a?b", "a[b", `a\b`, strings.Repeat("a", 256)}
	for _, r := range good {
		if err := ValidateRef(r); err != nil {
			t.Errorf("ValidateRef(%q) = %v, want ok", r, err)
		}
	}
	for _, r := range bad {
		err := ValidateRef(r)
		var re *RefError
		if !errors.As(err, &re) {
			t.Errorf("ValidateRef(%q) = %v, want *RefError", r, err)
		}
	}
}

func TestResolveCommit(t *testing.T) {
	ctx := context.Background()
	dir := initExample(t)
	mainSHA := gitOut(t, dir, "rev-parse", "main")
	prSHA := gitOut(t, dir, "rev-parse", "pr")
	if parent := gitOut(t, dir, "rev-parse", "pr^"); parent != mainSHA {
		t.Errorf("pr's parent = %s, want main %s", parent, mainSHA)
	}
	tests := []struct{ ref, want string }{
		{"main", mainSHA}, {"refs/heads/pr", prSHA}, {"HEAD", prSHA}, {mainSHA, mainSHA}, {mainSHA[:10], mainSHA},
	}
	for _, tt := range tests {
		got, err := ResolveCommit(ctx, dir, tt.ref)
		if err != nil || got != tt.want {
			t.Errorf("ResolveCommit(%q) = %q, %v; want %q", tt.ref, got, err, tt.want)
		}
	}
	if _, err := ResolveCommit(ctx, dir, "nosuch"); err == nil || !strings.Contains(err.Error(), `no commit named "nosuch"`) {
		t.Errorf("missing ref: err = %v", err)
	}
	if _, err := ResolveCommit(ctx, dir, "--output=/tmp/x"); err == nil || !strings.Contains(err.Error(), "starts with '-'") {
		t.Errorf("option-like ref: err = %v", err)
	}
	// A directory inside no repository must fail, not read a parent's history.
	notRepo := t.TempDir()
	if _, err := ResolveCommit(ctx, notRepo, "HEAD"); err == nil {
		t.Errorf("ResolveCommit in a non-repository succeeded")
	}
	nested := filepath.Join(dir, "sets")
	if _, err := ResolveCommit(ctx, nested, "HEAD"); err == nil {
		t.Errorf("ResolveCommit in a sub-directory of a work tree succeeded; it must name the repository itself")
	}
}

func TestInitFromDirsIsReproducible(t *testing.T) {
	a, b := initExample(t), initExample(t)
	for _, ref := range []string{"main", "pr"} {
		if x, y := gitOut(t, a, "rev-parse", ref), gitOut(t, b, "rev-parse", ref); x != y {
			t.Errorf("%s: %s vs %s", ref, x, y)
		}
	}
	if got := gitOut(t, a, "status", "--porcelain"); got != "" {
		t.Errorf("work tree not clean after InitFromDirs:\n%s", got)
	}
	if br, err := DefaultBranch(context.Background(), a); err != nil || br != "pr" {
		t.Errorf("DefaultBranch = %q, %v; want pr (HEAD is left on the last branch)", br, err)
	}
	// The head tree replaces the base tree: a file only in base is gone.
	if _, err := os.Stat(filepath.Join(a, ".github/compatbot.yml")); !os.IsNotExist(err) {
		t.Errorf(".github/compatbot.yml of base still in the head work tree: %v", err)
	}
}

func TestTreeFS(t *testing.T) {
	ctx := context.Background()
	dir := initExample(t)
	// Read from a bare clone too: the bot's cache has no work tree.
	bare := filepath.Join(t.TempDir(), "bare.git")
	gitOut(t, dir, "clone", "--quiet", "--bare", dir, bare)
	base, head := exampleTrees()
	for _, repo := range []string{dir, bare} {
		for ref, want := range map[string]fstest.MapFS{"main": base, "pr": head} {
			fsys, err := TreeFS(ctx, repo, ref)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for name, f := range want {
				names = append(names, name)
				got, err := fs.ReadFile(fsys, name)
				if err != nil || string(got) != string(f.Data) {
					t.Errorf("%s %s:%s = %q, %v; want %q", repo, ref, name, got, err, f.Data)
				}
			}
			if err := fstest.TestFS(fsys, names...); err != nil {
				t.Errorf("%s %s: %v", repo, ref, err)
			}
			if _, err := fs.Stat(fsys, ".git"); err == nil {
				t.Errorf("TreeFS has .git")
			}
		}
	}
	if _, err := TreeFS(ctx, dir, "main..pr"); err == nil {
		t.Errorf("TreeFS accepted a range")
	}
}

func TestTreeFSModesAndLinks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	gitOut(t, dir, "init", "--quiet")
	os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644)
	os.Symlink("/etc/passwd", filepath.Join(dir, "link"))
	gitOut(t, dir, "add", ".")
	gitOut(t, dir, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "x")
	fsys, err := TreeFS(ctx, dir, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := fs.Stat(fsys, "run.sh"); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run.sh: %v, %v", fi, err)
	}
	if data, err := fs.ReadFile(fsys, "empty"); err != nil || len(data) != 0 {
		t.Errorf("empty: %q, %v", data, err)
	}
	if _, err := fs.Stat(fsys, "link"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("symlink included in TreeFS: %v", err)
	}
}

func BenchmarkTreeFS(b *testing.B) {
	files := fstest.MapFS{}
	for v := 0; v < 10; v++ {
		for a := 0; a < 2; a++ {
			var sb strings.Builder
			for i := 0; i < 500; i++ {
				fmt.Fprintf(&sb, "dev-libs/pkg%d # reason %d\n", i, i)
			}
			files[fmt.Sprintf("sets/20%02d.06/linux-arch%d", v, a)] = &fstest.MapFile{Data: []byte(sb.String())}
		}
	}
	for i := 0; i < 180; i++ {
		files[fmt.Sprintf("changelog/%03d.md", i)] = &fstest.MapFile{Data: []byte(strings.Repeat("line\n", 50))}
	}
	dir := filepath.Join(b.TempDir(), "repo")
	if err := InitFromDirs(context.Background(), dir, CommitSpec{Branch: "main", Tree: files, Message: "m"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := TreeFS(context.Background(), dir, "main"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTreeFSLimits(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	files := fstest.MapFS{
		"sets/2026.06/linux-x86_64": {Data: []byte("dev-lang/python # x\n")},
		"big.bin":                   {Data: make([]byte, 2000)},
		"mid.bin":                   {Data: make([]byte, 900)},
	}
	if err := InitFromDirs(ctx, dir, CommitSpec{Branch: "main", Tree: files, Message: "m"}); err != nil {
		t.Fatal(err)
	}
	oldFile, oldTree := MaxFileSize, MaxTreeSize
	defer func() { MaxFileSize, MaxTreeSize = oldFile, oldTree }()
	MaxFileSize, MaxTreeSize = 1000, 10000
	fsys, err := TreeFS(ctx, dir, "main")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := fs.Stat(fsys, "big.bin"); err != nil || fi.Size() != 2000 {
		t.Errorf("big.bin stat: %v, %v", fi, err)
	}
	if _, err := fs.ReadFile(fsys, "big.bin"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("reading big.bin: %v, want ErrTooLarge", err)
	}
	if data, err := fs.ReadFile(fsys, "mid.bin"); err != nil || len(data) != 900 {
		t.Errorf("mid.bin: %d bytes, %v", len(data), err)
	}
	MaxTreeSize = 500
	if _, err := TreeFS(ctx, dir, "main"); err == nil || !strings.Contains(err.Error(), "refusing to read") {
		t.Errorf("tree over MaxTreeSize: %v", err)
	}
}

// Whatever ValidateRef accepts, git itself must accept as a ref name (or it
// is a SHA or HEAD), and it must never look like an option or a range.
func FuzzValidateRef(f *testing.F) {
	for _, s := range []string{"main", "refs/pull/1/head", "a..b", "-x", "x@{1}", "v1.0", "a/b/c", "x.lock", "HEAD", "é", "a\x00b", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		if ValidateRef(ref) != nil {
			return
		}
		if strings.HasPrefix(ref, "-") || strings.Contains(ref, "..") || strings.ContainsAny(ref, " ~^:?*[\\\x00\n") {
			t.Fatalf("ValidateRef accepted %q", ref)
		}
		if err := exec.Command("git", "check-ref-format", "--allow-onelevel", ref).Run(); err != nil {
			t.Fatalf("ValidateRef accepted %q, git check-ref-format refuses it", ref)
		}
	})
}

func TestLockFileExcludes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := lockFile(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := lockFile(ctx, p); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second lock while held: %v, want a deadline error", err)
	}
	unlock()
	unlock2, err := lockFile(context.Background(), p)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestValidateRevision(t *testing.T) {
	for _, ok := range []string{"main", "main~1", "HEAD^", "HEAD^^", "v1^2~3", "refs/heads/main~10", "abc123~"} {
		if err := ValidateRevision(ok); err != nil {
			t.Errorf("ValidateRevision(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "~1", "^main", "main^{tree}", "main~x", "a..b~1", "-x~1", "main@{1}", "main:path"} {
		if err := ValidateRevision(bad); err == nil {
			t.Errorf("ValidateRevision(%q) accepted", bad)
		}
	}
	dir := t.TempDir()
	gitT(t, "", "init", "-q", "-b", "main", dir)
	gitT(t, dir, "commit", "-q", "--allow-empty", "-m", "one")
	gitT(t, dir, "commit", "-q", "--allow-empty", "-m", "two")
	want := strings.TrimSpace(gitT(t, dir, "rev-parse", "HEAD~1"))
	for _, rev := range []string{"main~1", "HEAD^"} {
		if got, err := ResolveCommit(context.Background(), dir, rev); err != nil || got != want {
			t.Errorf("ResolveCommit(%q) = %s, %v; want %s", rev, got, err, want)
		}
	}
}

func gitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	c := exec.Command("git", args...)
	c.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@x", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@x")
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

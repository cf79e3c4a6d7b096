// Package testgit holds the git helpers that tests of several packages
// share: a git remote served over smart HTTP by the real git-http-backend
// behind GitHub's Basic authentication, the example repository as a real
// git repository, and running git with a fixed identity. Only tests
// import it.
package testgit

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/compatbot/compatbot"
	"github.com/compatbot/compatbot/workflow/gitrepo"
)

// Server serves the bare repositories under Root (as owner/name.git) the
// way github.com does for an App: git's smart HTTP protocol, and a 401
// with a Basic challenge for a request whose credentials auth refuses.
type Server struct {
	URL  string // the base URL; a repository is URL + "/owner/name.git"
	Root string
	// Down makes every request fail with 503, as during an outage, and
	// is not counted in Requests.
	Down atomic.Bool
	// Requests counts the requests served while up, rejected or not;
	// Rejected those refused for their credentials.
	Requests, Rejected atomic.Int64
}

// ServeRepos starts a Server for root, closed when the test ends. auth
// sees the request's Basic credentials; one without any is refused.
func ServeRepos(t testing.TB, root string, auth func(user, pass string) bool) *Server {
	t.Helper()
	backend := filepath.Join(Git(t, "", "--exec-path"), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Fatalf("git-http-backend: %v", err)
	}
	s := &Server{Root: root}
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		s.Requests.Add(1)
		if user, pass, ok := r.BasicAuth(); !ok || !auth(user, pass) {
			s.Rejected.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="GitHub"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Publish makes a bare clone of work (a repository with a work tree)
// available as owner/name.git, its HEAD main as on GitHub where main is
// the default branch, and returns the clone's directory and URL.
func (s *Server) Publish(t testing.TB, work, owner, name string) (dir, url string) {
	t.Helper()
	dir = filepath.Join(s.Root, owner, name+".git")
	Git(t, "", "clone", "--quiet", "--bare", work, dir)
	Git(t, dir, "symbolic-ref", "HEAD", "refs/heads/main")
	return dir, s.URL + "/" + owner + "/" + name + ".git"
}

// TokenAuth accepts what git sends for an installation token:
// user x-access-token, the token as the password.
func TokenAuth(valid func(token string) bool) func(user, pass string) bool {
	return func(user, pass string) bool { return user == "x-access-token" && valid(pass) }
}

// ExampleRepo makes the example repository (branch main = the base tree,
// pr = the example PR's head, checked out) as a real git repository and
// returns its directory. The same trees always give the same SHAs.
func ExampleRepo(t testing.TB) string {
	t.Helper()
	return cachedRepo(t, "example", func() string { return ExampleRepoWith(t, compatbot.ExampleHead) })
}

// LintErrorRepo is ExampleRepo with LintErrorHead as the head: a PR with
// the one lint error a PR can have.
func LintErrorRepo(t testing.TB) string {
	t.Helper()
	return cachedRepo(t, "lint-error", func() string { return ExampleRepoWith(t, LintErrorHead(t)) })
}

// repoSnapshots keeps the files of each fixed repository the first test
// made, so later tests write them out instead of running a dozen git
// processes again (the same trees always give the same SHAs, so the copy
// is the repository the test would have made).
var repoSnapshots sync.Map // name -> *repoSnapshot

type repoSnapshot struct {
	once  sync.Once
	files []snapshotFile
	err   error
	done  bool // false when the first attempt failed its test
}

type snapshotFile struct {
	path string
	mode fs.FileMode
	data []byte
}

func cachedRepo(t testing.TB, name string, make func() string) string {
	t.Helper()
	v, _ := repoSnapshots.LoadOrStore(name, &repoSnapshot{})
	snap := v.(*repoSnapshot)
	made := ""
	snap.once.Do(func() {
		made = make()
		snap.err = filepath.WalkDir(made, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == made {
				return err
			}
			rel, _ := filepath.Rel(made, p)
			info, err := d.Info()
			if err != nil {
				return err
			}
			f := snapshotFile{path: rel, mode: info.Mode()}
			if info.Mode().IsRegular() {
				if f.data, err = os.ReadFile(p); err != nil {
					return err
				}
			} else if !info.IsDir() {
				return fmt.Errorf("%s: only files and directories are kept", p)
			}
			snap.files = append(snap.files, f)
			return nil
		})
		snap.done = true
	})
	if !snap.done {
		t.Fatalf("the %s repository could not be made (see the first test that tried)", name)
	}
	if snap.err != nil {
		t.Fatalf("snapshot of the %s repository: %v", name, snap.err)
	}
	if made != "" {
		return made
	}
	dir := filepath.Join(t.TempDir(), "example")
	for _, f := range snap.files {
		p := filepath.Join(dir, f.path)
		var err error
		if f.mode.IsDir() {
			err = os.MkdirAll(p, f.mode.Perm()|0o700)
		} else {
			err = os.WriteFile(p, f.data, f.mode.Perm())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// LintErrorHead is compatbot.ExampleHead with the one lint error a PR can
// have: app-arch/zstd on linux-x86_64 without a reason (its comment block
// removed, so it stands on line 16).
func LintErrorHead(t testing.TB) fs.FS {
	t.Helper()
	const path = "sets/2026.06/linux-x86_64"
	const withReason, without = "\n# EasyBuild unpacks .tar.zst sources\napp-arch/zstd\n", "app-arch/zstd\n"
	m := fstest.MapFS{}
	err := fs.WalkDir(compatbot.ExampleHead, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(compatbot.ExampleHead, p)
		m[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f, ok := m[path]
	if !ok || !strings.Contains(string(f.Data), withReason) {
		t.Fatalf("example PR: %s has no commented app-arch/zstd entry to strip", path)
	}
	f.Data = []byte(strings.Replace(string(f.Data), withReason, without, 1))
	return m
}

// ExampleRepoWith is ExampleRepo with head as the tree of branch pr.
func ExampleRepoWith(t testing.TB, head fs.FS) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "example")
	err := gitrepo.InitFromDirs(context.Background(), dir,
		gitrepo.CommitSpec{Branch: "main", Tree: compatbot.ExampleBase, Message: "base"},
		gitrepo.CommitSpec{Branch: "pr", Tree: head, Message: "head"})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// identity makes commits independent of the machine's git configuration.
var identity = []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_TERMINAL_PROMPT=0",
	"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org"}

// Git runs git in repository dir (a work tree or a bare repository; ""
// for none) and returns its trimmed output, failing the test on error.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return run(t, dir, nil, "", args...)
}

// Commit makes a commit in repository dir whose tree is parent's with
// files (path: content) written, with parent as its only parent, and
// returns its SHA. No branch moves and no work tree is touched.
func Commit(t testing.TB, dir, parent string, files map[string]string, message string) string {
	t.Helper()
	env := []string{"GIT_INDEX_FILE=" + filepath.Join(t.TempDir(), "index")}
	run(t, dir, env, "", "read-tree", parent)
	for p, content := range files {
		blob := run(t, dir, env, content, "hash-object", "-w", "--stdin")
		run(t, dir, env, "", "update-index", "--add", "--cacheinfo", "100644,"+blob+","+p)
	}
	return run(t, dir, env, "", "commit-tree", run(t, dir, env, "", "write-tree"), "-p", parent, "-m", message)
}

func run(t testing.TB, dir string, env []string, stdin string, args ...string) string {
	t.Helper()
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	cmd := exec.Command("git", args...)
	cmd.Env = append(append(os.Environ(), identity...), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

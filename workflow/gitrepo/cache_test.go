package gitrepo_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/compatbot/compatbot/internal/testgit"
	"github.com/compatbot/compatbot/workflow/gitrepo"
)

// newGitServer serves repositories over git's smart HTTP protocol with
// the real git-http-backend, refusing any request that lacks the Basic
// credentials GitHub expects for the installation token testToken.
func newGitServer(t *testing.T) *testgit.Server {
	t.Helper()
	return testgit.ServeRepos(t, t.TempDir(), testgit.TokenAuth(func(tok string) bool { return tok == testToken }))
}

// publish makes work (a repository with a work tree) available as
// owner/name.git on srv.
func publish(t *testing.T, srv *testgit.Server, work, owner, name string) string {
	t.Helper()
	dst := filepath.Join(srv.Root, owner, name+".git")
	testgit.Git(t, "", "clone", "--quiet", "--bare", work, dst)
	// Served HEAD is main, as on GitHub where main is the default branch.
	testgit.Git(t, dst, "symbolic-ref", "HEAD", "refs/heads/main")
	return srv.URL + "/" + owner + "/" + name + ".git"
}

const testToken = "ghs_s3cretInstallationToken0123456789"

func TestCacheFetch(t *testing.T) {
	ctx := context.Background()
	srv := newGitServer(t)
	work := testgit.ExampleRepo(t)
	url := publish(t, srv, work, "eessi", "compat-layer")
	cache := &gitrepo.Cache{Dir: t.TempDir()}

	dir, err := cache.Fetch(ctx, url, testToken)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.ReplaceAll(strings.TrimPrefix(srv.URL, "http://"), ":", "_")
	if want := filepath.Join(cache.Dir, host, "eessi", "compat-layer.git"); dir != want {
		t.Errorf("dir = %s, want %s", dir, want)
	}
	if got, want := testgit.Git(t, dir, "rev-parse", "pr"), testgit.Git(t, work, "rev-parse", "pr"); got != want {
		t.Errorf("pr = %s, want %s", got, want)
	}
	if br, err := gitrepo.DefaultBranch(ctx, dir); err != nil || br != "main" {
		t.Errorf("DefaultBranch = %q, %v; want main", br, err)
	}
	if srv.Rejected.Load() != 0 {
		t.Errorf("%d requests went without the token", srv.Rejected.Load())
	}
	assertNoSecret(t, cache.Dir)

	// A new commit upstream, and a PR ref fetched explicitly.
	upstream := filepath.Join(srv.Root, "eessi", "compat-layer.git")
	testgit.Git(t, upstream, "update-ref", "refs/pull/7/head", testgit.Git(t, upstream, "rev-parse", "pr"))
	testgit.Git(t, upstream, "update-ref", "refs/heads/main", testgit.Git(t, upstream, "rev-parse", "pr"))
	if _, err := cache.Fetch(ctx, url, testToken, "+refs/heads/*:refs/heads/*", "+refs/pull/7/head:refs/pull/7/head"); err != nil {
		t.Fatal(err)
	}
	if got, want := testgit.Git(t, dir, "rev-parse", "main"), testgit.Git(t, work, "rev-parse", "pr"); got != want {
		t.Errorf("after second fetch main = %s, want %s", got, want)
	}
	if _, err := gitrepo.ResolveCommit(ctx, dir, "refs/pull/7/head"); err != nil {
		t.Errorf("PR ref not fetched: %v", err)
	}
}

func TestCacheFetchWrongToken(t *testing.T) {
	srv := newGitServer(t)
	url := publish(t, srv, testgit.ExampleRepo(t), "eessi", "compat-layer")
	cache := &gitrepo.Cache{Dir: t.TempDir()}
	const wrong = "ghs_wrongTokenWrongTokenWrong"
	_, err := cache.Fetch(context.Background(), url, wrong)
	if err == nil {
		t.Fatal("fetch with a wrong token succeeded")
	}
	msg := err.Error()
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + wrong))
	if strings.Contains(msg, wrong) || strings.Contains(msg, basic) {
		t.Errorf("error leaks the token: %s", msg)
	}
	if !strings.Contains(msg, "git fetch") || !strings.Contains(msg, "authentication failed") {
		t.Errorf("error does not say what failed: %s", msg)
	}
	// No token at all must fail too, without prompting (GIT_TERMINAL_PROMPT=0).
	if _, err := cache.Fetch(context.Background(), url, ""); err == nil {
		t.Error("fetch without a token succeeded")
	}
	// A failed first fetch leaves no half clone behind.
	ents, _ := filepath.Glob(filepath.Join(cache.Dir, "*", "eessi", "*.git"))
	if len(ents) != 0 {
		t.Errorf("half clone left: %v", ents)
	}
}

func TestCacheFetchConcurrent(t *testing.T) {
	srv := newGitServer(t)
	work := testgit.ExampleRepo(t)
	url := publish(t, srv, work, "eessi", "compat-layer")
	cache := &gitrepo.Cache{Dir: t.TempDir()}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = cache.Fetch(context.Background(), url, testToken)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("fetch %d: %v", i, err)
		}
	}
}

func TestCacheFetchRefusesBadInput(t *testing.T) {
	cache := &gitrepo.Cache{Dir: t.TempDir()}
	ctx := context.Background()
	for _, tt := range []struct{ url, refspec, want string }{
		{"https://x-access-token:abc@github.com/o/r.git", "", "must not carry credentials"},
		{"file:///etc/o/r.git", "", "scheme"},
		{"http://github.com/o/r.git", "", "plain http"},
		{"https://github.com/../r.git", "", "not a plain name"},
		{"https://github.com/o/r/extra", "", "want https://host/owner/repo"},
		{"https://github.com/o/r.git", "--upload-pack=evil", "starts with '-'"},
		{"https://github.com/o/r.git", "+refs/heads/*:refs/x", "glob"},
	} {
		var refspecs []string
		if tt.refspec != "" {
			refspecs = []string{tt.refspec}
		}
		_, err := cache.Fetch(ctx, tt.url, "tok", refspecs...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Fetch(%q, %q) = %v, want error containing %q", tt.url, tt.refspec, err, tt.want)
		}
	}
}

// assertNoSecret fails if the token appears in any file under dir.
func assertNoSecret(t *testing.T, dir string) {
	t.Helper()
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + testToken))
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		if strings.Contains(string(data), testToken) || strings.Contains(string(data), basic) {
			t.Errorf("%s contains the token", p)
		}
		return nil
	})
}

// A redirect must not carry the token to another server.
func TestCacheFetchDoesNotFollowRedirects(t *testing.T) {
	other := newGitServer(t)
	publish(t, other, testgit.ExampleRepo(t), "eessi", "compat-layer")
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	cache := &gitrepo.Cache{Dir: t.TempDir()}
	if _, err := cache.Fetch(context.Background(), redirector.URL+"/eessi/compat-layer.git", testToken); err == nil {
		t.Error("fetch through a redirect succeeded")
	}
	if n := other.Requests.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
}

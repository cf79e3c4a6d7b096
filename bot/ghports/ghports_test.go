package ghports

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compatbot/compatbot/bot/checks"
	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/bot/githubfake"
	"github.com/compatbot/compatbot/internal/testgit"
	"github.com/compatbot/compatbot/workflow/prflow"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/state"
)

const (
	appID = 77
	inst  = 9
	repo  = "eessi/compat-layer"
)

type world struct {
	gh  *githubfake.Server
	db  *state.DB
	cl  *ghclient.Factory
	sha string
}

// newWorld puts the real ghclient and bot/checks in front of the GitHub
// double (GitHub cannot be reached from tests), with a real git
// repository behind it so check runs on unknown commits are refused as
// GitHub refuses them.
func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{}
	git := testgit.ExampleRepo(t)
	w.sha = testgit.Git(t, git, "rev-parse", "pr")
	gh, key := githubfake.New(appID)
	t.Cleanup(gh.Close)
	r := gh.AddRepo("eessi", "compat-layer", inst, "file://"+git)
	r.GitDir = filepath.Join(git, ".git")
	r.Branches["main"] = testgit.Git(t, git, "rev-parse", "main")
	w.gh = gh
	var err error
	if w.cl, err = ghclient.New(ghclient.Config{APIURL: gh.APIURL(), AppID: appID, PrivateKey: key,
		Limits: ghclient.Limits{Backoff: 5 * time.Millisecond, MaxWait: 2 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	if w.db, err = state.Open(filepath.Join(t.TempDir(), "compatbot.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.db.Close() })
	if err := prflow.EnsureSchema(context.Background(), w.db); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestChecksReporterRepeatable(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	runs, err := checks.New(ctx, w.db, "https://compatbot.example")
	if err != nil {
		t.Fatal(err)
	}
	rep := ChecksReporter{Runs: runs, Clients: w.cl}
	ref := prflow.CheckRef{Repo: repo, Installation: inst, PR: 7, HeadSHA: w.sha, Name: "compat 2026.06 linux-x86_64"}
	for i := 0; i < 2; i++ {
		if err := rep.Queue(ctx, ref); err != nil {
			t.Fatal(err)
		}
	}
	if err := rep.Progress(ctx, ref, report.Check{Title: "Building", Summary: "emerge runs", DetailsURL: "https://compatbot.example/builds/x/log"}); err != nil {
		t.Fatal(err)
	}
	got := w.gh.CheckRuns(repo)
	if len(got) != 1 || got[0].Status != "in_progress" || got[0].DetailsURL != "https://compatbot.example/builds/x/log" {
		t.Fatalf("after two queues and a progress: %+v", got)
	}
	done := report.Check{Name: ref.Name, Conclusion: report.Success, Title: "Built and tested", Summary: "ok"}
	for i := 0; i < 2; i++ {
		if err := rep.Complete(ctx, ref, done); err != nil {
			t.Fatal(err)
		}
	}
	// A progress report that arrives late does not reopen the run.
	if err := rep.Progress(ctx, ref, report.Check{Title: "Testing"}); err != nil {
		t.Fatal(err)
	}
	got = w.gh.CheckRuns(repo)
	if len(got) != 1 || got[0].Status != "completed" || got[0].Conclusion != "success" || got[0].Title != "Built and tested" {
		t.Fatalf("after completes and a late progress: %+v", got)
	}
	// A run on a commit GitHub does not have is an error, not a silent no.
	bad := ref
	bad.HeadSHA = strings.Repeat("a", 40)
	if err := rep.Queue(ctx, bad); err == nil {
		t.Error("queueing a run on an unknown commit succeeded")
	}
}

func TestGitHubAPI(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	api := GitHubAPI{DB: w.db, Clients: w.cl}
	// The installation as an event recorded it (TestInstallationLookup
	// covers a repository without one).
	if _, err := w.db.Exec(`INSERT INTO prflow_installations(repo, installation) VALUES(?,?)`, repo, inst); err != nil {
		t.Fatal(err)
	}
	id, err := api.CreateDeployment(ctx, repo, w.sha, prflow.DeploymentEnv("prod"), "PR #7 by @mia: 2026.06 linux-x86_64")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"in_progress", "success"} {
		if err := api.SetDeploymentStatus(ctx, repo, id, st, strings.Repeat("long ", 40)); err != nil {
			t.Fatal(err)
		}
	}
	deps := w.gh.Deployments(repo)
	if len(deps) != 1 || deps[0].Environment != "compat-prod" || len(deps[0].Statuses) != 2 || deps[0].Statuses[1].State != "success" {
		t.Fatalf("deployments: %+v", deps)
	}
	if n := len([]rune(deps[0].Statuses[0].Description)); n > 140 {
		t.Errorf("status description of %d characters (GitHub takes 140)", n)
	}

	if _, err := api.ReadFile(ctx, repo, "main", "changelog/2026.06.md"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reading a file that does not exist: %v, want fs.ErrNotExist", err)
	}
	for _, body := range []string{"# one\n", "# one\n# two\n"} {
		if err := api.CommitFile(ctx, repo, "main", "changelog/2026.06.md", []byte(body), "changelog"); err != nil {
			t.Fatal(err)
		}
	}
	if b, ok := w.gh.File(repo, "main", "changelog/2026.06.md"); !ok || string(b) != "# one\n# two\n" {
		t.Errorf("changelog on main = %q", b)
	}
	// A comment on a PR that does not exist is GitHub's 404.
	if err := api.Comment(ctx, repo, 7, "hello"); err == nil {
		t.Error("a comment on a missing PR succeeded")
	}
	w.gh.SetPull(repo, githubfake.Pull{Number: 7, Author: "alice", HeadRef: "pr", HeadSHA: w.sha, BaseRef: "main", State: "open"})
	if err := api.Comment(ctx, repo, 7, "hello"); err != nil {
		t.Fatal(err)
	}
	if cs := w.gh.Comments(repo, 7); len(cs) != 1 || cs[0].Body != "hello" {
		t.Errorf("comments: %+v", cs)
	}
}

package prflow

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/publish"
)

func (e *env) deployer(t *testing.T) (*Deployer, *deploy.Engine) {
	t.Helper()
	api := e.ports
	pd := &Deployer{DB: e.db, Deployments: api}
	core, err := deploy.New(deploy.Options{DB: e.db,
		Targets:   map[string]publish.Publisher{deploy.EnvTest: e.testPub, deploy.EnvProd: e.prodPub},
		Artifacts: deploy.StoreSource{Store: e.store}, Verify: deploy.ContentVerifier{Store: e.store},
		Changelog: api, ChangelogBranch: "main", Notify: Notifier{API: api, OnOutcome: pd.Recovered}})
	if err != nil {
		t.Fatal(err)
	}
	pd.Core = core
	if err := EnsureSchema(context.Background(), e.db); err != nil {
		t.Fatal(err)
	}
	return pd, core
}

func (e *env) deployReq(sha, env, who string, comment int64, merged bool, targets ...sets.Target) DeployRequest {
	return DeployRequest{Repo: repoName, Installation: inst, PR: 7, HeadSHA: sha, BaseRef: "main", Merged: merged,
		Author: "alice", Requester: who, Env: env, Targets: targets, GitDir: e.git, CommentID: comment, Line: 1}
}

func refusal(t *testing.T, err error, want string) {
	t.Helper()
	r, ok := err.(*Refusal)
	if !ok {
		t.Fatalf("error %v (%T), want a *Refusal", err, err)
	}
	if !strings.Contains(r.Reason, want) {
		t.Errorf("refusal %q does not say %q", r.Reason, want)
	}
}

func TestDeployFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	pd, core := e.deployer(t)
	targets := []sets.Target{x86_2025, x86_2026}

	// Never built: refused before anything is created on GitHub.
	_, err := pd.DeployTest(ctx, e.deployReq(e.headSHA, "test", "bob", 1, false, targets...))
	refusal(t, err, "untested digest")
	refusal(t, err, "2026.06 linux-x86_64 was never built at "+e.headSHA[:7])
	if n := len(e.ports.Deployments()); n != 0 {
		t.Fatalf("a refused deploy created %d deployments", n)
	}

	b := e.builder()
	if err := b.Build(ctx, e.request(e.headSHA, append(targets, arm_2026)...)); err != nil {
		t.Fatal(err)
	}
	b.Wait()
	// A target without a build host cannot be deployed.
	_, err = pd.DeployTest(ctx, e.deployReq(e.headSHA, "test", "bob", 2, false, append(targets, arm_2026)...))
	refusal(t, err, "2026.06 linux-aarch64: its build at "+e.headSHA[:7]+" ended skipped")

	reply, err := pd.DeployTest(ctx, e.deployReq(e.headSHA, "test", "bob", 3, false, targets...))
	if err != nil {
		t.Fatal(err)
	}
	tag := "2026.06-linux-x86_64-pr7-" + e.headSHA[:7]
	if !strings.Contains(reply, tag) {
		t.Errorf("reply does not name tag %s:\n%s", tag, reply)
	}
	cur, _, err := e.testPub.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cur, "versions/2026.06/compat/linux/x86_64/var/db/pkg/dev-util/direnv-2.36.0")); err != nil {
		t.Errorf("test tree lacks the built package: %v", err)
	}
	deps := e.ports.Deployments()
	if len(deps) != 1 || deps[0].Environment != "compat-test" || deps[0].SHA != e.headSHA {
		t.Fatalf("deployments = %+v", deps)
	}
	if got := statesOf(deps[0]); got != "in_progress success" {
		t.Errorf("deployment statuses = %s", got)
	}
	// The same command again (a retried delivery) answers the same and
	// deploys nothing more.
	again, err := pd.DeployTest(ctx, e.deployReq(e.headSHA, "test", "bob", 3, false, targets...))
	if err != nil || again != reply {
		t.Errorf("repeated call: %v\n%s", err, again)
	}
	if n := len(e.ports.Deployments()); n != 1 {
		t.Errorf("repeated call made %d deployments", n)
	}
	// A second /deploy test of the same head (or the merge) publishes
	// nothing again: test's lineage must stay what prod will compare with.
	linBefore, _ := core.Lineage(ctx, "test", x86_2026)
	again, err = pd.DeployTest(ctx, e.deployReq(e.headSHA, "test", "bob", 33, true, targets...))
	if err != nil || !strings.Contains(again, "Already on test") {
		t.Errorf("second /deploy test: %v\n%s", err, again)
	}
	if lin, _ := core.Lineage(ctx, "test", x86_2026); lin != linBefore {
		t.Errorf("test lineage changed from %s to %s by a redeploy of the same artifact", linBefore, lin)
	}
	if n := len(e.ports.Deployments()); n != 1 {
		t.Errorf("the redeploy made %d deployments", n)
	}

	// Production: refused while the PR is open.
	_, err = pd.DeployProd(ctx, e.deployReq(e.headSHA, "prod", "mia", 4, false, targets...))
	refusal(t, err, "not merged")
	// Refused before anything was announced: no failed Deployment.
	if n := len(e.ports.Deployments()); n != 1 {
		t.Errorf("the refused /deploy prod made %d deployments in all, want the test one only", n)
	}
	reply, err = pd.DeployProd(ctx, e.deployReq(e.headSHA, "prod", "mia", 5, true, targets...))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reply, tag) {
		t.Errorf("prod reply:\n%s", reply)
	}
	deps = e.ports.Deployments()
	if last := deps[len(deps)-1]; last.Environment != "compat-prod" || statesOf(last) != "in_progress success" {
		t.Errorf("prod deployment = %s %s", last.Environment, statesOf(last))
	}
	clog, ok := e.ports.File(repoName, "main", "changelog/2026.06.md")
	if !ok || !strings.Contains(string(clog), "prod · publish `"+tag+"`") {
		t.Errorf("changelog/2026.06.md on main:\n%s", clog)
	}
	hist, err := core.History(ctx, "prod")
	if err != nil || len(hist) != 2 {
		t.Errorf("prod history: %d entries, %v", len(hist), err)
	}

	// Rollback of prod goes back to before the deploy.
	reply, err = pd.Rollback(ctx, RollbackRequest{Repo: repoName, Installation: inst, PR: 7, Env: "prod", Requester: "mia", CommentID: 6, Line: 1})
	if err != nil {
		t.Fatal(err)
	}
	cur, _, _ = e.prodPub.Current(ctx)
	if _, err := os.Stat(filepath.Join(cur, "versions/2026.06/compat/linux/x86_64")); err == nil {
		t.Errorf("after rollback prod still has 2026.06 linux-x86_64; reply:\n%s", reply)
	}
	// A rollback with nothing before it is refused.
	_, err = pd.Rollback(ctx, RollbackRequest{Repo: repoName, Installation: inst, PR: 7, Env: "prod", Tag: "no-such-tag", Requester: "mia", CommentID: 7, Line: 1})
	if _, ok := err.(*Refusal); !ok {
		t.Errorf("rollback to an unknown tag: %v, want a refusal", err)
	}
}

func TestDeployRefusesFailedBuild(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	pd, _ := e.deployer(t)
	b := e.builder(func(o *Options) { o.Build.Env = map[string]string{"FAKEEMERGE_FAIL": "dev-util/direnv"} })
	if err := b.Build(ctx, e.request(e.headSHA, x86_2026)); err != nil {
		t.Fatal(err)
	}
	b.Wait()
	_, err := pd.DeployTest(ctx, e.deployReq(e.headSHA, "test", "bob", 1, false, x86_2026))
	refusal(t, err, "ended failure")
	// A stale head (built, but not the one pinned) is never built.
	_, err = pd.DeployTest(ctx, e.deployReq(e.baseSHA, "test", "bob", 2, false, x86_2026))
	refusal(t, err, "never built at "+e.baseSHA[:7])
	_, err = pd.DeployTest(ctx, e.deployReq(e.headSHA, "test", "bob", 3, false))
	refusal(t, err, "nothing to deploy")
}

func statesOf(d deployment) string { return strings.Join(d.Statuses, " ") }

// TestDeployDiffsAgainstWhatTheTargetHolds: a target records the sets
// commit it serves, and a deploy's changes are the diff from that commit
// to the one deployed, not the whole PR again.
func TestDeployDiffsAgainstWhatTheTargetHolds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	pd, core := e.deployer(t)
	b := e.builder()
	if err := b.Build(ctx, e.request(e.headSHA, x86_2026)); err != nil {
		t.Fatal(err)
	}
	b.Wait()
	if _, err := pd.DeployTest(ctx, e.deployReq(e.headSHA, "test", "bob", 1, false, x86_2026)); err != nil {
		t.Fatal(err)
	}
	held, err := core.Holds(ctx, "test", x86_2026)
	if err != nil {
		t.Fatal(err)
	}
	if held.SetsSHA != e.headSHA || held.Requester != "bob" || held.Digest == "" || !strings.Contains(held.Tag, e.headSHA[:7]) || held.Published == "" {
		t.Fatalf("test holds %+v, want the head's set deployed by bob", held)
	}
	// One more package on top of the deployed head.
	const setPath = "sets/2026.06/linux-x86_64"
	next := e.commit(e.headSHA, map[string]string{setPath: e.file(e.headSHA, setPath) + "# jq for the job scripts\napp-misc/jq\n"})
	if err := b.Build(ctx, e.request(next, x86_2026)); err != nil {
		t.Fatal(err)
	}
	b.Wait()
	if _, err := pd.DeployTest(ctx, e.deployReq(next, "test", "bob", 2, false, x86_2026)); err != nil {
		t.Fatal(err)
	}
	hist, err := core.History(ctx, "test")
	if err != nil || len(hist) < 2 {
		t.Fatalf("history: %d entries, %v", len(hist), err)
	}
	var got []string
	for _, c := range hist[0].Changes["linux-x86_64"] {
		got = append(got, c.Kind+" "+c.Package)
	}
	if strings.Join(got, ", ") != "added app-misc/jq" {
		t.Errorf("the second deploy's changelog says %v, want only what it adds to what test held (added app-misc/jq)", got)
	}
	deps := e.ports.Deployments()
	if len(deps) != 2 {
		t.Fatalf("deployments: %+v", deps)
	}
	if held, _ := core.Holds(ctx, "test", x86_2026); held.SetsSHA != next {
		t.Errorf("test holds %s after the second deploy, want %s", held.SetsSHA, next)
	}
}

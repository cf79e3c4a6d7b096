package handlers

import (
	"context"
	"fmt"
	"github.com/compatbot/compatbot/workflow/prflow"
	"strings"
	"testing"
	"time"

	"github.com/compatbot/compatbot/bot/checks"
	"github.com/compatbot/compatbot/bot/githubfake"
)

func TestPullRequestOpenedRunsSetsCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.openPR("opened", e.headSHA, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	runs := e.runsFor(e.headSHA)
	if len(runs) != 1 {
		t.Fatalf("%d check runs, want 1", len(runs))
	}
	r := runs[0]
	// The example PR adds zstd without a reason: a lint error.
	if r.Name != "compat sets" || r.Status != "completed" || r.Conclusion != "failure" {
		t.Errorf("run %s: %s/%s %q", r.Name, r.Status, r.Conclusion, r.Title)
	}
	if len(r.Annotations) == 0 || !strings.Contains(r.Summary, "2026.06") {
		t.Errorf("run lacks annotations (%d) or a summary of changes:\n%s", len(r.Annotations), r.Summary)
	}
	found := false
	for _, a := range r.Annotations {
		if strings.HasPrefix(a.Path, "sets/2026.06/") && a.AnnotationLevel == "failure" {
			found = true
		}
	}
	if !found {
		t.Errorf("no failure annotation on a 2026.06 set: %+v", r.Annotations)
	}
	if !strings.HasPrefix(r.DetailsURL, "https://compatbot.example/reports/") {
		t.Errorf("details url %q", r.DetailsURL)
	}
	// The run is created queued before anything else happens (first call
	// after the installation token).
	var routes []string
	for _, c := range e.gh.Calls() {
		routes = append(routes, c.Route)
	}
	if len(routes) < 2 || routes[1] != "POST /repos/{owner}/{repo}/check-runs" {
		t.Errorf("calls %v: the check run is not created first", routes)
	}
	// Drafts wait until ready for review.
	e2 := newEnv(t)
	body := e2.payload("pull_request.json", data{Action: "opened", Number: prNumber, Author: "alice", HeadSHA: e2.headSHA, UpdatedAt: time.Now().UTC().Format(time.RFC3339), Draft: true})
	if err := e2.deliver("", "pull_request", body); err != nil {
		t.Fatal(err)
	}
	if n := len(e2.gh.CheckRuns(repoName)); n != 0 {
		t.Errorf("draft PR got %d check runs", n)
	}
	if err := e2.openPR("ready_for_review", e2.headSHA, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := len(e2.gh.CheckRuns(repoName)); n != 1 {
		t.Errorf("ready_for_review: %d check runs, want 1", n)
	}
}

func TestIgnoredPullRequestActions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, a := range []string{"closed", "labeled", "edited", "assigned"} {
		if err := e.openPR(a, e.headSHA, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.deliver("", "star", []byte(`{"action":"created"}`)); err != nil {
		t.Errorf("unknown event: %v", err)
	}
	if n := len(e.gh.Calls()); n != 0 {
		t.Errorf("%d API calls for ignored events", n)
	}
	if err := e.deliver("", "pull_request", []byte(`{"action": "opened", `)); err == nil || !isPermanent(err) {
		t.Errorf("malformed payload: %v, want a permanent error", err)
	}
}

func TestSynchronizeSupersedesOldRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The fetch of the first head fails (git remote down): its run stays
	// in progress and the delivery is to be retried.
	e.gitDown.Store(true)
	if err := e.openPR("opened", e.headSHA, time.Now().Add(-time.Hour)); err == nil {
		t.Fatal("fetch failure not reported")
	}
	if r := e.runsFor(e.headSHA); len(r) != 1 || r[0].Status != "in_progress" {
		t.Fatalf("first run: %+v", r)
	}
	e.gitDown.Store(false)
	next := e.commit(e.headSHA, map[string]string{"README.md": "second push\n"})
	e.push(prNumber, next)
	body := e.payload("pull_request.json", data{Action: "synchronize", Number: prNumber, Author: "alice", HeadSHA: next, Before: e.headSHA, UpdatedAt: time.Now().UTC().Format(time.RFC3339)})
	if err := e.deliver("", "pull_request", body); err != nil {
		t.Fatal(err)
	}
	old := e.runsFor(e.headSHA)[0]
	if old.Status != "completed" || old.Conclusion != "cancelled" || old.Title != "Superseded by "+next[:7] {
		t.Errorf("old run %s/%s %q", old.Status, old.Conclusion, old.Title)
	}
	if r := e.runsFor(next); len(r) != 1 || r[0].Status != "completed" {
		t.Errorf("new run: %+v", r)
	}
}

func TestCheckRunAndSuiteEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// check_suite requested for the PR's head creates the run...
	if err := e.deliver("", "check_suite", e.payload("check_suite.json", data{Action: "requested", Number: prNumber, HeadSHA: e.headSHA, Login: "alice"})); err != nil {
		t.Fatal(err)
	}
	// ...and the pull_request event for the same SHA reuses it.
	if err := e.openPR("opened", e.headSHA, time.Now()); err != nil {
		t.Fatal(err)
	}
	runs := e.runsFor(e.headSHA)
	if len(runs) != 1 || runs[0].Status != "completed" {
		t.Fatalf("after check_suite + pull_request: %d runs %+v", len(runs), runs)
	}
	id := runs[0].ID
	tests := []struct {
		event, action, identifier string
		newRun                    bool
	}{
		{"check_run", "rerequested", "", true},
		{"check_run", "requested_action", "rerun", true},
		{"check_run", "requested_action", "something-else", false},
		{"check_run", "completed", "", false},
		{"check_suite", "rerequested", "", true},
		{"check_suite", "completed", "", false},
	}
	for _, tc := range tests {
		before := len(e.runsFor(e.headSHA))
		file := tc.event + ".json"
		if err := e.deliver("", tc.event, e.payload(file, data{Action: tc.action, Number: prNumber, HeadSHA: e.headSHA, RunID: id, Identifier: tc.identifier, Login: "bob"})); err != nil {
			t.Fatalf("%s %s: %v", tc.event, tc.action, err)
		}
		after := e.runsFor(e.headSHA)
		if got := len(after) - before; got != map[bool]int{true: 1, false: 0}[tc.newRun] {
			t.Errorf("%s %s %s: %d new runs", tc.event, tc.action, tc.identifier, got)
		}
		if last := after[len(after)-1]; last.Status != "completed" {
			t.Errorf("%s %s: run left %s", tc.event, tc.action, last.Status)
		}
	}
	// A push to a branch without PR: checked against the default branch.
	branchSHA := e.commit(e.baseSHA, map[string]string{"README.md": "branch\n"})
	e.git(e.bare, "update-ref", "refs/heads/topic", branchSHA)
	if err := e.deliver("", "check_suite", e.payload("check_suite.json", data{Action: "requested", HeadSHA: branchSHA, HeadRef: "topic", Login: "bob"})); err != nil {
		t.Fatal(err)
	}
	if r := e.runsFor(branchSHA); len(r) != 1 || r[0].Conclusion != "success" {
		t.Errorf("branch push run: %+v", r)
	}
}

func TestManyAnnotationsAreBatched(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b strings.Builder
	b.WriteString(e.file(e.baseSHA, "sets/2026.06/linux-x86_64") + "\n\n")
	for i := range 60 {
		// Entries without a reason: one lint error each.
		fmt.Fprintf(&b, "dev-perl/Example-Mod%d\n", i)
	}
	sha := e.commit(e.baseSHA, map[string]string{"sets/2026.06/linux-x86_64": b.String()})
	e.push(prNumber, sha)
	e.gh.ResetCalls()
	if err := e.openPR("opened", sha, time.Now()); err != nil {
		t.Fatal(err)
	}
	r := e.runsFor(sha)[0]
	if len(r.Annotations) < 60 || r.Conclusion != "failure" {
		t.Errorf("%d annotations, conclusion %s", len(r.Annotations), r.Conclusion)
	}
	want := (len(r.Annotations) + 49) / 50
	// One PATCH to start, then one per batch.
	if n := e.gh.CallCount("PATCH /repos/{owner}/{repo}/check-runs/{id}"); n != 1+want {
		t.Errorf("%d updates for %d annotations, want %d", n, len(r.Annotations), 1+want)
	}
}

func TestRateLimitAndServerErrorsAreRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.gh.FailNext("POST /repos/{owner}/{repo}/check-runs", 1, githubfake.SecondaryRateLimit(1))
	e.gh.FailNext("PATCH /repos/{owner}/{repo}/check-runs/{id}", 2, githubfake.ServerError())
	start := time.Now()
	if err := e.openPR("opened", e.headSHA, time.Now()); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < time.Second {
		t.Errorf("did not wait for Retry-After")
	}
	if n := e.gh.CallCount("POST /repos/{owner}/{repo}/check-runs"); n != 2 {
		t.Errorf("%d creates, want 2 (rate-limited + retry)", n)
	}
	if r := e.runsFor(e.headSHA); len(r) != 1 || r[0].Status != "completed" {
		t.Errorf("runs %+v", r)
	}
	// A primary limit with a reset far away is not waited for: the
	// delivery fails (transient) and the intake retries it later.
	e2 := newEnv(t)
	e2.gh.FailNext("POST /repos/{owner}/{repo}/check-runs", 1, githubfake.PrimaryRateLimit(429, time.Now().Add(time.Hour)))
	if err := e2.openPR("opened", e2.headSHA, time.Now()); err == nil || isPermanent(err) {
		t.Errorf("err = %v, want a transient error", err)
	}
}

func TestIdempotentPullRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := e.payload("pull_request.json", data{Action: "opened", Number: prNumber, Author: "alice", HeadSHA: e.headSHA, UpdatedAt: time.Now().UTC().Format(time.RFC3339)})
	for range 2 {
		if err := e.deliver("same-delivery", "pull_request", body); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.gh.CheckRuns(repoName)); n != 1 {
		t.Errorf("%d check runs after processing twice, want 1", n)
	}
	// The POST's answer lost after GitHub created the run: the retry finds
	// it instead of creating another.
	e2 := newEnv(t)
	e2.gh.FailNext("POST /repos/{owner}/{repo}/check-runs", 1, githubfake.Failure{Status: 502, Message: "Server Error", After: true})
	if err := e2.openPR("opened", e2.headSHA, time.Now()); err == nil {
		t.Fatal("lost answer not reported")
	}
	if err := e2.openPR("opened", e2.headSHA, time.Now()); err != nil {
		t.Fatal(err)
	}
	if r := e2.gh.CheckRuns(repoName); len(r) != 1 || r[0].Status != "completed" {
		t.Errorf("runs after a lost create: %+v", r)
	}
}

func isPermanent(err error) bool {
	return err != nil && intakeIsPermanent(err)
}

// TestAPICallBudget pins what each event costs in GitHub API requests: the
// repository is read through git, not the API.
func TestAPICallBudget(t *testing.T) {
	t.Parallel()
	var got []int
	e := newEnv(t, func(o *Options) { o.ObserveCalls = func(_ string, n int) { got = append(got, n) } })
	if err := e.openPR("opened", e.headSHA, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.comment("bob", "/status"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.comment("bob", "no command here"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.comment("mia", "/deploy test"); err != nil {
		t.Fatal(err)
	}
	next := e.commit(e.headSHA, map[string]string{"README.md": "second push\n"})
	e.push(prNumber, next)
	if err := e.openPR("synchronize", next, time.Now()); err != nil {
		t.Fatal(err)
	}
	// opened: token, create, in_progress, complete. /status: PR, reaction,
	// reply. No command: nothing. /deploy test: PR, permission, reaction,
	// reply. A push, with the token still valid: create, in_progress,
	// complete.
	want := []int{4, 3, 0, 4, 3}
	if len(got) != len(want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("API calls per event %v, want %v", got, want)
			break
		}
	}
}

func TestMergeDeploysToTest(t *testing.T) {
	t.Parallel()
	dep := &recDeployer{}
	e := newEnv(t, func(o *Options) { o.Deployer = dep })
	if err := e.openPR("opened", e.headSHA, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	closed := func(merged bool) []byte {
		return e.payload("pull_request.json", data{Action: "closed", Number: prNumber, Author: "alice", HeadSHA: e.headSHA,
			UpdatedAt: time.Now().UTC().Format(time.RFC3339), Merged: merged, MergedBy: map[bool]string{true: "mia"}[merged]})
	}
	if err := e.deliver("", "pull_request", closed(false)); err != nil {
		t.Fatal(err)
	}
	if len(dep.reqs) != 0 {
		t.Fatalf("closing without merge deployed: %+v", dep.reqs)
	}
	// The same merge delivered twice (a redelivery after a crash) deploys once.
	for i := 0; i < 2; i++ {
		if err := e.deliver("", "pull_request", closed(true)); err != nil {
			t.Fatal(err)
		}
	}
	if len(dep.reqs) != 1 {
		t.Fatalf("merge gave %d deploy requests, want 1", len(dep.reqs))
	}
	r := dep.reqs[0]
	if r.Env != "test" || !r.Merged || r.Requester != "mia" || r.Author != "alice" || r.CommentID != -prNumber || r.HeadSHA != e.headSHA || len(r.Targets) == 0 {
		t.Errorf("request %+v", r)
	}
	reply := replyTo(e, -prNumber)
	if !strings.Contains(reply, "Merged by @mia") || !strings.Contains(reply, "Deploying 4 targets to test.") {
		t.Errorf("reply:\n%s", reply)
	}
}

func TestMergeDeployRefusalIsReported(t *testing.T) {
	t.Parallel()
	dep := &refusingDeployer{}
	e := newEnv(t, func(o *Options) { o.Deployer = dep })
	body := e.payload("pull_request.json", data{Action: "closed", Number: prNumber, Author: "alice", HeadSHA: e.headSHA,
		UpdatedAt: time.Now().UTC().Format(time.RFC3339), Merged: true, MergedBy: "mia"})
	if err := e.deliver("", "pull_request", body); err != nil {
		t.Fatal(err)
	}
	if reply := replyTo(e, -prNumber); !strings.Contains(reply, "the deploy to test was refused: no passing build of") {
		t.Errorf("reply:\n%s", reply)
	}
}

type refusingDeployer struct{ recDeployer }

func (d *refusingDeployer) DeployTest(ctx context.Context, r prflow.DeployRequest) (string, error) {
	return "", &prflow.Refusal{Reason: "no passing build of " + short(r.HeadSHA)}
}

// A sets report longer than GitHub takes is cut to fit, with a link to the
// full report, which is kept whole.
func TestLongSetsReportLinksTheWholeReport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var sb strings.Builder
	sb.WriteString(e.file(e.headSHA, "sets/2026.06/linux-x86_64"))
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&sb, "\ndev-libs/pkg%d # reason number %d for a rather long explanation", i, i)
	}
	sha := e.commit(e.headSHA, map[string]string{"sets/2026.06/linux-x86_64": sb.String() + "\n"})
	e.push(prNumber, sha)
	if err := e.openPR("synchronize", sha, time.Now()); err != nil {
		t.Fatal(err)
	}
	runs := e.runsFor(sha)
	if len(runs) != 1 {
		t.Fatalf("%d check runs, want 1", len(runs))
	}
	r := runs[0]
	if len([]rune(r.Summary)) > checks.MaxOutput || len([]rune(r.Text)) > checks.MaxOutput {
		t.Errorf("summary %d, text %d characters: over GitHub's %d", len([]rune(r.Summary)), len([]rune(r.Text)), checks.MaxOutput)
	}
	if !strings.Contains(r.Summary+r.Text, "[full report]("+r.DetailsURL+")") {
		t.Errorf("the cut report does not link %s", r.DetailsURL)
	}
	id := strings.TrimPrefix(r.DetailsURL, "https://compatbot.example/reports/")
	var md string
	if err := e.db.QueryRow(`SELECT markdown FROM check_reports WHERE id = ?`, id).Scan(&md); err != nil {
		t.Fatalf("report %s: %v", id, err)
	}
	if !strings.Contains(md, "dev-libs/pkg2999") || strings.Contains(md, "truncated") {
		t.Errorf("the full report (%d bytes) is not whole", len(md))
	}
}

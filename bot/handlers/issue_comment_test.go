package handlers

import (
	"context"
	"fmt"
	"github.com/compatbot/compatbot/workflow/prflow"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compatbot/compatbot/bot/githubfake"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/gitrepo"
)

func reacted(e *env, id int64) []string {
	var out []string
	for _, r := range e.gh.Reactions(id) {
		out = append(out, r.Content)
	}
	return out
}

// replyTo returns the bot's reply to comment id, "" if none.
func replyTo(e *env, id int64) string {
	for _, c := range e.replies() {
		if strings.HasPrefix(c.Body, replyMarker(id)) {
			return c.Body
		}
	}
	return ""
}

func (e *env) requests() int {
	var n int
	// Accepted deploy and rollback commands, as the handler recorded its
	// answers (the lifecycle's own record is the Deployer's).
	if err := e.db.QueryRow(`SELECT count(*) FROM commands WHERE (command LIKE '/deploy%' OR command LIKE '/rollback%') AND outcome='done'`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestPermissionMatrix runs each command as each kind of user through the
// handler, against the example repository's config on main:
// deploy.test write, deploy.prod maintain or team eessi/compat-maintainers,
// rebuild and rollback at their defaults (write, maintain).
func TestPermissionMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.openPR("opened", e.headSHA, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	users := []string{"eve", "rita", "tom", "bob", "mia", "ada", "tina"} // none read triage write maintain admin team
	want := map[string]string{
		"/deploy test":   "---YYY-",
		"/deploy prod":   "----YYY",
		"/rebuild":       "---YYY-",
		"/rollback prod": "----YY-",
		"/status":        "YYYYYYY",
		"/help":          "YYYYYYY",
	}
	for _, cmd := range []string{"/deploy test", "/deploy prod", "/rebuild", "/rollback prod", "/status", "/help"} {
		got := ""
		for _, u := range users {
			c, err := e.comment(u, cmd)
			if err != nil {
				t.Fatalf("%s by %s: %v", cmd, u, err)
			}
			reply := replyTo(e, c.ID)
			rs := reacted(e, c.ID)
			switch {
			case len(rs) == 1 && !strings.Contains(reply, "refused"):
				got += "Y"
			case len(rs) == 0 && strings.Contains(reply, "refused") && strings.Contains(reply, "@"+u):
				got += "-"
			default:
				t.Errorf("%s by %s: reactions %v, reply %q", cmd, u, rs, reply)
				got += "?"
			}
		}
		if got != want[cmd] {
			t.Errorf("%s: allowed %s for %v, want %s", cmd, got, users, want[cmd])
		}
	}
	// The author may not deploy their own PR to prod, whatever their role.
	e.gh.SetRole(repoName, "alice", "admin")
	c, err := e.comment("alice", "/deploy prod")
	if err != nil {
		t.Fatal(err)
	}
	if r := replyTo(e, c.ID); !strings.Contains(r, "their own pull request") {
		t.Errorf("self prod: %q", r)
	}
}

func TestDeployRecordsAndExplains(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.openPR("opened", e.headSHA, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	c, err := e.comment("bob", "Tested locally.\n\n/deploy test\n")
	if err != nil {
		t.Fatal(err)
	}
	if rs := reacted(e, c.ID); !slices.Equal(rs, []string{"rocket"}) {
		t.Errorf("reactions %v, want rocket", rs)
	}
	reply := replyTo(e, c.ID)
	for _, want := range []string{"@bob", "the deploy pipeline is not enabled", "test repository", "2026.06-linux-x86_64-pr3-" + e.headSHA[:7], "2025.06-linux-aarch64-pr3-" + e.headSHA[:7], "nothing was published", "compat sets check of this commit has not passed (failure)"} {
		if !strings.Contains(reply, want) {
			t.Errorf("reply lacks %q:\n%s", want, reply)
		}
	}
	var pr int
	var sha, target, user, st string
	if err := e.db.QueryRow(`SELECT pr, sha, command, user, outcome FROM commands WHERE command LIKE '/deploy%'`).Scan(&pr, &sha, &target, &user, &st); err != nil {
		t.Fatal(err)
	}
	if pr != prNumber || sha != e.headSHA || target != "/deploy test" || user != "bob" || st != "done" {
		t.Errorf("recorded %d %s %s %s %s", pr, sha, target, user, st)
	}
	c, err = e.comment("mia", "/rollback prod 2026.06-linux-x86_64-pr2-abcdef0\n/status")
	if err != nil {
		t.Fatal(err)
	}
	reply = replyTo(e, c.ID)
	// Without a deploy pipeline nothing was deployed, so /status lists no
	// deploy requests (the lifecycle keeps them; see TestDeployerHook).
	for _, want := range []string{"production repository back to tag `2026.06-linux-x86_64-pr2-abcdef0`", "| compat sets | completed | failure |", "No deploy requests."} {
		if !strings.Contains(reply, want) {
			t.Errorf("reply lacks %q:\n%s", want, reply)
		}
	}
	if rs := reacted(e, c.ID); !slices.Equal(rs, []string{"+1", "rocket"}) {
		t.Errorf("reactions %v", rs)
	}
	if len(e.replies()) != 2 {
		t.Errorf("%d replies, want one per comment", len(e.replies()))
	}
}

func TestCommentsThatAreNotCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.openPR("opened", e.headSHA, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.gh.ResetCalls()
	for _, tc := range []struct{ login, body string }{
		{"mia", "LGTM, run it:\n```\n/deploy prod\n```"},
		{"mia", "~~~\n/deploy prod\n~~~"},
		{"mia", "> /deploy prod\n\nquoted"},
		{"mia", "    /deploy prod"},
		{"mia", "please /deploy test later"},
		{"mia", "/cc @bob"},
		{"compatbot[bot]", "/deploy test"},
		{"dependabot[bot]", "/deploy prod"},
	} {
		c, err := e.comment(tc.login, tc.body)
		if err != nil {
			t.Fatal(err)
		}
		if rs := reacted(e, c.ID); len(rs) > 0 {
			t.Errorf("%q by %s got reactions %v", tc.body, tc.login, rs)
		}
	}
	// A user of type Bot without the [bot] suffix (a machine account).
	c := e.gh.AddComment(repoName, prNumber, "ci-runner", "/deploy test")
	if err := e.deliver("", "issue_comment", e.commentPayload(c, "Bot", "created", true)); err != nil {
		t.Fatal(err)
	}
	// Edited and deleted comments, and comments on issues.
	c = e.gh.AddComment(repoName, prNumber, "mia", "/deploy prod")
	for _, action := range []string{"edited", "deleted"} {
		if err := e.deliver("", "issue_comment", e.commentPayload(c, "User", action, true)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.deliver("", "issue_comment", e.commentPayload(c, "User", "created", false)); err != nil {
		t.Fatal(err)
	}
	if n := len(e.gh.Calls()); n != 0 {
		t.Errorf("%d API calls for comments without commands: %+v", n, e.gh.Calls())
	}
	if n := len(e.replies()); n != 0 {
		t.Errorf("%d replies", n)
	}
	if n := e.requests(); n != 0 {
		t.Errorf("%d deploy requests recorded", n)
	}
}

func TestDidYouMeanAndUsage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, err := e.comment("bob", "/deploi test\n/rebiuld\n/deploy tset\n/rollback prod trunk")
	if err != nil {
		t.Fatal(err)
	}
	reply := replyTo(e, c.ID)
	for _, want := range []string{"Did you mean `/deploy test`?", "Did you mean `/rebuild`?", "`tset` is not an environment. Did you mean `/deploy test`?", "CVMFS internal tag"} {
		if !strings.Contains(reply, want) {
			t.Errorf("reply lacks %q:\n%s", want, reply)
		}
	}
	if rs := reacted(e, c.ID); len(rs) != 0 {
		t.Errorf("reactions %v for no accepted command", rs)
	}
	if e.requests() != 0 {
		t.Error("a mistyped command was recorded")
	}
	// /help answers everyone, also on an unknown arch for /rebuild.
	c, err = e.comment("bob", "/help\n/rebuild riscv64")
	if err != nil {
		t.Fatal(err)
	}
	reply = replyTo(e, c.ID)
	if !strings.Contains(reply, "/rollback test|prod [TAG]") || !strings.Contains(reply, "`riscv64` is not an arch of this repository (it has linux-aarch64, linux-x86_64)") {
		t.Errorf("reply:\n%s", reply)
	}
}

func TestStaleCommandIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.openPR("opened", e.headSHA, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	// mia writes /deploy test while the head is headSHA...
	c := e.gh.AddComment(repoName, prNumber, "mia", "/deploy test")
	// ...then a push lands (and is processed) before the command is.
	next := e.commit(e.headSHA, map[string]string{"README.md": "pushed after the comment\n"})
	e.push(prNumber, next)
	body := e.payload("pull_request.json", data{Action: "synchronize", Number: prNumber, Author: "alice", HeadSHA: next, Before: e.headSHA,
		UpdatedAt: c.CreatedAt.Add(2 * time.Second).Format(time.RFC3339)})
	if err := e.deliver("", "pull_request", body); err != nil {
		t.Fatal(err)
	}
	if err := e.deliver("", "issue_comment", e.commentPayload(c, "User", "created", true)); err != nil {
		t.Fatal(err)
	}
	reply := replyTo(e, c.ID)
	if !strings.Contains(reply, "refused") || !strings.Contains(reply, e.headSHA[:7]) || !strings.Contains(reply, next[:7]) {
		t.Errorf("stale command reply:\n%s", reply)
	}
	if e.requests() != 0 || len(reacted(e, c.ID)) != 0 {
		t.Error("stale command was accepted")
	}
	// Written again after the push, it is accepted and pinned to the new head.
	c2 := e.gh.AddComment(repoName, prNumber, "mia", "/deploy test")
	c2.CreatedAt = c.CreatedAt.Add(3 * time.Second)
	if err := e.deliver("", "issue_comment", e.commentPayload(c2, "User", "created", true)); err != nil {
		t.Fatal(err)
	}
	var sha string
	if err := e.db.QueryRow(`SELECT sha FROM commands WHERE comment_id=?`, c2.ID).Scan(&sha); err != nil || sha != next {
		t.Errorf("request pinned to %q (%v), want %s", sha, err, next)
	}
}

// TestForcePushBackToEarlierHead: a head pushed again after another one
// is current again from that push on; a command written then is judged
// against it and accepted, not refused as stale because the same SHA was
// also the head long before.
func TestForcePushBackToEarlierHead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t0 := time.Now().Add(-time.Hour)
	if err := e.openPR("opened", e.headSHA, t0); err != nil {
		t.Fatal(err)
	}
	first := e.headSHA
	next := e.commit(first, map[string]string{"README.md": "a push\n"})
	for i, sha := range []string{next, first} {
		e.push(prNumber, sha)
		body := e.payload("pull_request.json", data{Action: "synchronize", Number: prNumber, Author: "alice", HeadSHA: sha,
			UpdatedAt: t0.Add(time.Duration(i+1) * time.Minute).Format(time.RFC3339)})
		if err := e.deliver("", "pull_request", body); err != nil {
			t.Fatal(err)
		}
	}
	c := e.gh.AddComment(repoName, prNumber, "mia", "/deploy test")
	c.CreatedAt = t0.Add(3 * time.Minute)
	if err := e.deliver("", "issue_comment", e.commentPayload(c, "User", "created", true)); err != nil {
		t.Fatal(err)
	}
	if reply := replyTo(e, c.ID); strings.Contains(reply, "pushed since") {
		t.Errorf("a command on the force-pushed-back head was refused as stale:\n%s", reply)
	}
	var sha string
	if err := e.db.QueryRow(`SELECT sha FROM commands WHERE comment_id=?`, c.ID).Scan(&sha); err != nil || sha != first {
		t.Errorf("request pinned to %q (%v), want %s", sha, err, first)
	}
	// Written while the other head was current, it is stale.
	c2 := e.gh.AddComment(repoName, prNumber, "mia", "/deploy test")
	c2.CreatedAt = t0.Add(90 * time.Second)
	if err := e.deliver("", "issue_comment", e.commentPayload(c2, "User", "created", true)); err != nil {
		t.Fatal(err)
	}
	if reply := replyTo(e, c2.ID); !strings.Contains(reply, "pushed since") {
		t.Errorf("a command written while %s was the head was not refused:\n%s", next[:7], reply)
	}
}

func TestCommentIdempotency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.openPR("opened", e.headSHA, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	c := e.gh.AddComment(repoName, prNumber, "mia", "/deploy test\n/rebuild")
	body := e.commentPayload(c, "User", "created", true)
	for range 3 {
		if err := e.deliver("delivery-1", "issue_comment", body); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.replies()); n != 1 {
		t.Errorf("%d replies after three deliveries, want 1", n)
	}
	if rs := reacted(e, c.ID); !slices.Equal(rs, []string{"+1", "rocket"}) {
		t.Errorf("reactions %v", rs)
	}
	if n := e.requests(); n != 1 {
		t.Errorf("%d deploy requests, want 1", n)
	}
	if n := len(e.runsFor(e.headSHA)); n != 2 {
		t.Errorf("%d check runs, want 2 (the push's and one rebuild)", n)
	}
	// The reply's POST is carried out but its answer is lost: the retry
	// finds the reply by its marker instead of posting it again.
	c = e.gh.AddComment(repoName, prNumber, "mia", "/status")
	body = e.commentPayload(c, "User", "created", true)
	e.gh.FailNext("POST /repos/{owner}/{repo}/issues/{number}/comments", 1, githubfake.Failure{Status: 502, Message: "Server Error", After: true})
	if err := e.deliver("delivery-2", "issue_comment", body); err == nil {
		t.Fatal("lost answer not reported")
	}
	if err := e.deliver("delivery-2", "issue_comment", body); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range e.replies() {
		if strings.HasPrefix(r.Body, replyMarker(c.ID)) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d replies to the /status comment, want 1", n)
	}
}

// recDeployer stands in for the lead's adapter to workflow/deploy: it
// records the requests and answers like one.
type recDeployer struct {
	reqs      []prflow.DeployRequest
	rollbacks []prflow.RollbackRequest
	refuse    string
}

func (d *recDeployer) DeployTest(ctx context.Context, r prflow.DeployRequest) (string, error) {
	d.reqs = append(d.reqs, r)
	return fmt.Sprintf("Deploying %d targets to test.", len(r.Targets)), nil
}

func (d *recDeployer) DeployProd(ctx context.Context, r prflow.DeployRequest) (string, error) {
	d.reqs = append(d.reqs, r)
	if d.refuse != "" {
		return "", &prflow.Refusal{Reason: d.refuse}
	}
	return "Deploying to prod.", nil
}

func (d *recDeployer) Rollback(ctx context.Context, r prflow.RollbackRequest) (string, error) {
	d.rollbacks = append(d.rollbacks, r)
	return "Rolled back.", nil
}

func (d *recDeployer) Requests(ctx context.Context, repo string, pr, limit int) ([]prflow.CommandRecord, error) {
	var out []prflow.CommandRecord
	for _, r := range d.reqs {
		out = append(out, prflow.CommandRecord{Kind: "deploy", Env: r.Env, HeadSHA: r.HeadSHA, User: r.Requester, State: "done"})
	}
	for _, r := range d.rollbacks {
		out = append(out, prflow.CommandRecord{Kind: "rollback", Env: r.Env, Tag: r.Tag, User: r.Requester, State: "done"})
	}
	return out, nil
}

func TestDeployerHook(t *testing.T) {
	t.Parallel()
	dep := &recDeployer{refuse: "the test deploy of this digest has not passed its tests"}
	e := newEnv(t, func(o *Options) { o.Deployer = dep })
	if err := e.openPR("opened", e.headSHA, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	c, err := e.comment("mia", "/deploy test\n/deploy prod\n/rollback test")
	if err != nil {
		t.Fatal(err)
	}
	if len(dep.reqs) != 2 || len(dep.rollbacks) != 1 {
		t.Fatalf("deployer got %d deploys, %d rollbacks", len(dep.reqs), len(dep.rollbacks))
	}
	r := dep.reqs[0]
	if r.Repo != repoName || r.PR != prNumber || r.HeadSHA != e.headSHA || r.Env != "test" || r.Requester != "mia" || r.Author != "alice" ||
		r.CommentID != c.ID || r.Line != 1 || r.GitDir == "" || r.BaseRef != "main" || r.Installation != inst {
		t.Errorf("request %+v", r)
	}
	if !slices.Contains(r.Targets, sets.Target{Version: "2026.06", OS: "linux", Arch: "x86_64"}) {
		t.Errorf("targets %v", r.Targets)
	}
	reply := replyTo(e, c.ID)
	for _, want := range []string{"Deploying 4 targets to test.", "`/deploy prod` refused: the test deploy of this digest has not passed its tests", "Rolled back."} {
		if !strings.Contains(reply, want) {
			t.Errorf("reply lacks %q:\n%s", want, reply)
		}
	}
	rows, err := e.db.Query(`SELECT command, outcome FROM commands WHERE comment_id=? ORDER BY line`, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for rows.Next() {
		var target, st string
		rows.Scan(&target, &st)
		states = append(states, target+":"+st)
	}
	rows.Close()
	if !slices.Equal(states, []string{"/deploy test:done", "/deploy prod:refused", "/rollback test:done"}) {
		t.Errorf("request states %v", states)
	}
	// Processed again: the deployer is not called again.
	if err := e.deliver("", "issue_comment", e.commentPayload(c, "User", "created", true)); err != nil {
		t.Fatal(err)
	}
	if len(dep.reqs) != 2 {
		t.Errorf("deployer called again: %d", len(dep.reqs))
	}
	// /status lists the requests from the lifecycle's record of them.
	st, err := e.comment("bob", "/status")
	if err != nil {
		t.Fatal(err)
	}
	reply = replyTo(e, st.ID)
	for _, want := range []string{"Deploy requests (newest first)", "| `/deploy test` | " + e.headSHA[:7] + " | @mia |", "| `/rollback test` | – | @mia |"} {
		if !strings.Contains(reply, want) {
			t.Errorf("/status lacks %q:\n%s", want, reply)
		}
	}
}

// recBuilder stands in for the lead's adapter to the build pipeline.
type recBuilder struct{ reqs []prflow.BuildRequest }

func (b *recBuilder) Build(ctx context.Context, r prflow.BuildRequest) error {
	b.reqs = append(b.reqs, r)
	return nil
}

func (b *recBuilder) Requested(ctx context.Context, repo, sha, trigger string) (bool, error) {
	for _, r := range b.reqs {
		if r.Repo == repo && r.HeadSHA == sha && r.Trigger == trigger && len(r.Targets) > 0 {
			return true, nil
		}
	}
	return false, nil
}

func TestBuilderHook(t *testing.T) {
	t.Parallel()
	b := &recBuilder{}
	e := newEnv(t, func(o *Options) { o.Builder = b })
	// The example PR fails lint: no build.
	if err := e.openPR("opened", e.headSHA, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if len(b.reqs) != 0 {
		t.Fatalf("failing PR was built: %+v", b.reqs)
	}
	files := map[string]string{}
	for _, arch := range []string{"x86_64", "aarch64"} {
		p := "sets/2026.06/linux-" + arch
		files[p] = e.file(e.baseSHA, p) + "\napp-misc/jq # JSON in the EESSI init scripts\n"
	}
	clean := e.commit(e.baseSHA, files)
	e.push(prNumber, clean)
	body := e.payload("pull_request.json", data{Action: "synchronize", Number: prNumber, Author: "alice", HeadSHA: clean, Before: e.headSHA, UpdatedAt: time.Now().UTC().Format(time.RFC3339)})
	for range 2 {
		if err := e.deliver("push-delivery", "pull_request", body); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.runsFor(clean); len(r) != 1 || r[0].Conclusion != "success" {
		t.Fatalf("clean PR run: %+v", r)
	}
	if len(b.reqs) != 1 {
		t.Fatalf("%d builds, want 1", len(b.reqs))
	}
	r := b.reqs[0]
	if r.AllowLibcUpdate {
		t.Error("a PR without the label may change glibc")
	}
	// A maintainer labels the PR "compat: allow-libc-update": the next
	// build of it may change glibc.
	labeled := e.commit(clean, map[string]string{"README.md": "labeled\n"})
	e.push(prNumber, labeled)
	if err := e.deliver("", "pull_request", e.payload("pull_request.json", data{Action: "synchronize", Number: prNumber, Author: "alice", HeadSHA: labeled,
		Before: clean, UpdatedAt: time.Now().UTC().Format(time.RFC3339), Labels: []string{"bug", AllowLibcUpdateLabel}})); err != nil {
		t.Fatal(err)
	}
	if last := b.reqs[len(b.reqs)-1]; last.HeadSHA != labeled || !last.AllowLibcUpdate {
		t.Errorf("labeled PR's build request: %+v", last)
	}
	b.reqs = b.reqs[:1]
	if r.HeadSHA != clean || r.BaseSHA != e.baseSHA || r.PR != prNumber || r.GitDir == "" ||
		!slices.Equal(r.Targets, []sets.Target{{Version: "2026.06", OS: "linux", Arch: "aarch64"}, {Version: "2026.06", OS: "linux", Arch: "x86_64"}}) {
		t.Errorf("build request %+v", r)
	}
	// /rebuild x86_64 asks for a build of that arch.
	if _, err := e.comment("bob", "/rebuild x86_64"); err != nil {
		t.Fatal(err)
	}
	if len(b.reqs) != 2 || !slices.Equal(b.reqs[1].Arches, []string{"x86_64"}) || !strings.HasPrefix(b.reqs[1].Trigger, "rebuild:") {
		t.Errorf("rebuild: %+v", b.reqs[len(b.reqs)-1])
	}
}

// TestRulesComeFromTheDefaultBranch: a PR that rewrites the config to let
// anyone deploy does not change who may; a broken config on the default
// branch refuses rather than falling back to defaults.
func TestRulesComeFromTheDefaultBranch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := ".github/compatbot.yml"
	loose := e.file(e.headSHA, cfg) + "\n"
	loose = strings.Replace(loose, "test: {permission: write}", "test: {permission: write, users: [eve]}", 1)
	if !strings.Contains(loose, "users: [eve]") {
		t.Fatal("example config changed; adjust the test")
	}
	sha := e.commit(e.headSHA, map[string]string{cfg: loose})
	e.push(prNumber, sha)
	if err := e.openPR("synchronize", sha, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	c, err := e.comment("eve", "/deploy test")
	if err != nil {
		t.Fatal(err)
	}
	if r := replyTo(e, c.ID); !strings.Contains(r, "refused") {
		t.Errorf("PR's own config granted eve a deploy:\n%s", r)
	}
	// The same change merged to main does grant it.
	main := e.commit(e.baseSHA, map[string]string{cfg: loose})
	e.git(e.bare, "update-ref", "refs/heads/main", main)
	c, err = e.comment("eve", "/deploy test")
	if err != nil {
		t.Fatal(err)
	}
	if r := replyTo(e, c.ID); strings.Contains(r, "refused") || len(reacted(e, c.ID)) != 1 {
		t.Errorf("config on main not applied:\n%s", r)
	}
	// A broken config on main: refused with the error, not defaulted.
	broken := e.commit(main, map[string]string{cfg: "deploy:\n  prod: {permission: owner}\n"})
	e.git(e.bare, "update-ref", "refs/heads/main", broken)
	c, err = e.comment("mia", "/deploy test")
	if err != nil {
		t.Fatal(err)
	}
	if r := replyTo(e, c.ID); !strings.Contains(r, "config on the default branch is invalid") || !strings.Contains(r, "compatbot.yml:2") {
		t.Errorf("broken config:\n%s", r)
	}
}

type recTargets struct{ repo, gitDir, ref string }

func (r *recTargets) TargetStatus(ctx context.Context, repo, gitDir, ref string) (string, error) {
	r.repo, r.gitDir, r.ref = repo, gitDir, ref
	return "| target | tag | drift |\n|---|---|---|\n| test 2026.06 linux-x86_64 | `2026.06-linux-x86_64-pr2-abcdef0` | in sync |\n", nil
}

func TestStatusShowsDeployTargets(t *testing.T) {
	t.Parallel()
	tg := &recTargets{}
	e := newEnv(t, func(o *Options) { o.Targets = tg })
	if err := e.openPR("opened", e.headSHA, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	c, err := e.comment("rita", "/status")
	if err != nil {
		t.Fatal(err)
	}
	reply := replyTo(e, c.ID)
	if !strings.Contains(reply, "Deploy targets (drift against `main`)") || !strings.Contains(reply, "| test 2026.06 linux-x86_64 | `2026.06-linux-x86_64-pr2-abcdef0` | in sync |") {
		t.Errorf("reply lacks the targets:\n%s", reply)
	}
	if tg.repo != repoName || tg.ref != "refs/heads/main" || tg.gitDir == "" {
		t.Errorf("TargetStatus got repo %q, ref %q, gitDir %q", tg.repo, tg.ref, tg.gitDir)
	}
	if sha, err := gitrepo.ResolveCommit(context.Background(), tg.gitDir, tg.ref); err != nil || sha != e.baseSHA {
		t.Errorf("%s in %s resolves to %q (%v), want the default branch %s", tg.ref, tg.gitDir, sha, err, e.baseSHA)
	}
}

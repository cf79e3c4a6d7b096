package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compatbot/compatbot/bot/githubfake"
	"github.com/compatbot/compatbot/bot/intake"
	"github.com/compatbot/compatbot/internal/testgit"
	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/overlay"
	"github.com/compatbot/compatbot/workflow/publish"
	"github.com/compatbot/compatbot/workflow/state"
)

// The end-to-end test of the change workflow (issue 5): the real server
// (serve with the real wiring of wire.go) with a real SQLite file, real
// git (a bare repository served by git http-backend, authenticating with
// the fake's installation tokens as github.com does), the real overlay
// builds, artifacts and local publish targets, driven by signed webhook
// deliveries. GitHub's API is the test double bot/githubfake (GitHub
// cannot be reached from tests) and the build command is the fake
// installer testdata/fakeemerge (Gentoo's emerge cannot run here).

const (
	e2eAppID   = 5150
	e2eInst    = 61
	e2eRepo    = "eessi/compat-layer"
	e2ePR      = 1
	e2eExample = "../../testdata/compat-layer"
)

type e2e struct {
	t        *testing.T
	dir      string
	gh       *githubfake.Server
	bare     string
	cloneURL string
	baseSHA  string
	headSHA  string
	cfgPath  string
	dataDir  string
	hold     string
	base     string // the server's URL
	mu       sync.Mutex
	seq      int
}

// e2eTree is the example PR limited to this machine's arch (x86_64) with
// its lint error fixed, so every target it changes can be built here.
func e2eTree(t *testing.T, dir string) string {
	t.Helper()
	if err := os.CopyFS(dir, os.DirFS(e2eExample+"/base")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"sets/2025.06/linux-x86_64", "sets/2026.06/linux-x86_64"} {
		b, err := os.ReadFile(filepath.Join(e2eExample, "pr", p))
		if err != nil {
			t.Fatal(err)
		}
		// The fix of the lint error, and reasons for entries only on
		// x86_64 (the lint asks for them).
		s := zstdLine.ReplaceAllString(string(b), "app-arch/zstd # x86_64 only for now: EasyBuild unpacks .tar.zst sources\n")
		s = strings.Replace(s, "# loads per-project", "# x86_64 only for now: loads per-project", 1)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// zstdLine is zstd's entry in the example PR, with or without a reason
// (the example gained one; the e2e needs the x86_64-only wording).
var zstdLine = regexp.MustCompile(`(?m)^app-arch/zstd(?: #[^\n]*)?\n`)

func newE2E(t *testing.T) *e2e {
	t.Helper()
	if _, err := os.Stat(e2eExample + "/base"); err != nil {
		t.Fatalf("example repository missing: %v", err)
	}
	fe, err := filepath.Abs("../../testdata/fakeemerge/fakeemerge")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fe); err != nil {
		t.Fatalf("fake installer missing: %v", err)
	}
	e := &e2e{t: t, dir: t.TempDir()}
	gh, key := githubfake.New(e2eAppID)
	t.Cleanup(gh.Close)
	e.gh = gh
	gitSrv := testgit.ServeRepos(t, filepath.Join(e.dir, "remote"), testgit.TokenAuth(gh.TokenValid))
	e.bare, e.cloneURL = gitSrv.Publish(t, testgit.ExampleRepoWith(t, os.DirFS(e2eTree(t, filepath.Join(e.dir, "tree")))), "eessi", "compat-layer")
	e.baseSHA = e.git(e.bare, "rev-parse", "refs/heads/main")
	e.headSHA = e.git(e.bare, "rev-parse", "refs/heads/pr")
	e.git(e.bare, "update-ref", fmt.Sprintf("refs/pull/%d/head", e2ePR), e.headSHA)
	r := gh.AddRepo("eessi", "compat-layer", e2eInst, e.cloneURL)
	r.GitDir = e.bare
	r.Branches["main"] = e.baseSHA
	gh.SetFile(e2eRepo, "main", "changelog/README.md", []byte("# Changelog\n"))
	gh.SetPull(e2eRepo, githubfake.Pull{Number: e2ePR, Title: "2026.06 updates", Author: "alice", HeadRef: "pr", HeadSHA: e.headSHA,
		BaseRef: "main", BaseSHA: e.baseSHA, State: "open"})
	for login, role := range map[string]string{"alice": "maintain", "bob": "write", "mia": "maintain"} {
		gh.SetRole(e2eRepo, login, role)
	}
	gh.AddTeamMember("eessi/compat-maintainers", "mia", "active")

	// The build command is configuration, not PR content: a wrapper that
	// leaves a source file in DISTDIR, waits while the hold file exists,
	// and runs the fake installer.
	e.hold = filepath.Join(e.dir, "hold")
	script := filepath.Join(e.dir, "build.sh")
	if err := os.WriteFile(script, []byte(`#!/bin/sh
set -e
printf 'sources of %s\n' "$COMPAT_SET" > "$COMPAT_DISTDIR/$COMPAT_SET-$COMPAT_VERSION.tar.gz"
while [ -e "`+e.hold+`" ]; do sleep 0.05; done
exec "`+fe+`" "$@"
`), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "app.pem"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	e.dataDir = filepath.Join(e.dir, "var")
	e.cfgPath = filepath.Join(e.dir, "compatbot.yml")
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
public_url: http://compatbot.test
data_dir: %s
log: {format: json, level: info}
github:
  api_url: %s
  app_id: %d
  private_key_file: app.pem
  webhook_secret: %s
intake: {workers: 2, backoff_base: 50ms, backoff_max: 1s}
build:
  command: [%q, "--update", "--deep", "@{{.Set}}"]
  timeout: 2m
changelog: {branch: main}
targets: {test: {url: "https://test.compat.example/"}}
`, e.dataDir, gh.APIURL(), e2eAppID, testSecret, script)
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *e2e) git(dir string, args ...string) string {
	e.t.Helper()
	return testgit.Git(e.t, dir, args...)
}

// TestE2EServerChild is the server process of the end-to-end tests: the
// test binary re-executed, running "compatbot serve" (main's run) with the
// config named by COMPATBOT_E2E_CONFIG.
func TestE2EServerChild(t *testing.T) {
	cfg := os.Getenv("COMPATBOT_E2E_CONFIG")
	if cfg == "" {
		return // only meaningful as the child of an end-to-end test
	}
	os.Exit(run([]string{"serve", "--config", cfg}, os.Stdout, os.Stderr))
}

type server struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// start runs the server in a child process (so it can be killed like a
// real one) with extra environment variables, and waits until it listens.
func (e *e2e) start(env ...string) *server {
	e.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestE2EServerChild$")
	cmd.Env = append(append(os.Environ(), "COMPATBOT_E2E_CONFIG="+e.cfgPath), env...)
	s := &server{cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = s.logs, io.MultiWriter(s.logs, pw)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { s.err = cmd.Wait(); pw.Close(); close(s.done) }()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "compatbot serve: listening on "); ok {
				addr <- a
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		e.base = a
	case <-s.done:
		e.t.Fatalf("server exited before listening: %v\n%s", s.err, s.logs.String())
	case <-time.After(30 * time.Second):
		e.t.Fatalf("server did not listen:\n%s", s.logs.String())
	}
	e.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
		if e.t.Failed() {
			e.t.Logf("server log:\n%s", s.logs.String())
		}
	})
	return s
}

func (e *e2e) repository() map[string]any {
	return map[string]any{"full_name": e2eRepo, "clone_url": e.cloneURL, "default_branch": "main"}
}

func person(login string) map[string]any { return map[string]any{"login": login, "type": "User"} }

// deliver signs and posts a webhook delivery and returns its id.
func (e *e2e) deliver(event string, payload map[string]any) string {
	e.t.Helper()
	e.mu.Lock()
	e.seq++
	id := fmt.Sprintf("e2e-%d-%d", time.Now().UnixNano(), e.seq)
	e.mu.Unlock()
	payload["installation"] = map[string]any{"id": e2eInst}
	payload["repository"] = e.repository()
	body, err := json.Marshal(payload)
	if err != nil {
		e.t.Fatal(err)
	}
	if st := deliver(e.t, e.base, event, id, body); st/100 != 2 {
		e.t.Fatalf("delivery %s (%s): status %d", id, event, st)
	}
	return id
}

// waitProcessed polls the server's database until the delivery is done.
func (e *e2e) waitProcessed(id string) {
	e.t.Helper()
	db, err := state.Open(filepath.Join(e.dataDir, "compatbot.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	var st, lastErr string
	for time.Now().Before(deadline) {
		db.QueryRow(`SELECT state, last_error FROM intake_deliveries WHERE id=?`, id).Scan(&st, &lastErr)
		switch st {
		case intake.StateDone:
			return
		case intake.StateDead:
			e.t.Fatalf("delivery %s is dead: %s", id, lastErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("delivery %s not processed in time (state %q, last error %q)", id, st, lastErr)
}

func (e *e2e) pull() githubfake.Pull { return e.gh.Pull(e2eRepo, e2ePR) }

// merge has mia merge the PR on GitHub by method: main moves (real git on
// the bare repository) before anything is delivered, as on GitHub.
func (e *e2e) merge(method string) string {
	e.t.Helper()
	sha, err := e.gh.Merge(e2eRepo, e2ePR, method, "mia")
	if err != nil {
		e.t.Fatal(err)
	}
	return sha
}

func (e *e2e) prEvent(action string, updated time.Time) string {
	p := e.pull()
	pr := map[string]any{"number": p.Number, "draft": false, "merged": p.Merged, "state": p.State, "user": person(p.Author),
		"head": map[string]any{"ref": p.HeadRef, "sha": p.HeadSHA}, "base": map[string]any{"ref": "main", "sha": e.baseSHA},
		"updated_at": updated.UTC().Format(time.RFC3339)}
	if p.Merged {
		pr["merged_by"] = person(p.MergedBy)
		pr["merge_commit_sha"] = p.MergeCommitSHA
	}
	id := e.deliver("pull_request", map[string]any{"action": action, "number": p.Number, "pull_request": pr})
	e.waitProcessed(id)
	return id
}

// command has login write body on the PR at created, delivers it, and
// returns the bot's reply to it.
func (e *e2e) command(login, body string, created time.Time) string {
	e.t.Helper()
	comment, id := e.comment(login, body, created)
	e.waitProcessed(id)
	return e.reply(comment)
}

// comment has login write body on the PR at created and delivers it,
// without waiting; it returns the comment's id and the delivery's.
func (e *e2e) comment(login, body string, created time.Time) (int64, string) {
	e.t.Helper()
	c := e.gh.AddComment(e2eRepo, e2ePR, login, body)
	id := e.deliver("issue_comment", map[string]any{"action": "created",
		"issue":   map[string]any{"number": e2ePR, "user": person("alice"), "pull_request": map[string]any{}},
		"comment": map[string]any{"id": c.ID, "body": body, "user": person(login), "created_at": created.UTC().Format(time.RFC3339)}})
	return c.ID, id
}

func (e *e2e) reply(commentID int64) string {
	e.t.Helper()
	marker := fmt.Sprintf("<!-- compatbot reply to comment %d -->", commentID)
	for _, c := range e.gh.Comments(e2eRepo, e2ePR) {
		if strings.HasPrefix(c.Body, marker) {
			return c.Body
		}
	}
	e.t.Fatalf("no reply to comment %d", commentID)
	return ""
}

// waitChecks waits until the compat builds of sha concluded and returns
// their conclusions by name.
func (e *e2e) waitChecks(sha string, names ...string) map[string]githubfake.CheckRun {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := map[string]githubfake.CheckRun{}
		for _, r := range e.gh.CheckRuns(e2eRepo) {
			if r.HeadSHA == sha && r.Status == "completed" {
				got[r.Name] = r
			}
		}
		all := true
		for _, n := range names {
			if _, ok := got[n]; !ok {
				all = false
			}
		}
		if all {
			return got
		}
		if c, ok := got["compat sets"]; ok && c.Conclusion == "failure" {
			e.t.Fatalf("compat sets of %s failed, so nothing is built: %s\n%s", sha[:7], c.Title, c.Text)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("checks of %s not completed: have %+v", sha[:7], got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *e2e) target(env string) publish.Publisher {
	e.t.Helper()
	p, err := publish.Open(publish.TargetConfig{Backend: "local", Repository: env, BaseDir: filepath.Join(e.dataDir, "targets")})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func tagNames(t *testing.T, p publish.Publisher) []string {
	t.Helper()
	tags, err := p.Tags(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tg := range tags {
		out = append(out, tg.Name)
	}
	return out
}

func deploymentsIn(env string, ds []githubfake.Deployment) []githubfake.Deployment {
	var out []githubfake.Deployment
	for _, d := range ds {
		if d.Environment == env {
			out = append(out, d)
		}
	}
	return out
}

func deploymentStates(d githubfake.Deployment) string {
	var s []string
	for _, st := range d.Statuses {
		s = append(s, st.State)
	}
	return strings.Join(s, " ")
}

const (
	check2025 = "compat 2025.06 linux-x86_64"
	check2026 = "compat 2026.06 linux-x86_64"
)

func TestEndToEnd(t *testing.T) {
	t.Parallel() // each has its own server process, repository and data_dir
	e := newE2E(t)
	e.start()
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour)

	// PR opened: the sets check and one build per changed target.
	e.prEvent("opened", t0)
	runs := e.waitChecks(e.headSHA, "compat sets", check2025, check2026)
	if c := runs["compat sets"].Conclusion; c != "action_required" {
		t.Errorf("compat sets = %s %q, want action_required (python needs approval)", c, runs["compat sets"].Title)
	}
	for _, n := range []string{check2025, check2026} {
		if runs[n].Conclusion != "success" {
			t.Fatalf("%s = %s %q\n%s", n, runs[n].Conclusion, runs[n].Title, runs[n].Summary)
		}
		if !strings.HasPrefix(runs[n].DetailsURL, "http://compatbot.test/builds/") {
			t.Errorf("%s details URL %q is not the live log", n, runs[n].DetailsURL)
		}
	}
	// The live log is served by the server.
	resp, err := http.Get(e.base + strings.TrimPrefix(runs[check2026].DetailsURL, "http://compatbot.test"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("build log: status %d", resp.StatusCode)
	}

	// A push: its builds are held, so a /deploy test in the meantime has
	// no tested digest; a command written before the push is stale.
	head1 := e.headSHA
	e.headSHA = e.git(e.bare, "commit-tree", e.git(e.bare, "rev-parse", head1+"^{tree}"), "-p", head1, "-m", "retrigger")
	e.git(e.bare, "update-ref", fmt.Sprintf("refs/pull/%d/head", e2ePR), e.headSHA)
	p := e.pull()
	p.HeadSHA = e.headSHA
	e.gh.SetPull(e2eRepo, p)
	if err := os.WriteFile(e.hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pushAt := time.Now()
	e.prEvent("synchronize", pushAt)
	if r := e.command("bob", "/deploy test", pushAt.Add(-30*time.Second)); !strings.Contains(r, "has been pushed since") {
		t.Errorf("stale /deploy test was not refused as stale:\n%s", r)
	}
	if r := e.command("bob", "/deploy test", pushAt.Add(time.Second)); !strings.Contains(r, "untested digest") {
		t.Errorf("/deploy test before the build finished was not refused as untested:\n%s", r)
	}
	os.Remove(e.hold)
	runs = e.waitChecks(e.headSHA, check2025, check2026)
	for _, n := range []string{check2025, check2026} {
		if runs[n].Conclusion != "success" {
			t.Fatalf("%s at the new head = %s %q", n, runs[n].Conclusion, runs[n].Title)
		}
	}

	// Production before test and before the merge: refused.
	if r := e.command("mia", "/deploy prod", time.Now()); !strings.Contains(r, "refused") || !strings.Contains(r, "not merged") {
		t.Errorf("/deploy prod of an open PR:\n%s", r)
	}

	// /deploy test publishes the tested digests, one tagged transaction each.
	sha7 := e.headSHA[:7]
	tag2025, tag2026 := "2025.06-linux-x86_64-pr1-"+sha7, "2026.06-linux-x86_64-pr1-"+sha7
	r := e.command("bob", "/deploy test", time.Now())
	if !strings.Contains(r, tag2026) || strings.Contains(r, "refused") {
		t.Fatalf("/deploy test reply:\n%s", r)
	}
	testPub := e.target("test")
	if tags := tagNames(t, testPub); !slices.Contains(tags, tag2025) || !slices.Contains(tags, tag2026) {
		t.Errorf("test tags = %v, want %s and %s", tags, tag2025, tag2026)
	}
	cur, _, err := testPub.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"versions/2026.06/compat/linux/x86_64/var/db/pkg/dev-util/direnv-2.36.0/SLOT", "versions/2025.06/compat/linux/x86_64/var/db/pkg/app-arch/xz-utils-5.8.2/SLOT", "versions/2026.06/compat/linux/x86_64/.compatbot/lineage"} {
		if _, err := os.Stat(filepath.Join(cur, p)); err != nil {
			t.Errorf("test tree: %v", err)
		}
	}
	deps := deploymentsIn("compat-test", e.gh.Deployments(e2eRepo))
	if len(deps) != 1 || deps[0].SHA != e.headSHA || deploymentStates(deps[0]) != "in_progress success" {
		t.Fatalf("deployments after /deploy test: %+v", deps)
	}
	// Its statuses link the deploy's record on compatbot and the test
	// environment, and the record is served there.
	for _, st := range deps[0].Statuses {
		if st.LogURL != fmt.Sprintf("http://compatbot.test/deployments/%d", deps[0].ID) || st.EnvironmentURL != "https://test.compat.example/" {
			t.Errorf("deployment status %s: log_url %q, environment_url %q", st.State, st.LogURL, st.EnvironmentURL)
		}
	}
	if code, body := get(t, fmt.Sprintf("%s/deployments/%d", e.base, deps[0].ID)); code != 200 || !strings.Contains(body, "deploy of eessi/compat-layer to test") || !strings.Contains(body, tag2026) {
		t.Errorf("GET /deployments/%d = %d:\n%s", deps[0].ID, code, body)
	}
	if code, _ := get(t, e.base+"/deployments/999999"); code != 404 {
		t.Errorf("GET /deployments of an unknown id = %d, want 404", code)
	}
	// /metrics of the real server: the runtime and process collectors,
	// and the builds, deploy, publishes and GitHub calls just made.
	_, m := get(t, e.base+"/metrics")
	for _, want := range []string{
		"go_goroutines ", "go_memstats_heap_alloc_bytes ", "process_resident_memory_bytes ", "process_open_fds ",
		`compatbot_build_duration_seconds_count{outcome="ok"} `,
		`compatbot_deploy_duration_seconds_count{env="test",kind="deploy",outcome="ok"} 1`,
		`compatbot_publish_duration_seconds_count{op="publish",outcome="ok",target="test"} 2`,
		`compatbot_github_api_requests_total{status="201"} `,
		fmt.Sprintf(`compatbot_github_rate_limit_remaining{installation="%d"} 4999`, e2eInst),
		`compatbot_deliveries_processed_total{outcome="done"} `,
		`compatbot_webhook_ack_seconds_count `,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The sources of the builds are in the mirror.
	if _, err := os.Stat(filepath.Join(e.dataDir, "mirror", "files", "linux-x86_64-2026.06.tar.gz")); err != nil {
		t.Errorf("source mirror: %v", err)
	}

	// The merge deploys the tested result to test, which has it already.
	e.merge(githubfake.MergeCommit)
	e.prEvent("closed", time.Now())
	if r := e.reply(-e2ePR); !strings.Contains(r, "Merged by @mia") || !strings.Contains(r, "Already on test") {
		t.Errorf("merge reply:\n%s", r)
	}
	if tags := tagNames(t, testPub); len(tags) != 2 {
		t.Errorf("the merge published the tested artifacts again: test tags %v", tags)
	}

	// Production: the author may not deploy their own PR, a writer may not
	// deploy to prod; a maintainer may.
	if r := e.command("alice", "/deploy prod", time.Now()); !strings.Contains(r, "refused") {
		t.Errorf("self-deploy to prod was not refused:\n%s", r)
	}
	if r := e.command("bob", "/deploy prod", time.Now()); !strings.Contains(r, "refused") {
		t.Errorf("/deploy prod by a writer was not refused:\n%s", r)
	}
	prodPub := e.target("prod")
	if tags := tagNames(t, prodPub); len(tags) != 0 {
		t.Fatalf("refused commands published to prod: %v", tags)
	}
	r = e.command("mia", "/deploy prod", time.Now())
	if !strings.Contains(r, tag2026) || strings.Contains(r, "refused") {
		t.Fatalf("/deploy prod reply:\n%s", r)
	}
	if tags := tagNames(t, prodPub); len(tags) != 2 || tags[0] != tag2026 || tags[1] != tag2025 {
		t.Errorf("prod tags = %v, want [%s %s]", tags, tag2026, tag2025)
	}
	deps = e.gh.Deployments(e2eRepo)
	last := deps[len(deps)-1]
	if last.Environment != "compat-prod" || deploymentStates(last) != "in_progress success" {
		t.Errorf("last deployment = %s %s", last.Environment, deploymentStates(last))
	}
	var prodEntries int
	for _, c := range e.gh.FileCommits(e2eRepo) {
		if c.Branch == "main" && strings.HasPrefix(c.Path, "changelog/") && strings.Contains(string(c.Content), "· prod · publish `"+tag2026+"`") {
			prodEntries++
		}
	}
	if prodEntries == 0 {
		t.Errorf("no changelog commit records the prod publish of %s; commits: %d", tag2026, len(e.gh.FileCommits(e2eRepo)))
	}

	// /status shows the deploy targets: what is published where, and the
	// drift against the default branch's sets.
	if r := e.command("rita", "/status", time.Now()); !strings.Contains(r, "Deploy targets (drift against `main`)") ||
		!strings.Contains(r, "| prod | 2026.06 | linux-x86_64 | `"+tag2026+"` | #1 |") {
		t.Errorf("/status reply lacks the deploy targets:\n%s", r)
	}

	// Rollback: prod goes back to the tag before the last deploy.
	r = e.command("mia", "/rollback prod", time.Now())
	if strings.Contains(r, "refused") {
		t.Fatalf("/rollback prod:\n%s", r)
	}
	if tags := tagNames(t, prodPub); len(tags) != 1 || tags[0] != tag2025 {
		t.Errorf("prod tags after rollback = %v, want [%s]", tags, tag2025)
	}
	cur, _, _ = prodPub.Current(ctx)
	if _, err := os.Stat(filepath.Join(cur, "versions/2026.06/compat/linux/x86_64")); err == nil {
		t.Errorf("prod still has 2026.06 after the rollback")
	}
	if _, err := os.Stat(filepath.Join(cur, "versions/2025.06/compat/linux/x86_64/var/db/pkg/app-arch/xz-utils-5.8.2")); err != nil {
		t.Errorf("prod lost 2025.06 in the rollback: %v", err)
	}
	// The rollback is a GitHub Deployment too, linking the PR.
	var rb []githubfake.Deployment
	for _, d := range deploymentsIn("compat-prod", e.gh.Deployments(e2eRepo)) {
		if d.Task == "rollback" {
			rb = append(rb, d)
		}
	}
	if len(rb) != 1 || rb[0].Ref != "main" || deploymentStates(rb[0]) != "success" || !strings.Contains(rb[0].Description, "Rollback of prod to "+tag2025) ||
		rb[0].Statuses[0].LogURL != fmt.Sprintf("https://github.com/%s/pull/%d", e2eRepo, e2ePR) {
		t.Errorf("rollback deployments: %+v", rb)
	}
	hdb, err := state.Open(filepath.Join(e.dataDir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	defer hdb.Close()
	var rollbacks int
	hdb.QueryRow(`SELECT count(*) FROM history WHERE target='prod' AND action='rollback'`).Scan(&rollbacks)
	if rollbacks != 1 {
		t.Errorf("%d prod rollbacks in the history, want 1", rollbacks)
	}

	// The maintenance commands read the same state.
	var out, errb bytes.Buffer
	if code := run([]string{"history", "--config", e.cfgPath, "--target", "prod"}, &out, &errb); code != 0 {
		t.Fatalf("history: exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "rollback") || !strings.Contains(lines[1], tag2025) ||
		!strings.Contains(lines[2], tag2026) || !strings.Contains(lines[2], "#1") || !strings.Contains(lines[2], "mia") {
		t.Errorf("history --target prod:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"history", "--config", e.cfgPath, "--env", "prod", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("history --json: exit %d: %s", code, errb.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(out.String(), "\n", 2)[0]), &first); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"date", "env", "action", "tag", "pr", "pr_url", "approver"} {
		if _, ok := first[k]; !ok {
			t.Errorf("history --json has no %q key (lower_snake_case): %v", k, first)
		}
	}
	out.Reset()
	if code := run([]string{"status", "--config", e.cfgPath}, &out, &errb); code != 0 {
		t.Fatalf("status: exit %d: %s", code, errb.String())
	}
	var prodRow string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "prod ") && strings.Contains(l, "2025.06") {
			prodRow = l
		}
	}
	if !strings.Contains(prodRow, tag2025) {
		t.Errorf("status has no prod 2025.06 row with %s:\n%s", tag2025, out.String())
	}
	if code := run([]string{"history", "--env", "staging", "--config", e.cfgPath}, &out, &errb); code != 2 {
		t.Errorf("history --env staging: exit %d, want 2", code)
	}
}

// TestEndToEndCrashes kills the server with SIGKILL twice. First in the
// middle of a build: after a restart the stale overlay mount is gone and
// the build runs again under the same check run. Then (by deploy's
// failpoint) after the first target of a /deploy test was published and
// before the second: after a restart no transaction is open, the tree is
// exactly what the journal says was published, and the PR learns how the
// deploy ended.
func TestEndToEndCrashes(t *testing.T) {
	t.Parallel() // each has its own server process, repository and data_dir
	e := newE2E(t)
	if err := os.WriteFile(e.hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s0 := e.start()
	e.prEvent("opened", time.Now().Add(-time.Minute))
	e.waitRunStatus(e.headSHA, "in_progress")
	if err := s0.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s0.done
	runsDir := filepath.Join(e.dataDir, "build", "runs")
	if !mountedUnder(t, runsDir) {
		t.Fatal("the killed server left no overlay mount: the crash did not hit a running build")
	}
	os.Remove(e.hold)

	s1 := e.start(deploy.FailpointEnv + "=after-publish")
	runs := e.waitChecks(e.headSHA, check2025, check2026)
	for _, n := range []string{check2025, check2026} {
		if runs[n].Conclusion != "success" {
			t.Fatalf("%s after the restart = %s %q", n, runs[n].Conclusion, runs[n].Title)
		}
	}
	for n, count := range e.runCounts(e.headSHA) {
		if count != 1 {
			t.Errorf("%d check runs named %q after the restart, want the one run", count, n)
		}
	}
	if mountedUnder(t, runsDir) {
		t.Error("an overlay mount of the killed server's build is still mounted")
	}
	comment, id := e.comment("bob", "/deploy test", time.Now())
	select {
	case <-s1.done:
		if s1.err == nil {
			t.Fatal("the server exited cleanly; the failpoint did not kill it")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the server was not killed at the failpoint")
	}

	e.start()
	e.waitProcessed(id) // the intake retries the command after the restart
	if _, err := os.Stat(filepath.Join(e.dataDir, "targets", "test", ".transaction")); err == nil {
		t.Error("a transaction is still open on the test target after the restart")
	}
	sha7 := e.headSHA[:7]
	tags := tagNames(t, e.target("test"))
	if len(tags) != 1 || tags[0] != "2025.06-linux-x86_64-pr1-"+sha7 {
		t.Errorf("test tags after the crash = %v, want only the first item's", tags)
	}
	cur, _, err := e.target("test").Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cur, "versions/2026.06/compat/linux/x86_64")); err == nil {
		t.Error("the second item is in the test tree although its deploy never started")
	}
	if _, err := os.Stat(filepath.Join(cur, "versions/2025.06/compat/linux/x86_64/var/db/pkg/app-arch/xz-utils-5.8.2")); err != nil {
		t.Errorf("the published first item is not whole: %v", err)
	}
	var told bool
	for _, cm := range e.gh.Comments(e2eRepo, e2ePR) {
		if strings.Contains(cm.Body, "compatbot restarted while this request was running") {
			told = true
		}
	}
	if !told {
		t.Error("the PR was not told how the interrupted deploy ended")
	}
	if r := e.reply(comment); !strings.Contains(r, "interrupted by a restart") {
		t.Errorf("reply to the interrupted command:\n%s", r)
	}
	deps := deploymentsIn("compat-test", e.gh.Deployments(e2eRepo))
	// A status after in_progress: the recovery settled the deployment.
	if len(deps) != 1 || !strings.HasPrefix(deploymentStates(deps[0]), "in_progress ") {
		t.Errorf("deployment after the crash (want in_progress, then the recovered outcome): %+v", deps)
	}

	// Production refuses the digest that never reached test: the PR is
	// merged on GitHub (its merge event is not delivered, so nothing
	// deploys it to test) and a maintainer asks for prod.
	e.merge(githubfake.Squash)
	r := e.command("mia", "/deploy prod", time.Now())
	if !strings.Contains(r, "refused") || !strings.Contains(r, "2026.06 linux-x86_64**: artifact") || !strings.Contains(r, "was never deployed to `test`") {
		t.Errorf("/deploy prod of an untested digest:\n%s", r)
	}
	if tags := tagNames(t, e.target("prod")); len(tags) != 0 {
		t.Errorf("an untested digest reached prod: %v", tags)
	}
}

// waitRunStatus waits until a compat build run of sha has status st.
func (e *e2e) waitRunStatus(sha, st string) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range e.gh.CheckRuns(e2eRepo) {
			if r.HeadSHA == sha && strings.HasPrefix(r.Name, "compat 20") && r.Status == st {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("no build run of %s reached %s", sha[:7], st)
}

func (e *e2e) runCounts(sha string) map[string]int {
	n := map[string]int{}
	for _, r := range e.gh.CheckRuns(e2eRepo) {
		if r.HeadSHA == sha {
			n[r.Name]++
		}
	}
	return n
}

func mountedUnder(t *testing.T, dir string) bool {
	t.Helper()
	mps, err := overlay.MountsUnder(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(mps) > 0
}

// TestEndToEndProdBase: production moves on after the PR's artifact was
// tested (a hotfix published to prod), so /deploy prod of the merged PR
// is refused and the server rebuilds the head on production's tree, from
// the mirror only, under its own "(prod base)" check run; that artifact
// goes to test, then to production, on top of the hotfix.
func TestEndToEndProdBase(t *testing.T) {
	t.Parallel() // each has its own server process, repository and data_dir
	e := newE2E(t)
	e.start()
	ctx := context.Background()
	e.prEvent("opened", time.Now().Add(-time.Minute))
	e.waitChecks(e.headSHA, check2025, check2026)
	if r := e.command("bob", "/deploy test", time.Now()); strings.Contains(r, "refused") {
		t.Fatalf("/deploy test:\n%s", r)
	}
	e.merge(githubfake.Rebase)
	e.prEvent("closed", time.Now())

	prodPub := e.target("prod")
	tx, err := prodPub.Transaction(ctx, "versions/2026.06/compat/linux/x86_64")
	if err != nil {
		t.Fatal(err)
	}
	hotfixLin := deploy.NextLineage("", "sha256:"+strings.Repeat("cd", 32))
	testtree.Build(t, tx.Dir(), map[string]testtree.File{"etc/hotfix": {Content: "prod only\n"}, deploy.LineageFile: {Content: hotfixLin + "\n"}})
	if _, err := tx.Publish(ctx, "hotfix-1", "hotfix"); err != nil {
		t.Fatal(err)
	}

	r := e.command("mia", "/deploy prod", time.Now())
	for _, want := range []string{"production has moved on", "`compat 2026.06 linux-x86_64 (prod base)` started", "must go through test again"} {
		if !strings.Contains(r, want) {
			t.Errorf("refused /deploy prod does not say %q:\n%s", want, r)
		}
	}
	runs := e.waitChecks(e.headSHA, check2026+" (prod base)")
	if pb := runs[check2026+" (prod base)"]; pb.Conclusion != "success" {
		t.Fatalf("prod-base rebuild = %s %q\n%s", pb.Conclusion, pb.Title, pb.Summary)
	}
	if n := e.runCounts(e.headSHA)[check2026]; n != 1 {
		t.Errorf("%d runs of %s, want the head's one run untouched", n, check2026)
	}
	if r := e.command("bob", "/deploy test", time.Now()); strings.Contains(r, "refused") || !strings.Contains(r, "first made production's tree") {
		t.Fatalf("/deploy test of the rebuilt artifact:\n%s", r)
	}
	if r := e.command("mia", "/deploy prod", time.Now()); strings.Contains(r, "refused") || !strings.Contains(r, "2026.06-linux-x86_64-pr1-"+e.headSHA[:7]) {
		t.Fatalf("/deploy prod after the rebuild went through test:\n%s", r)
	}
	cur, _, err := prodPub.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"versions/2026.06/compat/linux/x86_64/etc/hotfix", "versions/2026.06/compat/linux/x86_64/var/db/pkg/dev-util/direnv-2.36.0/SLOT", "versions/2025.06/compat/linux/x86_64/var/db/pkg/app-arch/xz-utils-5.8.2/SLOT"} {
		if _, err := os.Stat(filepath.Join(cur, p)); err != nil {
			t.Errorf("prod tree: %v", err)
		}
	}
}

// TestEndToEndMergeMethods: whichever way GitHub merges, the base branch
// already holds the PR when the "closed" event arrives; the tested result
// goes to test and /deploy prod promotes exactly that. The merge-commit
// method is TestEndToEnd's.
func TestEndToEndMergeMethods(t *testing.T) {
	t.Parallel() // each has its own server process, repository and data_dir
	for _, method := range []string{githubfake.Squash, githubfake.Rebase} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			e := newE2E(t)
			e.start()
			e.prEvent("opened", time.Now().Add(-time.Minute))
			runs := e.waitChecks(e.headSHA, check2025, check2026)
			for _, n := range []string{check2025, check2026} {
				if runs[n].Conclusion != "success" {
					t.Fatalf("%s = %s %q", n, runs[n].Conclusion, runs[n].Title)
				}
			}
			merged := e.merge(method)
			if got := e.git(e.bare, "rev-parse", "refs/heads/main"); got != merged {
				t.Fatalf("main = %s, want the merge %s", got, merged)
			}
			e.prEvent("closed", time.Now())
			sha7 := e.headSHA[:7]
			tag2025, tag2026 := "2025.06-linux-x86_64-pr1-"+sha7, "2026.06-linux-x86_64-pr1-"+sha7
			if r := e.reply(-e2ePR); !strings.Contains(r, "Merged by @mia") || !strings.Contains(r, tag2026) {
				t.Fatalf("merge reply:\n%s", r)
			}
			if tags := tagNames(t, e.target("test")); !slices.Contains(tags, tag2025) || !slices.Contains(tags, tag2026) {
				t.Fatalf("test tags after the merge = %v", tags)
			}
			r := e.command("mia", "/deploy prod", time.Now())
			if strings.Contains(r, "refused") || !strings.Contains(r, tag2026) {
				t.Fatalf("/deploy prod of the merged PR:\n%s", r)
			}
			if tags := tagNames(t, e.target("prod")); !slices.Contains(tags, tag2025) || !slices.Contains(tags, tag2026) {
				t.Errorf("prod tags = %v", tags)
			}
		})
	}
}

// TestEndToEndMainMovedBeforeMerge: another PR changed the same target's
// set after this PR was tested. The squash merge's set is then neither
// what was tested nor what main had: compatbot builds and tests the merge
// commit and deploys that, saying so, and /deploy prod promotes it.
func TestEndToEndMainMovedBeforeMerge(t *testing.T) {
	t.Parallel() // each has its own server process, repository and data_dir
	e := newE2E(t)
	e.start()
	e.prEvent("opened", time.Now().Add(-time.Minute))
	e.waitChecks(e.headSHA, check2025, check2026)

	// The other PR lands on main: one more package on 2026.06 x86_64.
	const set = "sets/2026.06/linux-x86_64"
	mainTip := e.git(e.bare, "rev-parse", "refs/heads/main")
	base := e.git(e.bare, "show", mainTip+":"+set)
	other := testgit.Commit(t, e.bare, mainTip, map[string]string{set: "# Needed by the other PR\napp-misc/jq\n\n" + base + "\n"}, "other PR")
	e.git(e.bare, "update-ref", "refs/heads/main", other)
	merged := e.merge(githubfake.Squash)
	if !strings.Contains(e.git(e.bare, "show", merged+":"+set), "app-misc/jq") {
		t.Fatal("the merge lost the other PR's change")
	}
	e.prEvent("closed", time.Now())
	r := e.reply(-e2ePR)
	if !strings.Contains(r, "building and testing the merge commit "+merged[:7]) || !strings.Contains(r, "2026.06 linux-x86_64") {
		t.Fatalf("merge reply does not say the merge commit is built:\n%s", r)
	}
	// The merge commit is built for every target the PR changes, and all
	// of them go to test from that build.
	runs := e.waitChecks(merged, check2026)
	if runs[check2026].Conclusion != "success" {
		t.Fatalf("merge commit build = %s %q\n%s", runs[check2026].Conclusion, runs[check2026].Title, runs[check2026].Summary)
	}
	var deployed string
	deadline := time.Now().Add(60 * time.Second)
	for deployed == "" && time.Now().Before(deadline) {
		for _, c := range e.gh.Comments(e2eRepo, e2ePR) {
			if strings.Contains(c.Body, "passed its builds and tests and was deployed to test") {
				deployed = c.Body
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if deployed == "" {
		t.Fatalf("no comment says the merge commit went to test; comments: %+v", e.gh.Comments(e2eRepo, e2ePR))
	}
	tag := "2026.06-linux-x86_64-pr1-" + merged[:7]
	if tags := tagNames(t, e.target("test")); !slices.Contains(tags, tag) {
		t.Fatalf("test tags = %v, want the merge commit's %s", tags, tag)
	}
	cur, _, err := e.target("test").Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cur, "versions/2026.06/compat/linux/x86_64/var/db/pkg/app-misc")); err != nil {
		t.Errorf("test does not have the merge's set (the other PR's jq): %v", err)
	}
	if r := e.command("mia", "/deploy prod", time.Now()); strings.Contains(r, "refused") || !strings.Contains(r, "2026.06-linux-x86_64-pr1-") {
		t.Fatalf("/deploy prod after the merge build:\n%s", r)
	}
	cur, _, err = e.target("prod").Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cur, "versions/2026.06/compat/linux/x86_64/var/db/pkg/app-misc")); err != nil {
		t.Errorf("prod did not get what test got from the merge: %v", err)
	}
}

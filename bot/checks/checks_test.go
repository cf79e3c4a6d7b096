package checks

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/bot/githubfake"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/state"
	"github.com/google/go-github/v60/github"
)

const repo = "eessi/compat-layer"

var (
	sha1 = strings.Repeat("1", 40)
	sha2 = strings.Repeat("2", 40)
)

func setup(t *testing.T) (*githubfake.Server, *github.Client, *Runs) {
	t.Helper()
	gh, key := githubfake.New(3)
	t.Cleanup(gh.Close)
	gh.AddRepo("eessi", "compat-layer", 9, "")
	f, err := ghclient.New(ghclient.Config{APIURL: gh.APIURL(), AppID: 3, PrivateKey: key, Limits: ghclient.Limits{MaxRetries: 1, Backoff: 1}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := f.Client(context.Background(), 9)
	db, err := state.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r, err := New(context.Background(), db, "https://bot.example/")
	if err != nil {
		t.Fatal(err)
	}
	return gh, c, r
}

func annotations(n int) []report.Annotation {
	var as []report.Annotation
	for i := range n {
		as = append(as, report.Annotation{Path: "sets/2026.06/linux-x86_64", StartLine: i + 1, Level: report.Error, Title: "no reason", Message: fmt.Sprintf("entry %d has no reason", i)})
	}
	return as
}

func TestQueueIsFindOrCreate(t *testing.T) {
	gh, c, r := setup(t)
	ctx := context.Background()
	k := Key{Repo: repo, HeadSHA: sha1, Name: "compat sets", PR: 4}
	run, err := r.Queue(ctx, c, k)
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.Queue(ctx, c, k)
	if err != nil || again.ID != run.ID {
		t.Fatalf("second Queue = %+v, %v; want run %d", again, err, run.ID)
	}
	if n := len(gh.CheckRuns(repo)); n != 1 {
		t.Fatalf("%d runs on GitHub, want 1", n)
	}
	if got := gh.CheckRuns(repo)[0]; got.Status != "queued" || got.HeadSHA != sha1 {
		t.Errorf("run %+v", got)
	}
	// A re-run is another run of the same name.
	if _, err := r.Queue(ctx, c, Key{Repo: repo, HeadSHA: sha1, Name: "compat sets", Trigger: "rerun:d1", PR: 4}); err != nil {
		t.Fatal(err)
	}
	if n := len(gh.CheckRuns(repo)); n != 2 {
		t.Fatalf("%d runs on GitHub, want 2", n)
	}
}

// TestQueueAfterLostAnswer: GitHub created the run but compatbot never
// learnt its id (crash or 5xx after the fact); the retry must adopt it.
func TestQueueAfterLostAnswer(t *testing.T) {
	gh, c, r := setup(t)
	ctx := context.Background()
	k := Key{Repo: repo, HeadSHA: sha2, Name: "compat sets", PR: 4}
	if _, err := r.db.Exec(`INSERT INTO check_runs(repo, head_sha, name, trigger, pr, status, created_at, updated_at) VALUES(?,?,?,?,?, 'creating', 0, 0)`, k.Repo, k.HeadSHA, k.Name, k.Trigger, k.PR); err != nil {
		t.Fatal(err)
	}
	made, _, err := c.Checks.CreateCheckRun(ctx, "eessi", "compat-layer", github.CreateCheckRunOptions{Name: k.Name, HeadSHA: k.HeadSHA, ExternalID: github.String(externalID(k))})
	if err != nil {
		t.Fatal(err)
	}
	run, err := r.Queue(ctx, c, k)
	if err != nil {
		t.Fatal(err)
	}
	if run.ID != made.GetID() || len(gh.CheckRuns(repo)) != 1 {
		t.Errorf("adopted %d, want %d; %d runs", run.ID, made.GetID(), len(gh.CheckRuns(repo)))
	}
	// And when the POST itself failed, the retry creates it.
	k2 := Key{Repo: repo, HeadSHA: sha1, Name: "compat sets", PR: 4}
	gh.FailNext("POST /repos/{owner}/{repo}/check-runs", 1, githubfake.ServerError())
	if _, err := r.Queue(ctx, c, k2); err == nil {
		t.Fatal("5xx on create not reported")
	}
	if _, err := r.Queue(ctx, c, k2); err != nil {
		t.Fatal(err)
	}
	if n := len(gh.CheckRuns(repo)); n != 2 {
		t.Errorf("%d runs, want 2", n)
	}
}

func TestCompleteBatchesAndResumes(t *testing.T) {
	gh, c, r := setup(t)
	ctx := context.Background()
	run, err := r.Queue(ctx, c, Key{Repo: repo, HeadSHA: sha1, Name: "compat sets"})
	if err != nil {
		t.Fatal(err)
	}
	if run, err = r.Start(ctx, c, run); err != nil {
		t.Fatal(err)
	}
	chk := report.Check{Name: "compat sets", Title: "120 errors", Summary: "s", Text: "t", Conclusion: report.Failure, Annotations: annotations(120)}
	gh.ResetCalls()
	done, err := r.Complete(ctx, c, run, chk)
	if err != nil {
		t.Fatal(err)
	}
	if n := gh.CallCount("PATCH /repos/{owner}/{repo}/check-runs/{id}"); n != 3 {
		t.Errorf("%d updates for 120 annotations, want 3", n)
	}
	got := findRun(t, gh, done.ID)
	if got.Status != "completed" || got.Conclusion != "failure" || len(got.Annotations) != 120 {
		t.Errorf("run: status %s conclusion %s, %d annotations", got.Status, got.Conclusion, len(got.Annotations))
	}
	if len(got.Actions) != 1 || got.Actions[0].Identifier != RerunAction {
		t.Errorf("actions %+v", got.Actions)
	}
	if !strings.HasPrefix(got.DetailsURL, "https://bot.example/reports/") {
		t.Errorf("details url %q", got.DetailsURL)
	}
	// Same content again: nothing sent.
	gh.ResetCalls()
	if _, err := r.Complete(ctx, c, done, chk); err != nil {
		t.Fatal(err)
	}
	if n := len(gh.Calls()); n != 0 {
		t.Errorf("%d calls to complete an already complete run", n)
	}
}

func TestCompleteResumesAfterFailedBatch(t *testing.T) {
	gh, c, r := setup(t)
	ctx := context.Background()
	run, _ := r.Queue(ctx, c, Key{Repo: repo, HeadSHA: sha1, Name: "compat sets"})
	chk := report.Check{Name: "compat sets", Title: "110 errors", Summary: "s", Conclusion: report.Failure, Annotations: annotations(110)}
	// Batch 1 goes through; batch 2 meets a 401 (not retried).
	gh.FailNextAfter("PATCH /repos/{owner}/{repo}/check-runs/{id}", 1, 1, githubfake.Failure{Status: 401, Message: "Bad credentials"})
	_, err := r.Complete(ctx, c, run, chk)
	if err == nil {
		t.Fatal("failed batch not reported")
	}
	if got := findRun(t, gh, run.ID); len(got.Annotations) != 50 || got.Status == "completed" {
		t.Fatalf("after failure: %d annotations, status %s", len(got.Annotations), got.Status)
	}
	calls := gh.CallCount("PATCH /repos/{owner}/{repo}/check-runs/{id}")
	if _, err := r.Complete(ctx, c, run, chk); err != nil {
		t.Fatal(err)
	}
	got := findRun(t, gh, run.ID)
	if len(got.Annotations) != 110 || got.Status != "completed" {
		t.Errorf("after resume: %d annotations (want 110, no batch twice), status %s", len(got.Annotations), got.Status)
	}
	if n := gh.CallCount("PATCH /repos/{owner}/{repo}/check-runs/{id}") - calls; n != 2 {
		t.Errorf("resume sent %d updates, want 2", n)
	}
}

func findRun(t *testing.T, gh *githubfake.Server, id int64) githubfake.CheckRun {
	t.Helper()
	for _, c := range gh.CheckRuns(repo) {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("run %d not on GitHub", id)
	return githubfake.CheckRun{}
}

func TestLongTextTruncatedWithLink(t *testing.T) {
	gh, c, r := setup(t)
	ctx := context.Background()
	run, _ := r.Queue(ctx, c, Key{Repo: repo, HeadSHA: sha1, Name: "compat sets"})
	var b strings.Builder
	for i := 0; b.Len() < 200000; i++ {
		fmt.Fprintf(&b, "| sys-libs/pkg%d | upgraded | é |\n", i)
	}
	chk := report.Check{Name: "compat sets", Title: "many changes", Summary: b.String(), Text: b.String(), Conclusion: report.Success}
	done, err := r.Complete(ctx, c, run, chk)
	if err != nil {
		t.Fatal(err)
	}
	got := findRun(t, gh, done.ID)
	link := "https://bot.example/reports/" + done.ReportID
	for name, s := range map[string]string{"summary": got.Summary, "text": got.Text} {
		if n := utf8.RuneCountInString(s); n > MaxOutput {
			t.Errorf("%s has %d characters", name, n)
		}
		if !strings.Contains(s, "]("+link+")") {
			t.Errorf("%s lacks the link to %s", name, link)
		}
		body, _, _ := strings.Cut(s, "\n\n*The report")
		if !strings.HasSuffix(body, "|") {
			t.Errorf("%s not cut at a line end: ...%q", name, body[len(body)-40:])
		}
	}
	// The full report is served.
	mux := http.NewServeMux()
	mux.Handle("GET /reports/{id}", r.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/reports/" + done.ReportID)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(full), b.String()) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/markdown") {
		t.Errorf("report: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(full))
	}
	for _, bad := range []string{"0123456789abcdef0123", "../../etc/passwd", "x"} {
		resp, err := http.Get(srv.URL + "/reports/" + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("/reports/%s: %d, want 404", bad, resp.StatusCode)
		}
	}
}

func TestRender(t *testing.T) {
	short := Render(report.Check{Title: "a\nb", Summary: "x"}, "u")
	if short.Title != "a" || short.Summary != "x" || short.Truncated {
		t.Errorf("%+v", short)
	}
	long := "```\nfirst\n```\n" + strings.Repeat("line\n", 5000) + "~~~~\n" + strings.Repeat("code ``` x\n", 20000) + "~~~~\n"
	o := Render(report.Check{Summary: long}, "http://x/reports/1")
	if !o.Truncated || openFence(o.Summary) != "" || !strings.Contains(o.Summary, "\n~~~~\n\n*The report is longer") || utf8.RuneCountInString(o.Summary) > MaxOutput {
		t.Errorf("truncated=%v, open fence %q, %d chars, ends %q", o.Truncated, openFence(o.Summary), utf8.RuneCountInString(o.Summary), o.Summary[len(o.Summary)-120:])
	}
}

func TestSupersede(t *testing.T) {
	gh, c, r := setup(t)
	ctx := context.Background()
	old, _ := r.Queue(ctx, c, Key{Repo: repo, HeadSHA: sha1, Name: "compat sets", PR: 7})
	other, _ := r.Queue(ctx, c, Key{Repo: repo, HeadSHA: sha1, Name: "compat sets", PR: 8})
	_ = other
	n, err := r.Supersede(ctx, c, repo, 7, sha2)
	if err != nil || n != 1 {
		t.Fatalf("Supersede = %d, %v; want 1", n, err)
	}
	got := findRun(t, gh, old.ID)
	if got.Status != "completed" || got.Conclusion != "cancelled" || got.Title != "Superseded by 2222222" {
		t.Errorf("old run %s/%s %q", got.Status, got.Conclusion, got.Title)
	}
	if n, _ := r.Supersede(ctx, c, repo, 7, sha2); n != 0 {
		t.Errorf("second Supersede touched %d runs", n)
	}
	runs, err := r.ForSHA(ctx, repo, sha1)
	if err != nil || len(runs) != 1 {
		t.Fatalf("ForSHA = %+v, %v", runs, err)
	}
}

// A check with thousands of annotations costs a bounded number of API
// requests: GitHub gets the first MaxAnnotationsShown, the summary says so
// and links the full report, which has them all.
func TestManyAnnotationsCapped(t *testing.T) {
	gh, c, r := setup(t)
	ctx := context.Background()
	run, _ := r.Queue(ctx, c, Key{Repo: repo, HeadSHA: sha1, Name: "compat sets"})
	chk := report.Check{Name: "compat sets", Title: "5000 errors", Summary: "s", Conclusion: report.Failure, Annotations: annotations(5000)}
	gh.ResetCalls()
	done, err := r.Complete(ctx, c, run, chk)
	if err != nil {
		t.Fatal(err)
	}
	if n, want := gh.CallCount("PATCH /repos/{owner}/{repo}/check-runs/{id}"), MaxAnnotationsShown/MaxAnnotations; n != want {
		t.Errorf("%d updates for 5000 annotations, want %d", n, want)
	}
	got := findRun(t, gh, done.ID)
	if len(got.Annotations) != MaxAnnotationsShown {
		t.Errorf("%d annotations on GitHub, want %d", len(got.Annotations), MaxAnnotationsShown)
	}
	if !strings.Contains(got.Summary, "5000 annotations") || !strings.Contains(got.Summary, "](https://bot.example/reports/"+done.ReportID+")") {
		t.Errorf("summary does not say where the rest is: %q", got.Summary)
	}
	var md string
	if err := r.db.QueryRowContext(ctx, `SELECT markdown FROM check_reports WHERE id=?`, done.ReportID).Scan(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md, "entry 4999 has no reason") {
		t.Error("the full report lacks the last annotation")
	}
}

// Package checks publishes report.Check values as GitHub check runs: queued
// at once for a head SHA, then in progress, then completed with their
// annotations sent in batches of GitHub's maximum of 50 and their text kept
// within GitHub's 65,535 characters (the full report stays in the database
// and is served at public_url/reports/{id}). A run is created once per
// (repository, head SHA, name, trigger), so a delivery processed twice
// reuses it; a newer push cancels the unfinished runs of older SHAs.
package checks

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/state"
	"github.com/google/go-github/v60/github"
)

// MaxOutput is GitHub's limit on output.summary and output.text, in
// characters.
const MaxOutput = 65535

// MaxAnnotations is how many annotations GitHub takes per request.
const MaxAnnotations = 50

// MaxAnnotationsShown bounds the annotations sent for one run: each batch
// of 50 is one API request, and a PR with thousands of lint errors would
// otherwise spend an installation's hourly budget on one check run. The
// rest are in the full report, which the summary says.
const MaxAnnotationsShown = 500

// RerunAction is the identifier of the "Re-run" button on completed runs.
const RerunAction = "rerun"

var migrations = []string{`
CREATE TABLE check_runs (
	repo TEXT NOT NULL,
	head_sha TEXT NOT NULL,
	name TEXT NOT NULL,
	trigger TEXT NOT NULL,
	pr INTEGER NOT NULL DEFAULT 0,
	run_id INTEGER,
	status TEXT NOT NULL,
	conclusion TEXT NOT NULL DEFAULT '',
	title TEXT NOT NULL DEFAULT '',
	content_hash TEXT NOT NULL DEFAULT '',
	batches_done INTEGER NOT NULL DEFAULT 0,
	report_id TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (repo, head_sha, name, trigger)
);
CREATE INDEX check_runs_pr ON check_runs(repo, pr);
CREATE INDEX check_runs_id ON check_runs(run_id);
CREATE TABLE check_reports (
	id TEXT PRIMARY KEY,
	repo TEXT NOT NULL,
	head_sha TEXT NOT NULL,
	name TEXT NOT NULL,
	markdown TEXT NOT NULL,
	created_at INTEGER NOT NULL
);`}

// Runs creates and updates check runs, remembering them in the database.
type Runs struct {
	db        *state.DB
	publicURL string
	now       func() time.Time
}

// New prepares the tables. publicURL is the base of report links.
func New(ctx context.Context, db *state.DB, publicURL string) (*Runs, error) {
	if err := db.EnsureSchema(ctx, "checks", migrations...); err != nil {
		return nil, err
	}
	return &Runs{db: db, publicURL: strings.TrimSuffix(publicURL, "/"), now: time.Now}, nil
}

// Key names one check run compatbot creates.
type Key struct {
	Repo    string // owner/name
	HeadSHA string
	Name    string
	// Trigger tells apart runs of the same name for the same SHA: "" for
	// the run a push creates, e.g. "rerun:<delivery id>" for a re-run.
	Trigger string
	PR      int // 0 when not known
}

// Run is a check run as recorded.
type Run struct {
	Key
	ID         int64
	Status     string // creating, queued, in_progress, completed
	Conclusion string
	Title      string
	ReportID   string
	UpdatedAt  time.Time
}

func split(repo string) (string, string, error) {
	o, n, ok := strings.Cut(repo, "/")
	if !ok || o == "" || n == "" || strings.Contains(n, "/") {
		return "", "", fmt.Errorf("repository %q is not owner/name", repo)
	}
	return o, n, nil
}

func (r *Runs) get(ctx context.Context, k Key) (Run, bool, error) {
	run := Run{Key: k}
	var id sql.NullInt64
	var upd int64
	err := r.db.QueryRowContext(ctx, `SELECT pr, run_id, status, conclusion, title, report_id, updated_at FROM check_runs WHERE repo=? AND head_sha=? AND name=? AND trigger=?`,
		k.Repo, k.HeadSHA, k.Name, k.Trigger).Scan(&run.PR, &id, &run.Status, &run.Conclusion, &run.Title, &run.ReportID, &upd)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, err
	}
	run.ID = id.Int64
	run.UpdatedAt = time.Unix(upd, 0)
	return run, true, nil
}

// Queue returns the run of k, creating it on GitHub as queued when it does
// not exist yet. Creation is find-or-create: the row is written before the
// POST, so if the POST's answer is lost (crash, 5xx after GitHub acted) the
// next attempt looks for the run on GitHub by its external_id before
// creating another.
func (r *Runs) Queue(ctx context.Context, gh *github.Client, k Key) (Run, error) {
	run, ok, err := r.get(ctx, k)
	if err != nil {
		return Run{}, err
	}
	if ok && run.ID != 0 {
		return run, nil
	}
	owner, name, err := split(k.Repo)
	if err != nil {
		return Run{}, err
	}
	now := r.now().Unix()
	ext := externalID(k)
	if ok {
		// An earlier attempt may have created it.
		list, _, err := gh.Checks.ListCheckRunsForRef(ctx, owner, name, k.HeadSHA, &github.ListCheckRunsOptions{CheckName: github.String(k.Name), Filter: github.String("all")})
		if err != nil {
			return Run{}, fmt.Errorf("look for check run %q of %s: %w", k.Name, short(k.HeadSHA), err)
		}
		for _, c := range list.CheckRuns {
			if c.GetExternalID() == ext {
				return r.adopt(ctx, k, c.GetID(), c.GetStatus())
			}
		}
	} else if _, err := r.db.ExecContext(ctx, `INSERT INTO check_runs(repo, head_sha, name, trigger, pr, status, created_at, updated_at) VALUES(?,?,?,?,?, 'creating', ?, ?)`,
		k.Repo, k.HeadSHA, k.Name, k.Trigger, k.PR, now, now); err != nil {
		return Run{}, err
	}
	c, _, err := gh.Checks.CreateCheckRun(ctx, owner, name, github.CreateCheckRunOptions{
		Name: k.Name, HeadSHA: k.HeadSHA, ExternalID: github.String(ext), Status: github.String("queued"),
	})
	if err != nil {
		return Run{}, fmt.Errorf("create check run %q for %s: %w", k.Name, short(k.HeadSHA), err)
	}
	return r.adopt(ctx, k, c.GetID(), "queued")
}

func (r *Runs) adopt(ctx context.Context, k Key, id int64, status string) (Run, error) {
	if _, err := r.db.ExecContext(ctx, `UPDATE check_runs SET run_id=?, status=?, updated_at=? WHERE repo=? AND head_sha=? AND name=? AND trigger=?`,
		id, status, r.now().Unix(), k.Repo, k.HeadSHA, k.Name, k.Trigger); err != nil {
		return Run{}, err
	}
	run, _, err := r.get(ctx, k)
	return run, err
}

// externalID is what compatbot writes into a run's external_id to find it
// again; bounded because triggers carry delivery ids.
func externalID(k Key) string {
	s := "compatbot"
	if k.Trigger != "" {
		s += ":" + k.Trigger
	}
	if len(s) > 100 {
		h := sha256.Sum256([]byte(s))
		s = "compatbot:" + hex.EncodeToString(h[:16])
	}
	return s
}

// Start marks the run in progress (a no-op once it is).
func (r *Runs) Start(ctx context.Context, gh *github.Client, run Run) (Run, error) {
	if run.Status == "in_progress" || run.Status == "completed" {
		return run, nil
	}
	owner, name, err := split(run.Repo)
	if err != nil {
		return run, err
	}
	now := r.now()
	if _, _, err := gh.Checks.UpdateCheckRun(ctx, owner, name, run.ID, github.UpdateCheckRunOptions{
		Name: run.Name, Status: github.String("in_progress"),
	}); err != nil {
		return run, fmt.Errorf("start check run %d: %w", run.ID, err)
	}
	if _, err := r.db.ExecContext(ctx, `UPDATE check_runs SET status='in_progress', updated_at=? WHERE run_id=?`, now.Unix(), run.ID); err != nil {
		return run, err
	}
	run.Status = "in_progress"
	return run, nil
}

// Output is the text parts of a check run as sent to GitHub.
type Output struct {
	Title, Summary, Text string
	Truncated            bool
}

// Render fits c within GitHub's limits: summary and text are cut at a line
// boundary with a note linking to reportURL, where the full Markdown is.
func Render(c report.Check, reportURL string) Output {
	o := Output{Title: oneLine(c.Title)}
	var t1, t2 bool
	o.Summary, t1 = fit(c.Summary, reportURL)
	o.Text, t2 = fit(c.Text, reportURL)
	o.Truncated = t1 || t2
	return o
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if utf8.RuneCountInString(s) > 200 {
		s = string([]rune(s)[:199]) + "…"
	}
	return s
}

func fit(s, url string) (string, bool) {
	if utf8.RuneCountInString(s) <= MaxOutput {
		return s, false
	}
	note := "\n\n*The report is longer than GitHub shows; the rest is in the [full report](" + url + ").*\n"
	budget := MaxOutput - utf8.RuneCountInString(note)
	r := []rune(s)[:budget]
	cut := string(r)
	if i := strings.LastIndexByte(cut, '\n'); i > 0 {
		cut = cut[:i]
	}
	// A cut inside a fenced block would swallow the note.
	if open := openFence(cut); open != "" {
		cut += "\n" + open
	}
	return cut + note, true
}

// openFence returns the marker of a code fence left open at the end of s.
func openFence(s string) string {
	open := ""
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimLeft(line, " ")
		for _, m := range []string{"```", "~~~"} {
			if strings.HasPrefix(t, m) {
				run := t[:len(t)-len(strings.TrimLeft(t, m[:1]))]
				switch {
				case open == "":
					open = run
				case strings.HasPrefix(run, open) && strings.TrimSpace(t[len(run):]) == "":
					open = ""
				}
			}
		}
	}
	return open
}

func annotation(a report.Annotation) *github.CheckRunAnnotation {
	start := max(a.StartLine, 1)
	end := max(a.EndLine, start)
	msg := a.Message
	if msg == "" {
		msg = a.Title
	}
	if msg == "" {
		msg = string(a.Level)
	}
	if len(msg) > 60000 {
		msg = msg[:60000]
	}
	lvl := string(a.Level)
	if lvl != "notice" && lvl != "warning" && lvl != "failure" {
		lvl = "warning"
	}
	ga := &github.CheckRunAnnotation{
		Path: github.String(a.Path), StartLine: github.Int(start), EndLine: github.Int(end),
		AnnotationLevel: github.String(lvl), Message: github.String(msg),
	}
	if a.Title != "" {
		ga.Title = github.String(oneLine(a.Title))
	}
	if start == end && a.StartCol > 0 {
		ga.StartColumn = github.Int(a.StartCol)
		ga.EndColumn = github.Int(max(a.EndCol, a.StartCol))
	}
	return ga
}

func hashCheck(c report.Check) string {
	b, _ := json.Marshal(c)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ReportURL is where the full report of id is served.
func (r *Runs) ReportURL(id string) string { return r.publicURL + "/reports/" + id }

// Complete publishes c on the run: annotations in batches of 50 (GitHub
// appends each update's annotations), the last request completing the run
// with its conclusion and a "Re-run" button. Progress is recorded per batch,
// so a retried delivery resumes rather than repeating batches; completing a
// run again with the same content does nothing.
func (r *Runs) Complete(ctx context.Context, gh *github.Client, run Run, c report.Check) (Run, error) {
	owner, name, err := split(run.Repo)
	if err != nil {
		return run, err
	}
	hash := hashCheck(c)
	var have string
	var done int
	if err := r.db.QueryRowContext(ctx, `SELECT content_hash, batches_done FROM check_runs WHERE run_id=?`, run.ID).Scan(&have, &done); err != nil {
		return run, fmt.Errorf("check run %d is not recorded: %w", run.ID, err)
	}
	if have != hash {
		done = 0
	}
	// The full report is kept under an id derived from its content.
	reportID := hash[:20]
	now := r.now()
	if _, err := r.db.ExecContext(ctx, `INSERT INTO check_reports(id, repo, head_sha, name, markdown, created_at) VALUES(?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING`,
		reportID, run.Repo, run.HeadSHA, run.Name, c.Markdown()+annotationsMarkdown(c.Annotations), now.Unix()); err != nil {
		return run, err
	}
	if _, err := r.db.ExecContext(ctx, `UPDATE check_runs SET content_hash=?, batches_done=?, report_id=?, updated_at=? WHERE run_id=?`, hash, done, reportID, now.Unix(), run.ID); err != nil {
		return run, err
	}
	if n := len(c.Annotations); n > MaxAnnotationsShown {
		c.Summary = fmt.Sprintf("*%d annotations: GitHub shows the first %d; all are in the [full report](%s).*\n\n", n, MaxAnnotationsShown, r.ReportURL(reportID)) + c.Summary
		c.Annotations = c.Annotations[:MaxAnnotationsShown]
	}
	out := Render(c, r.ReportURL(reportID))
	details := c.DetailsURL
	if details == "" {
		details = r.ReportURL(reportID)
	}
	conclusion := string(c.Conclusion)
	if conclusion == "" {
		conclusion = string(report.Neutral)
	}
	batches := (len(c.Annotations) + MaxAnnotations - 1) / MaxAnnotations
	batches = max(batches, 1)
	for i := done; i < batches; i++ {
		lo, hi := i*MaxAnnotations, min((i+1)*MaxAnnotations, len(c.Annotations))
		var anns []*github.CheckRunAnnotation
		for _, a := range c.Annotations[lo:hi] {
			anns = append(anns, annotation(a))
		}
		opt := github.UpdateCheckRunOptions{
			Name:       run.Name,
			DetailsURL: github.String(details),
			Output: &github.CheckRunOutput{
				Title: github.String(out.Title), Summary: github.String(out.Summary), Annotations: anns,
			},
		}
		if out.Text != "" {
			opt.Output.Text = github.String(out.Text)
		}
		if i == batches-1 {
			opt.Status = github.String("completed")
			opt.Conclusion = github.String(conclusion)
			opt.CompletedAt = &github.Timestamp{Time: now}
			opt.Actions = []*github.CheckRunAction{{Label: "Re-run", Description: "Run this check again", Identifier: RerunAction}}
		} else {
			opt.Status = github.String("in_progress")
		}
		if _, _, err := gh.Checks.UpdateCheckRun(ctx, owner, name, run.ID, opt); err != nil {
			return run, fmt.Errorf("update check run %d (batch %d of %d): %w", run.ID, i+1, batches, err)
		}
		if _, err := r.db.ExecContext(ctx, `UPDATE check_runs SET batches_done=?, updated_at=? WHERE run_id=?`, i+1, r.now().Unix(), run.ID); err != nil {
			return run, err
		}
	}
	if _, err := r.db.ExecContext(ctx, `UPDATE check_runs SET status='completed', conclusion=?, title=?, updated_at=? WHERE run_id=?`, conclusion, out.Title, r.now().Unix(), run.ID); err != nil {
		return run, err
	}
	run.Status, run.Conclusion, run.Title, run.ReportID = "completed", conclusion, out.Title, reportID
	return run, nil
}

func annotationsMarkdown(as []report.Annotation) string {
	if len(as) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n### Annotations\n\n")
	for _, a := range as {
		fmt.Fprintf(&b, "- `%s:%d` %s: %s %s\n", a.Path, a.StartLine, a.Level, a.Title, strings.ReplaceAll(a.Message, "\n", " "))
	}
	return b.String()
}

// Supersede completes as cancelled the unfinished runs of PR pr whose head
// is not headSHA: a newer push made them moot. It returns how many.
func (r *Runs) Supersede(ctx context.Context, gh *github.Client, repo string, pr int, headSHA string) (int, error) {
	owner, name, err := split(repo)
	if err != nil {
		return 0, err
	}
	rows, err := r.db.QueryContext(ctx, `SELECT run_id, name, head_sha FROM check_runs WHERE repo=? AND pr=? AND head_sha<>? AND status IN ('queued','in_progress') AND run_id IS NOT NULL`, repo, pr, headSHA)
	if err != nil {
		return 0, err
	}
	type old struct {
		id        int64
		name, sha string
	}
	var olds []old
	for rows.Next() {
		var o old
		if err := rows.Scan(&o.id, &o.name, &o.sha); err != nil {
			rows.Close()
			return 0, err
		}
		olds = append(olds, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, o := range olds {
		title := "Superseded by " + short(headSHA)
		_, _, err := gh.Checks.UpdateCheckRun(ctx, owner, name, o.id, github.UpdateCheckRunOptions{
			Name: o.name, Status: github.String("completed"), Conclusion: github.String("cancelled"),
			CompletedAt: &github.Timestamp{Time: r.now()},
			Output: &github.CheckRunOutput{Title: github.String(title),
				Summary: github.String(fmt.Sprintf("Commit %s was pushed to this pull request after %s, so this run was stopped; see the runs of %s.", headSHA, o.sha, short(headSHA)))},
		})
		if err != nil {
			return 0, fmt.Errorf("supersede check run %d: %w", o.id, err)
		}
		if _, err := r.db.ExecContext(ctx, `UPDATE check_runs SET status='completed', conclusion='cancelled', title=?, updated_at=? WHERE run_id=?`, title, r.now().Unix(), o.id); err != nil {
			return 0, err
		}
	}
	return len(olds), nil
}

// ForSHA lists the newest recorded run of each name for a head SHA.
func (r *Runs) ForSHA(ctx context.Context, repo, sha string) ([]Run, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT name, trigger FROM check_runs WHERE repo=? AND head_sha=? ORDER BY name, created_at DESC, rowid DESC`, repo, sha)
	if err != nil {
		return nil, err
	}
	var keys []Key
	seen := map[string]bool{}
	for rows.Next() {
		k := Key{Repo: repo, HeadSHA: sha}
		if err := rows.Scan(&k.Name, &k.Trigger); err != nil {
			rows.Close()
			return nil, err
		}
		if !seen[k.Name] {
			seen[k.Name] = true
			keys = append(keys, k)
		}
	}
	rows.Close()
	var out []Run
	for _, k := range keys {
		run, ok, err := r.get(ctx, k)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, run)
		}
	}
	return out, rows.Err()
}

var reportIDRE = regexp.MustCompile(`^[0-9a-f]{20}$`)

// Handler serves the full reports at /reports/{id} (mount it at
// "GET /reports/{id}" or under the prefix /reports/).
func (r *Runs) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id := req.PathValue("id")
		if id == "" {
			id = strings.TrimPrefix(req.URL.Path, "/reports/")
		}
		if !reportIDRE.MatchString(id) {
			http.Error(w, "no such report", http.StatusNotFound)
			return
		}
		var md string
		err := r.db.QueryRowContext(req.Context(), `SELECT markdown FROM check_reports WHERE id=?`, id).Scan(&md)
		if errors.Is(err, sql.ErrNoRows) {
			http.Error(w, "no such report", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, "database error", http.StatusInternalServerError)
			return
		}
		// Served as plain Markdown text: PR content never becomes HTML here.
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Write([]byte(md))
	})
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

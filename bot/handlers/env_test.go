package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/bot/githubfake"
	"github.com/compatbot/compatbot/bot/intake"
	"github.com/compatbot/compatbot/internal/testgit"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/state"
)

const (
	appID    = 4711
	inst     = 77
	repoName = "eessi/compat-layer"
	prNumber = 3
)

// env is one test's world: the fake GitHub, a real git remote served over
// HTTP by git-http-backend (authenticating with the fake's installation
// tokens, as github.com does), a real SQLite database and the Handler.
type env struct {
	t        testing.TB
	gh       *githubfake.Server
	h        *Handler
	db       *state.DB
	bare     string
	cloneURL string
	baseSHA  string
	headSHA  string        // the example PR's head (has a lint error)
	gitDown  *atomic.Bool  // the git remote answers 503 while set
	gitCalls *atomic.Int64 // requests the git remote served while up
	seq      int
}

func newEnv(t testing.TB, configure ...func(*Options)) *env {
	t.Helper()
	e := &env{t: t}
	gh, key := githubfake.New(appID)
	t.Cleanup(gh.Close)
	e.gh = gh
	gitSrv := testgit.ServeRepos(t, t.TempDir(), testgit.TokenAuth(gh.TokenValid))
	e.gitDown, e.gitCalls = &gitSrv.Down, &gitSrv.Requests
	e.bare, e.cloneURL = gitSrv.Publish(t, testgit.LintErrorRepo(t), "eessi", "compat-layer")
	e.baseSHA = e.git(e.bare, "rev-parse", "refs/heads/main")
	e.headSHA = e.git(e.bare, "rev-parse", "refs/heads/pr")
	e.git(e.bare, "update-ref", fmt.Sprintf("refs/pull/%d/head", prNumber), e.headSHA)

	r := gh.AddRepo("eessi", "compat-layer", inst, e.cloneURL)
	r.GitDir = e.bare
	r.Branches["main"] = e.baseSHA
	gh.SetPull(repoName, githubfake.Pull{Number: prNumber, Title: "2026.06 updates", Author: "alice", HeadRef: "pr", HeadSHA: e.headSHA, BaseRef: "main", BaseSHA: e.baseSHA})
	for login, role := range map[string]string{"alice": "write", "bob": "write", "mia": "maintain", "ada": "admin", "tom": "triage", "rita": "read"} {
		gh.SetRole(repoName, login, role)
	}
	gh.AddUser("eve")
	gh.AddTeamMember("eessi/compat-maintainers", "tina", "active")

	f, err := ghclient.New(ghclient.Config{APIURL: gh.APIURL(), AppID: appID, PrivateKey: key,
		Limits: ghclient.Limits{Backoff: 5 * time.Millisecond, MaxWait: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(filepath.Join(t.TempDir(), "compatbot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	opts := Options{DB: db, Clients: f, GitCache: &gitrepo.Cache{Dir: t.TempDir()}, PublicURL: "https://compatbot.example/", BotLogin: "compatbot[bot]",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, c := range configure {
		c(&opts)
	}
	if e.h, err = New(opts); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) git(dir string, args ...string) string {
	e.t.Helper()
	return testgit.Git(e.t, dir, args...)
}

// commit makes a new commit on top of parent in the remote, with files
// replaced, and returns its SHA.
func (e *env) commit(parent string, files map[string]string) string {
	e.t.Helper()
	e.seq++
	return testgit.Commit(e.t, e.bare, parent, files, fmt.Sprintf("change %d", e.seq))
}

// push points the PR at sha, on GitHub and in the git remote.
func (e *env) push(pr int, sha string) {
	e.git(e.bare, "update-ref", fmt.Sprintf("refs/pull/%d/head", pr), sha)
	p := e.gh.Pull(repoName, pr)
	p.HeadSHA = sha
	e.gh.SetPull(repoName, p)
}

func (e *env) file(ref, path string) string {
	return e.git(e.bare, "show", ref+":"+path)
}

// payload data for the templates in testdata/.
type data struct {
	Action, Author, UpdatedAt, HeadRef, HeadSHA, BaseSHA, CloneURL, Before string
	Number, Installation                                                   int
	Draft, Changes, OnPR, Merged                                           bool
	MergedBy                                                               string
	Labels                                                                 []string
	CommentID, RunID                                                       int64
	Login, UserType, CreatedAt, Body, Identifier                           string
}

var (
	tmplOnce sync.Once
	tmpls    *template.Template
)

func (e *env) payload(file string, d data) []byte {
	e.t.Helper()
	tmplOnce.Do(func() {
		tmpls = template.Must(template.New("").Funcs(template.FuncMap{"json": func(s string) string {
			b, _ := json.Marshal(s)
			return string(b)
		}}).ParseGlob("testdata/*.json"))
	})
	if d.CloneURL == "" {
		d.CloneURL = e.cloneURL
	}
	if d.Installation == 0 {
		d.Installation = inst
	}
	if d.BaseSHA == "" {
		d.BaseSHA = e.baseSHA
	}
	if d.HeadRef == "" {
		d.HeadRef = "pr"
	}
	var b bytes.Buffer
	if err := tmpls.ExecuteTemplate(&b, file, d); err != nil {
		e.t.Fatal(err)
	}
	if !json.Valid(b.Bytes()) {
		e.t.Fatalf("%s: invalid JSON:\n%s", file, b.String())
	}
	return b.Bytes()
}

// deliver processes a delivery; id "" gets a fresh one.
func (e *env) deliver(id, event string, body []byte) error {
	e.t.Helper()
	if id == "" {
		e.seq++
		id = fmt.Sprintf("d-%d-%d", time.Now().UnixNano(), e.seq)
	}
	var a struct {
		Action string `json:"action"`
	}
	json.Unmarshal(body, &a)
	return e.h.Process(context.Background(), &intake.Delivery{ID: id, Event: event, Action: a.Action, Payload: body,
		Key: fmt.Sprintf("%s#%d", repoName, prNumber), Attempt: 1, ReceivedAt: time.Now()})
}

// openPR delivers pull_request opened for the current head of PR 3.
func (e *env) openPR(action string, sha string, updated time.Time) error {
	return e.deliver("", "pull_request", e.payload("pull_request.json", data{Action: action, Number: prNumber, Author: "alice",
		HeadSHA: sha, UpdatedAt: updated.UTC().Format(time.RFC3339), Draft: false}))
}

// comment has login write body on PR 3 and delivers the event.
func (e *env) comment(login, body string) (githubfake.Comment, error) {
	e.t.Helper()
	c := e.gh.AddComment(repoName, prNumber, login, body)
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	err := e.deliver("", "issue_comment", e.commentPayload(c, typ, "created", true))
	return c, err
}

func (e *env) commentPayload(c githubfake.Comment, userType, action string, onPR bool) []byte {
	return e.payload("issue_comment.json", data{Action: action, Number: c.Issue, Author: "alice", CommentID: c.ID, Login: c.User,
		UserType: userType, CreatedAt: c.CreatedAt.Format(time.RFC3339), Body: c.Body, OnPR: onPR, Changes: action == "edited"})
}

// replies are the bot's comments on PR 3.
func (e *env) replies() []githubfake.Comment {
	var out []githubfake.Comment
	for _, c := range e.gh.Comments(repoName, prNumber) {
		if c.User == "compatbot[bot]" && strings.HasPrefix(c.Body, "<!-- compatbot reply to comment ") {
			out = append(out, c)
		}
	}
	return out
}

func (e *env) runsFor(sha string) []githubfake.CheckRun {
	var out []githubfake.CheckRun
	for _, r := range e.gh.CheckRuns(repoName) {
		if r.HeadSHA == sha {
			out = append(out, r)
		}
	}
	return out
}

func intakeIsPermanent(err error) bool { return intake.IsPermanent(err) }

package ghclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/bot/githubfake"
	"github.com/google/go-github/v60/github"
)

const appID = 4242

func setup(t *testing.T) (*githubfake.Server, *ghclient.Factory) {
	t.Helper()
	gh, key := githubfake.New(appID)
	t.Cleanup(gh.Close)
	gh.AddRepo("eessi", "compat-layer", 7, "file:///nonexistent")
	gh.AddRepo("other", "repo", 8, "file:///nonexistent")
	f, err := ghclient.New(ghclient.Config{APIURL: gh.APIURL(), AppID: appID, PrivateKey: key,
		Limits: ghclient.Limits{Backoff: 10 * time.Millisecond, MaxWait: 5 * time.Second, SecondaryWait: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return gh, f
}

func TestInstallationAuth(t *testing.T) {
	gh, f := setup(t)
	ctx := ghclient.WithCounter(context.Background())
	c, err := f.Client(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	repo, _, err := c.Repositories.Get(ctx, "eessi", "compat-layer")
	if err != nil {
		t.Fatal(err)
	}
	if repo.GetDefaultBranch() != "main" {
		t.Errorf("default branch %q", repo.GetDefaultBranch())
	}
	// The token of installation 7 cannot see installation 8's repository.
	if _, _, err := c.Repositories.Get(ctx, "other", "repo"); !is404(err) {
		t.Errorf("other installation's repo: %v, want 404", err)
	}
	if n := gh.CallCount("POST /app/installations/{id}/access_tokens"); n != 1 {
		t.Errorf("%d token requests, want 1 (cached)", n)
	}
	if got := ghclient.CallsFrom(ctx); got != 3 {
		t.Errorf("CallsFrom = %d, want 3 (token + 2 GETs)", got)
	}
	c2, _ := f.Client(ctx, 7)
	if c2 != c {
		t.Error("client of installation 7 not cached")
	}
	tok, err := f.InstallationToken(ctx, 7)
	if err != nil || !strings.HasPrefix(tok, "ghs_") {
		t.Errorf("InstallationToken = %q, %v", tok, err)
	}
	c8, _ := f.Client(ctx, 8)
	if _, _, err := c8.Repositories.Get(ctx, "other", "repo"); err != nil {
		t.Errorf("installation 8: %v", err)
	}
	if f.Stats().Calls < 5 {
		t.Errorf("stats %+v", f.Stats())
	}
}

func is404(err error) bool {
	var e *github.ErrorResponse
	return errors.As(err, &e) && e.Response.StatusCode == 404
}

func TestWrongKeyIsRefused(t *testing.T) {
	gh, _ := githubfake.New(appID)
	defer gh.Close()
	gh.AddRepo("eessi", "compat-layer", 7, "")
	// A key of another App: GitHub cannot verify the JWT.
	other, err := ghclient.New(ghclient.Config{APIURL: gh.APIURL(), AppID: appID + 1, PrivateKey: mustKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.InstallationToken(context.Background(), 7)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("token with wrong app id: %v, want a 401", err)
	}
	if _, err := ghclient.New(ghclient.Config{AppID: 1, PrivateKey: []byte("not a key")}); err == nil {
		t.Error("bad PEM accepted")
	}
	if _, err := ghclient.New(ghclient.Config{}); err == nil {
		t.Error("no credentials accepted")
	}
	if _, err := ghclient.New(ghclient.Config{Token: "x", APIURL: "not a url"}); err == nil {
		t.Error("relative api_url accepted")
	}
}

func mustKey(t *testing.T) []byte {
	_, key := githubfake.New(1)
	return key
}

func TestDevTokenAndBadToken(t *testing.T) {
	gh, _ := setup(t)
	f, _ := ghclient.New(ghclient.Config{APIURL: gh.APIURL(), Token: gh.DevToken()})
	c, _ := f.Client(context.Background(), 0)
	if _, _, err := c.Repositories.Get(context.Background(), "eessi", "compat-layer"); err != nil {
		t.Fatal(err)
	}
	bad, _ := ghclient.New(ghclient.Config{APIURL: gh.APIURL(), Token: "ghp_wrong"})
	c, _ = bad.Client(context.Background(), 0)
	_, _, err := c.Repositories.Get(context.Background(), "eessi", "compat-layer")
	var e *github.ErrorResponse
	if !errors.As(err, &e) || e.Response.StatusCode != 401 || e.Message != "Bad credentials" {
		t.Errorf("bad token: %v, want 401 Bad credentials", err)
	}
}

func TestEnterpriseBaseURL(t *testing.T) {
	gh, key := githubfake.New(appID)
	defer gh.Close()
	gh.AddRepo("eessi", "compat-layer", 7, "")
	// GitHub Enterprise Server serves the API under /api/v3/.
	ghes := httptest.NewServer(http.StripPrefix("/api/v3", gh.Config.Handler))
	defer ghes.Close()
	f, err := ghclient.New(ghclient.Config{APIURL: ghes.URL + "/api/v3/", AppID: appID, PrivateKey: key})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := f.Client(context.Background(), 7)
	if _, _, err := c.Repositories.Get(context.Background(), "eessi", "compat-layer"); err != nil {
		t.Fatal(err)
	}
}

func TestRetries(t *testing.T) {
	const getRepo = "GET /repos/{owner}/{repo}"
	const comment = "POST /repos/{owner}/{repo}/issues/{number}/comments"
	const reaction = "POST /repos/{owner}/{repo}/issues/comments/{id}/reactions"
	tests := []struct {
		name      string
		route     string
		n         int
		fail      githubfake.Failure
		ctx       func(context.Context) context.Context
		call      func(ctx context.Context, c *github.Client, commentID int64) error
		wantErr   bool
		wantCalls int
		minWait   time.Duration
	}{
		{name: "5xx GET retried", route: getRepo, n: 2, fail: githubfake.ServerError(), call: getRepoCall, wantCalls: 3},
		{name: "5xx GET gives up", route: getRepo, n: 10, fail: githubfake.ServerError(), call: getRepoCall, wantErr: true, wantCalls: 5},
		{name: "5xx POST comment not repeated", route: comment, n: 1, fail: githubfake.ServerError(), call: commentCall, wantErr: true, wantCalls: 1},
		{name: "5xx POST reaction marked safe", route: reaction, n: 1, fail: githubfake.ServerError(), ctx: ghclient.WithRetrySafe, call: reactionCall, wantCalls: 2},
		{name: "secondary limit waits Retry-After", route: comment, n: 1, fail: githubfake.SecondaryRateLimit(1), call: commentCall, wantCalls: 2, minWait: time.Second},
		{name: "primary 403 waits for reset", route: getRepo, n: 1, fail: githubfake.PrimaryRateLimit(403, time.Now().Add(time.Second)), call: getRepoCall, wantCalls: 2, minWait: time.Second},
		{name: "primary 429 waits for reset", route: comment, n: 1, fail: githubfake.PrimaryRateLimit(429, time.Now().Add(time.Second)), call: commentCall, wantCalls: 2, minWait: time.Second},
		{name: "secondary limit without Retry-After waits", route: getRepo, n: 1, fail: githubfake.SecondaryRateLimit(0), call: getRepoCall, wantCalls: 2, minWait: time.Second},
		{name: "wait beyond MaxWait returned", route: getRepo, n: 1, fail: githubfake.SecondaryRateLimit(3600), call: getRepoCall, wantErr: true, wantCalls: 1},
		{name: "404 right after webhook retried", route: getRepo, n: 2, fail: githubfake.NotFound(),
			ctx: func(ctx context.Context) context.Context { return ghclient.WithEventTime(ctx, time.Now()) }, call: getRepoCall, wantCalls: 3},
		{name: "404 long after webhook final", route: getRepo, n: 1, fail: githubfake.NotFound(),
			ctx: func(ctx context.Context) context.Context {
				return ghclient.WithEventTime(ctx, time.Now().Add(-time.Hour))
			}, call: getRepoCall, wantErr: true, wantCalls: 1},
		{name: "404 that is an answer not retried after webhook", route: getRepo, n: 1, fail: githubfake.NotFound(),
			ctx: func(ctx context.Context) context.Context {
				return ghclient.WithNotFoundAnswer(ghclient.WithEventTime(ctx, time.Now()))
			}, call: getRepoCall, wantErr: true, wantCalls: 1},
		{name: "404 without event time final", route: getRepo, n: 1, fail: githubfake.NotFound(), call: getRepoCall, wantErr: true, wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gh, f := setup(t)
			gh.SetPull("eessi/compat-layer", githubfake.Pull{Number: 1, Author: "alice", HeadSHA: strings.Repeat("a", 40)})
			cm := gh.AddComment("eessi/compat-layer", 1, "alice", "/deploy test")
			ctx := context.Background()
			c, _ := f.Client(ctx, 7)
			if _, err := f.InstallationToken(ctx, 7); err != nil {
				t.Fatal(err)
			}
			if tc.ctx != nil {
				ctx = tc.ctx(ctx)
			}
			ctx = ghclient.WithCounter(ctx)
			gh.FailNext(tc.route, tc.n, tc.fail)
			start := time.Now()
			err := tc.call(ctx, c, cm.ID)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got := gh.CallCount(tc.route); got != tc.wantCalls {
				t.Errorf("%d calls of %s, want %d", got, tc.route, tc.wantCalls)
			}
			if got := ghclient.CallsFrom(ctx); got != tc.wantCalls {
				t.Errorf("CallsFrom = %d, want %d", got, tc.wantCalls)
			}
			if el := time.Since(start); el < tc.minWait {
				t.Errorf("returned after %v, want a wait of at least %v", el, tc.minWait)
			}
		})
	}
}

func getRepoCall(ctx context.Context, c *github.Client, _ int64) error {
	_, _, err := c.Repositories.Get(ctx, "eessi", "compat-layer")
	return err
}

func commentCall(ctx context.Context, c *github.Client, _ int64) error {
	_, _, err := c.Issues.CreateComment(ctx, "eessi", "compat-layer", 1, &github.IssueComment{Body: github.String("hi")})
	return err
}

func reactionCall(ctx context.Context, c *github.Client, id int64) error {
	_, _, err := c.Reactions.CreateIssueCommentReaction(ctx, "eessi", "compat-layer", id, "rocket")
	return err
}

func TestExhaustedLimitHoldsLaterRequests(t *testing.T) {
	gh, f := setup(t)
	ctx := context.Background()
	c, _ := f.Client(ctx, 7)
	gh.FailNext("GET /repos/{owner}/{repo}", 1, githubfake.PrimaryRateLimit(403, time.Now().Add(time.Hour)))
	if err := getRepoCall(ctx, c, 0); err == nil {
		t.Fatal("rate-limited request succeeded")
	}
	gh.ResetCalls()
	// The limit is known to be spent for an hour: the next request must not
	// be sent at all.
	// go-github keeps its own account of the limit; either it or the
	// Transport must refuse.
	err := getRepoCall(ctx, c, 0)
	var rl *ghclient.RateLimitError
	var grl *github.RateLimitError
	if !errors.As(err, &rl) && !errors.As(err, &grl) {
		t.Fatalf("err = %v, want a rate limit error", err)
	}
	if n := len(gh.Calls()); n != 0 {
		t.Errorf("%d requests sent against a spent limit", n)
	}
	// Below go-github (as for ghinstallation's token requests), the
	// Transport alone holds the request.
	tr := &ghclient.Transport{}
	hc := &http.Client{Transport: tr}
	gh.FailNext("GET /repos/{owner}/{repo}", 1, githubfake.PrimaryRateLimit(403, time.Now().Add(time.Hour)))
	resp, err := hc.Get(gh.URL + "/repos/eessi/compat-layer")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	gh.ResetCalls()
	_, err = hc.Get(gh.URL + "/repos/eessi/compat-layer")
	if !errors.As(err, &rl) {
		t.Fatalf("err = %v, want RateLimitError", err)
	}
	if n := len(gh.Calls()); n != 0 {
		t.Errorf("%d requests sent against a spent limit", n)
	}
	if st := tr.Stats(); st.RateLimited != 2 || st.Calls != 1 {
		t.Errorf("stats %+v, want 1 call and 2 given up", st)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	gh, f := setup(t)
	c, _ := f.Client(context.Background(), 7)
	f.InstallationToken(context.Background(), 7)
	gh.FailNext("GET /repos/{owner}/{repo}", 1, githubfake.SecondaryRateLimit(4))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := getRepoCall(ctx, c, 0)
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("err = %v after %v, want a prompt context error", err, time.Since(start))
	}
}

// Rate limits are GitHub's per installation: one installation hitting its
// limit (primary, or secondary beyond what the Transport waits) must not
// hold another installation's requests; its own later ones are held.
func TestRateLimitIsPerInstallation(t *testing.T) {
	tests := []struct {
		name string
		fail githubfake.Failure
	}{
		{"primary limit spent for an hour", githubfake.PrimaryRateLimit(403, time.Now().Add(time.Hour))},
		{"secondary limit for an hour", githubfake.SecondaryRateLimit(3600)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gh, f := setup(t)
			ctx := context.Background()
			c7, _ := f.Client(ctx, 7)
			c8, _ := f.Client(ctx, 8)
			for _, id := range []int64{7, 8} {
				if _, err := f.InstallationToken(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			gh.FailNext("GET /repos/{owner}/{repo}", 1, tc.fail)
			if err := getRepoCall(ctx, c7, 0); err == nil {
				t.Fatal("rate-limited request succeeded")
			}
			gh.ResetCalls()
			start := time.Now()
			if _, _, err := c8.Repositories.Get(ctx, "other", "repo"); err != nil {
				t.Errorf("installation 8 after installation 7's limit: %v", err)
			}
			if n := gh.CallCount("GET /repos/{owner}/{repo}"); n != 1 {
				t.Errorf("installation 8 sent %d requests, want 1", n)
			}
			if el := time.Since(start); el > time.Second {
				t.Errorf("installation 8 waited %v", el)
			}
			gh.ResetCalls()
			if err := getRepoCall(ctx, c7, 0); err == nil {
				t.Error("installation 7's next request succeeded against its limit")
			}
			if n := gh.CallCount("GET /repos/{owner}/{repo}"); n != 0 {
				t.Errorf("installation 7 sent %d requests against its known limit", n)
			}
		})
	}
}

// Every request to GitHub, the token request of ghinstallation included,
// names compatbot and its build, so GitHub (and an operator reading its
// logs) can tell which bot sent it.
func TestUserAgentOnEveryRequest(t *testing.T) {
	gh, f := setup(t)
	ctx := context.Background()
	c, err := f.Client(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Repositories.Get(ctx, "eessi", "compat-layer"); err != nil {
		t.Fatal(err)
	}
	calls := gh.Calls()
	if len(calls) < 2 {
		t.Fatalf("%d calls, want the token request and the GET", len(calls))
	}
	for _, call := range calls {
		if call.UserAgent != ghclient.UserAgent || !strings.HasPrefix(call.UserAgent, "compatbot/") {
			t.Errorf("%s %s: User-Agent %q, want %q", call.Method, call.Path, call.UserAgent, ghclient.UserAgent)
		}
	}
}

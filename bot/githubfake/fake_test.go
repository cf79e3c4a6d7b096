package githubfake_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/bot/githubfake"
	"github.com/google/go-github/v60/github"
)

var sha = strings.Repeat("c", 40)

func client(t *testing.T) (*githubfake.Server, *github.Client) {
	t.Helper()
	gh, key := githubfake.New(1)
	t.Cleanup(gh.Close)
	r := gh.AddRepo("eessi", "compat-layer", 2, "")
	r.Branches["main"] = sha
	f, err := ghclient.New(ghclient.Config{APIURL: gh.APIURL(), AppID: 1, PrivateKey: key, Limits: ghclient.Limits{MaxRetries: 1, Backoff: 1}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := f.Client(context.Background(), 2)
	return gh, c
}

func status(err error) (int, *github.ErrorResponse) {
	var e *github.ErrorResponse
	if errors.As(err, &e) {
		return e.Response.StatusCode, e
	}
	return 0, nil
}

func TestCheckRunValidation(t *testing.T) {
	_, c := client(t)
	ctx := context.Background()
	_, _, err := c.Checks.CreateCheckRun(ctx, "eessi", "compat-layer", github.CreateCheckRunOptions{Name: "x"})
	if s, e := status(err); s != 422 || e.Message != "Validation Failed" || len(e.Errors) != 1 || e.Errors[0].Field != "head_sha" || e.Errors[0].Code != "missing_field" {
		t.Errorf("missing head_sha: %v", err)
	}
	var anns []*github.CheckRunAnnotation
	for range 51 {
		anns = append(anns, &github.CheckRunAnnotation{Path: github.String("a"), StartLine: github.Int(1), EndLine: github.Int(1), AnnotationLevel: github.String("notice"), Message: github.String("m")})
	}
	run, _, err := c.Checks.CreateCheckRun(ctx, "eessi", "compat-layer", github.CreateCheckRunOptions{Name: "x", HeadSHA: sha})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Checks.UpdateCheckRun(ctx, "eessi", "compat-layer", run.GetID(), github.UpdateCheckRunOptions{Name: "x",
		Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String("s"), Annotations: anns}})
	if s, e := status(err); s != 422 || e.Errors[0].Field != "output.annotations" {
		t.Errorf("51 annotations: %v", err)
	}
	_, _, err = c.Checks.UpdateCheckRun(ctx, "eessi", "compat-layer", run.GetID(), github.UpdateCheckRunOptions{Name: "x",
		Output: &github.CheckRunOutput{Title: github.String("t"), Summary: github.String(strings.Repeat("é", 65536))}})
	if s, _ := status(err); s != 422 {
		t.Errorf("summary of 65536 characters: %v", err)
	}
	_, _, err = c.Checks.UpdateCheckRun(ctx, "eessi", "compat-layer", run.GetID(), github.UpdateCheckRunOptions{Name: "x", Status: github.String("completed")})
	if s, _ := status(err); s != 422 {
		t.Errorf("completed without conclusion: %v", err)
	}
	if _, _, err := c.Checks.UpdateCheckRun(ctx, "eessi", "compat-layer", 999999, github.UpdateCheckRunOptions{Name: "x"}); func() int { s, _ := status(err); return s }() != 404 {
		t.Errorf("unknown run: %v", err)
	}
}

func TestDeployments(t *testing.T) {
	gh, c := client(t)
	ctx := context.Background()
	// A failing check on the commit: GitHub refuses a deployment that
	// does not name its required contexts.
	if _, _, err := c.Checks.CreateCheckRun(ctx, "eessi", "compat-layer", github.CreateCheckRunOptions{Name: "compat sets", HeadSHA: sha, Status: github.String("completed"), Conclusion: github.String("failure")}); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Repositories.CreateDeployment(ctx, "eessi", "compat-layer", &github.DeploymentRequest{Ref: github.String("main"), Environment: github.String("compat-test")})
	if s, _ := status(err); s != 409 {
		t.Errorf("deployment with failing checks: %v, want 409", err)
	}
	_, _, err = c.Repositories.CreateDeployment(ctx, "eessi", "compat-layer", &github.DeploymentRequest{Ref: github.String("no-such-branch"), RequiredContexts: &[]string{}})
	if s, _ := status(err); s != 422 {
		t.Errorf("unknown ref: %v, want 422", err)
	}
	var ids []int64
	for range 2 {
		d, _, err := c.Repositories.CreateDeployment(ctx, "eessi", "compat-layer", &github.DeploymentRequest{Ref: github.String("main"), Environment: github.String("compat-test"), RequiredContexts: &[]string{}, Payload: map[string]any{"pr": 3}})
		if err != nil {
			t.Fatal(err)
		}
		if d.GetSHA() != sha || d.GetEnvironment() != "compat-test" {
			t.Errorf("deployment %+v", d)
		}
		if _, _, err := c.Repositories.CreateDeploymentStatus(ctx, "eessi", "compat-layer", d.GetID(), &github.DeploymentStatusRequest{State: github.String("in_progress")}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Repositories.CreateDeploymentStatus(ctx, "eessi", "compat-layer", d.GetID(), &github.DeploymentStatusRequest{State: github.String("success"), LogURL: github.String("https://x/log")}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.GetID())
	}
	_, _, err = c.Repositories.CreateDeploymentStatus(ctx, "eessi", "compat-layer", ids[0], &github.DeploymentStatusRequest{State: github.String("done")})
	if s, _ := status(err); s != 422 {
		t.Errorf("bad state: %v", err)
	}
	list, _, err := c.Repositories.ListDeployments(ctx, "eessi", "compat-layer", &github.DeploymentsListOptions{Environment: "compat-test"})
	if err != nil || len(list) != 2 || list[0].GetID() != ids[1] {
		t.Fatalf("list: %v %v", list, err)
	}
	sts, _, err := c.Repositories.ListDeploymentStatuses(ctx, "eessi", "compat-layer", ids[0], nil)
	if err != nil || len(sts) != 3 || sts[0].GetState() != "inactive" {
		t.Errorf("statuses of the first deployment (newest first): %v %v; want it made inactive by the second's success", sts, err)
	}
	if d := gh.Deployments("eessi/compat-layer"); len(d) != 2 || d[1].Statuses[1].LogURL != "https://x/log" {
		t.Errorf("recorded %+v", d)
	}
}

func TestContents(t *testing.T) {
	gh, c := client(t)
	ctx := context.Background()
	path := "changelog/2026.06.md"
	_, _, _, err := c.Repositories.GetContents(ctx, "eessi", "compat-layer", path, nil)
	if s, _ := status(err); s != 404 {
		t.Errorf("missing file: %v", err)
	}
	res, resp, err := c.Repositories.CreateFile(ctx, "eessi", "compat-layer", path, &github.RepositoryContentFileOptions{Message: github.String("changelog: first"), Content: []byte("# 2026.06\n"), Branch: github.String("main")})
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create: %v", err)
	}
	first := res.Content.GetSHA()
	// Updating an existing file without its sha: 422; with a stale one: 409.
	_, _, err = c.Repositories.UpdateFile(ctx, "eessi", "compat-layer", path, &github.RepositoryContentFileOptions{Message: github.String("m"), Content: []byte("x")})
	if s, _ := status(err); s != 422 {
		t.Errorf("update without sha: %v", err)
	}
	if _, _, err := c.Repositories.UpdateFile(ctx, "eessi", "compat-layer", path, &github.RepositoryContentFileOptions{Message: github.String("m"), Content: []byte("# 2026.06\nentry\n"), SHA: github.String(first)}); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Repositories.UpdateFile(ctx, "eessi", "compat-layer", path, &github.RepositoryContentFileOptions{Message: github.String("m"), Content: []byte("lost update"), SHA: github.String(first)})
	if s, _ := status(err); s != 409 {
		t.Errorf("update with stale sha: %v", err)
	}
	fc, _, _, err := c.Repositories.GetContents(ctx, "eessi", "compat-layer", path, &github.RepositoryContentGetOptions{Ref: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := fc.GetContent(); s != "# 2026.06\nentry\n" {
		t.Errorf("content %q", s)
	}
	if got := gh.FileCommits("eessi/compat-layer"); len(got) != 2 || got[1].Message != "m" {
		t.Errorf("commits %+v", got)
	}
	_, _, err = c.Repositories.CreateFile(ctx, "eessi", "compat-layer", "x", &github.RepositoryContentFileOptions{Message: github.String("m"), Content: []byte("x"), Branch: github.String("nope")})
	if s, _ := status(err); s != 404 {
		t.Errorf("unknown branch: %v", err)
	}
}

func TestFailuresAndAuth(t *testing.T) {
	gh, c := client(t)
	ctx := context.Background()
	gh.FailNextAfter("GET /repos/{owner}/{repo}", 1, 1, githubfake.Failure{Status: http.StatusUnauthorized, Message: "Bad credentials"})
	if _, _, err := c.Repositories.Get(ctx, "eessi", "compat-layer"); err != nil {
		t.Fatalf("first call: %v", err)
	}
	if _, _, err := c.Repositories.Get(ctx, "eessi", "compat-layer"); func() int { s, _ := status(err); return s }() != 401 {
		t.Errorf("second call: %v, want 401", err)
	}
	calls := gh.Calls()
	last := calls[len(calls)-1]
	if last.Route != "GET /repos/{owner}/{repo}" || last.Status != 401 || !strings.HasPrefix(last.Token, "token ghs_") {
		t.Errorf("recorded %+v", last)
	}
	// An expired or unknown JWT for the App endpoints.
	req, _ := http.NewRequest("POST", gh.URL+"/app/installations/2/access_tokens", nil)
	req.Header.Set("Authorization", "Bearer not.a.jwt")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("bad JWT: %d", resp.StatusCode)
	}
}

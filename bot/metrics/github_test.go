package metrics

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/bot/githubfake"
)

// GitHub calls through the real client against the GitHub double: answers
// by status, retries, and the budget left per installation, the App's own
// (JWT) requests apart.
func TestGitHubCollector(t *testing.T) {
	gh, key := githubfake.New(4242)
	defer gh.Close()
	gh.AddRepo("eessi", "compat-layer", 7, "file:///nonexistent")
	f, err := ghclient.New(ghclient.Config{APIURL: gh.APIURL(), AppID: 4242, PrivateKey: key, Limits: ghclient.Limits{Backoff: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry()
	reg.RegisterGitHub(f.Stats)
	ctx := context.Background()
	c, err := f.Client(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	gh.FailNext("GET /repos/{owner}/{repo}", 1, githubfake.ServerError())
	if _, _, err := c.Repositories.Get(ctx, "eessi", "compat-layer"); err != nil {
		t.Fatal(err)
	}
	c.Repositories.Get(ctx, "eessi", "missing")
	var b bytes.Buffer
	if err := reg.Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{
		`compatbot_github_api_requests_total{status="201"} 1`, // the installation token
		`compatbot_github_api_requests_total{status="502"} 1`,
		`compatbot_github_api_requests_total{status="200"} 1`,
		`compatbot_github_api_requests_total{status="404"} 1`,
		`compatbot_github_api_retries_total 1`,
		`compatbot_github_rate_limit_remaining{installation="7"} 4999`,
		`compatbot_github_rate_limit_limit{installation="7"} 5000`,
		`compatbot_github_rate_limit_remaining{installation="app"} `,
	} {
		if !strings.Contains(b.String(), l) {
			t.Errorf("exposition lacks %q:\n%s", l, b.String())
		}
	}
}

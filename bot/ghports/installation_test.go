package ghports

import (
	"context"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/bot/githubfake"
	"github.com/compatbot/compatbot/workflow/prflow"
)

// A repository compatbot has had no event from can still be deployed: its
// installation is asked of GitHub with the App's JWT, once, and
// remembered.
func TestInstallationLookup(t *testing.T) {
	const route = "GET /repos/{owner}/{repo}/installation"
	for _, tc := range []struct {
		name      string
		installed int64 // the repository's installation on GitHub; 0: not installed
		devToken  bool
		fail502   int
		wantErr   string // "" = the deployment is created
		lookups   int    // installation lookups after two deployments
	}{
		{name: "installed", installed: inst, lookups: 1},
		{name: "lookup retried after a 502", installed: inst, fail502: 1, lookups: 2},
		{name: "not installed", installed: 0, wantErr: "the App is not installed on the repository", lookups: 2},
		{name: "development token", installed: inst, devToken: true, wantErr: "development token (github.token) cannot act as the App", lookups: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			w.gh.SetInstallation(repo, tc.installed)
			cl := w.cl
			if tc.devToken {
				var err error
				if cl, err = ghclient.New(ghclient.Config{APIURL: w.gh.APIURL(), Token: w.gh.DevToken()}); err != nil {
					t.Fatal(err)
				}
			}
			w.gh.FailNext(route, tc.fail502, githubfake.ServerError())
			api := GitHubAPI{DB: w.db, Clients: cl}
			for range 2 {
				_, err := api.CreateDeployment(ctx, repo, w.sha, "compat-test", "x")
				if tc.wantErr == "" && err != nil {
					t.Fatal(err)
				}
				if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
			}
			if n := w.gh.CallCount(route); n != tc.lookups {
				t.Errorf("%d installation lookups, want %d (the answer is remembered)", n, tc.lookups)
			}
			for _, c := range w.gh.Calls() {
				if c.Route == route && c.Status == 200 && !strings.HasPrefix(c.Token, "Bearer ey") {
					t.Errorf("lookup authenticated with %q, not the App's JWT", c.Token)
				}
			}
			got, err := prflow.KnownInstallation(ctx, w.db, repo)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int64{true: inst, false: 0}[tc.wantErr == ""]; got != want {
				t.Errorf("remembered installation %d, want %d", got, want)
			}
		})
	}
}

package authz

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/bot/commands"
	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/bot/githubfake"
	"github.com/compatbot/compatbot/sets"
)

var actions = []Action{DeployTest, DeployProd, Rebuild, RollbackTest, RollbackProd, Status, Help}

// TestMatrix is the full matrix of role x action for the default rules
// (from DefaultConfig and from a policy with no levels at all): a row lists
// which roles, in Levels order (none read triage write maintain admin), may
// run the action.
func TestMatrix(t *testing.T) {
	want := map[Action]string{
		DeployTest:   "---YYY",
		DeployProd:   "----YY",
		Rebuild:      "---YYY",
		RollbackTest: "----YY",
		RollbackProd: "----YY",
		Status:       "YYYYYY",
		Help:         "YYYYYY",
	}
	for _, pol := range []struct {
		name string
		p    sets.DeployPolicy
	}{{"DefaultConfig", sets.DefaultConfig().Deploy}, {"empty policy", sets.DeployPolicy{}}} {
		for _, a := range actions {
			got := ""
			for _, lvl := range Levels {
				d := Decide(pol.p, a, Subject{Login: "bob", Level: lvl}, "alice")
				if d.Allowed {
					got += "Y"
				} else {
					got += "-"
					if !strings.Contains(d.Reason, "@bob") || !strings.Contains(d.Reason, "`"+lvl+"`") {
						t.Errorf("%s %s %s: reason %q lacks who and level", pol.name, a, lvl, d.Reason)
					}
				}
			}
			if got != want[a] {
				t.Errorf("%s: %s allowed for %s, want %s", pol.name, a, got, want[a])
			}
		}
	}
}

func TestConfiguredRules(t *testing.T) {
	p := sets.DeployPolicy{
		Test:     sets.Permission{Level: "maintain", Users: []string{"Dave"}},
		Prod:     sets.Permission{Level: "admin", Users: []string{"carol"}, Teams: []string{"eessi/Release"}},
		Rebuild:  sets.Permission{Level: "write"},
		Rollback: sets.Permission{Level: "admin"},
	}
	tests := []struct {
		who    Subject
		action Action
		author string
		allow  bool
		reason string
	}{
		{Subject{Login: "bob", Level: "write"}, DeployTest, "alice", false, "needs the `maintain` role"},
		{Subject{Login: "dave", Level: "read"}, DeployTest, "alice", true, ""},
		{Subject{Login: "bob", Level: "maintain"}, DeployProd, "alice", false, "or being listed in `deploy.prod` users or teams"},
		{Subject{Login: "carol", Level: "none"}, DeployProd, "alice", true, ""},
		{Subject{Login: "erin", Level: "write", Teams: map[string]bool{"eessi/release": true}}, DeployProd, "alice", true, ""},
		{Subject{Login: "erin", Level: "write", Teams: map[string]bool{"eessi/release": false}}, DeployProd, "alice", false, "needs the `admin` role"},
		{Subject{Login: "root", Level: "admin"}, DeployProd, "alice", true, ""},
		// Own PR: refused whatever the level or listing.
		{Subject{Login: "Alice", Level: "admin"}, DeployProd, "alice", false, "their own pull request"},
		{Subject{Login: "carol", Level: "admin"}, DeployProd, "carol", false, "allow_self_prod"},
		// Own PR to test is fine.
		{Subject{Login: "alice", Level: "maintain"}, DeployTest, "alice", true, ""},
		{Subject{Login: "bob", Level: "maintain"}, RollbackProd, "alice", false, "needs the `admin` role"},
		{Subject{Login: "bob", Level: "maintain"}, RollbackTest, "alice", false, "needs the `admin` role"},
		{Subject{Login: "bob", Level: "none"}, Status, "alice", true, ""},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s-%s-%s", tc.who.Login, tc.action, tc.author), func(t *testing.T) {
			d := Decide(p, tc.action, tc.who, tc.author)
			if d.Allowed != tc.allow || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("Decide = %+v, want allowed %v with reason containing %q", d, tc.allow, tc.reason)
			}
		})
	}
	p.AllowSelfProd = true
	if d := Decide(p, DeployProd, Subject{Login: "carol"}, "carol"); !d.Allowed {
		t.Errorf("allow_self_prod: %+v", d)
	}
}

func TestActionOf(t *testing.T) {
	for body, want := range map[string]Action{
		"/deploy test": DeployTest, "/deploy prod": DeployProd, "/rebuild": Rebuild,
		"/rollback test": RollbackTest, "/rollback prod v1": RollbackProd, "/status": Status, "/help": Help,
	} {
		r := commands.Parse(body)
		if got := ActionOf(*r[0].Command); got != want {
			t.Errorf("%s: %s, want %s", body, got, want)
		}
	}
}

func TestResolver(t *testing.T) {
	gh, key := githubfake.New(11)
	defer gh.Close()
	gh.AddRepo("eessi", "compat-layer", 5, "")
	gh.SetRole("eessi/compat-layer", "maint", "maintain")
	gh.SetRole("eessi/compat-layer", "tri", "triage")
	gh.SetRole("eessi/compat-layer", "writer", "write")
	gh.AddTeamMember("eessi/release", "writer", "active")
	gh.AddTeamMember("eessi/release", "newbie", "pending")
	f, err := ghclient.New(ghclient.Config{APIURL: gh.APIURL(), AppID: 11, PrivateKey: key})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := f.Client(context.Background(), 5)
	r := &Resolver{Client: c}
	p := sets.DefaultConfig().Deploy
	p.Prod.Teams = []string{"eessi/release"}
	tests := []struct {
		login  string
		action Action
		author string
		allow  bool
		calls  int
	}{
		{"maint", DeployProd, "alice", true, 1},
		{"tri", DeployTest, "alice", false, 1},
		{"writer", DeployProd, "alice", true, 2},  // level too low, then the team
		{"newbie", DeployProd, "alice", false, 2}, // pending membership does not count
		{"ghost", DeployTest, "alice", false, 1},  // unknown user: 404 = none
		{"maint", DeployProd, "maint", false, 0},  // own PR: no need to ask
		{"ghost", Status, "alice", true, 0},
	}
	f.InstallationToken(context.Background(), 5)
	for _, tc := range tests {
		ctx := ghclient.WithCounter(context.Background())
		d, err := r.Authorize(ctx, "eessi", "compat-layer", p, tc.action, tc.login, tc.author)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.login, tc.action, err)
		}
		if d.Allowed != tc.allow {
			t.Errorf("%s %s: %+v, want allowed %v", tc.login, tc.action, d, tc.allow)
		}
		if n := ghclient.CallsFrom(ctx); n != tc.calls {
			t.Errorf("%s %s: %d API calls, want %d", tc.login, tc.action, n, tc.calls)
		}
	}
	gh.FailNext("GET /repos/{owner}/{repo}/collaborators/{user}/permission", 1, githubfake.Failure{Status: 401, Message: "Bad credentials"})
	if _, err := r.Authorize(context.Background(), "eessi", "compat-layer", p, DeployTest, "maint", "x"); err == nil {
		t.Error("401 from GitHub not reported")
	}
}

package handlers

import (
	"context"
	"testing"

	"github.com/compatbot/compatbot/bot/intake"
	"github.com/compatbot/compatbot/workflow/prflow"
)

// Installation events keep the repository → installation map deploys use
// in step with GitHub, in the payload shapes GitHub sends.
func TestInstallationEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	known := func(repo string) int64 {
		t.Helper()
		id, err := prflow.KnownInstallation(ctx, e.db, repo)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	steps := []struct {
		name, event, body string
		want              map[string]int64 // repo -> installation after the step (0: unknown)
		permanent         bool
	}{
		{name: "installed on two repositories", event: "installation",
			body: `{"action":"created","installation":{"id":501,"account":{"login":"eessi"}},"repositories":[{"id":1,"name":"compat-layer","full_name":"eessi/compat-layer","private":false},{"id":2,"name":"software-layer","full_name":"eessi/software-layer","private":false}],"sender":{"login":"admin"}}`,
			want: map[string]int64{"eessi/compat-layer": 501, "eessi/software-layer": 501}},
		{name: "a repository added", event: "installation_repositories",
			body: `{"action":"added","installation":{"id":501},"repository_selection":"selected","repositories_added":[{"full_name":"eessi/filesystem-layer"}],"repositories_removed":[]}`,
			want: map[string]int64{"eessi/filesystem-layer": 501, "eessi/compat-layer": 501}},
		{name: "a repository removed", event: "installation_repositories",
			body: `{"action":"removed","installation":{"id":501},"repositories_added":[],"repositories_removed":[{"full_name":"eessi/software-layer"}]}`,
			want: map[string]int64{"eessi/software-layer": 0, "eessi/compat-layer": 501}},
		{name: "removal from an installation that no longer holds it keeps the newer one", event: "installation_repositories",
			body: `{"action":"removed","installation":{"id":999},"repositories_removed":[{"full_name":"eessi/compat-layer"}]}`,
			want: map[string]int64{"eessi/compat-layer": 501}},
		{name: "an action compatbot does not act on", event: "installation",
			body: `{"action":"new_permissions_accepted","installation":{"id":501}}`,
			want: map[string]int64{"eessi/compat-layer": 501}},
		{name: "uninstalled", event: "installation",
			body: `{"action":"deleted","installation":{"id":501},"repositories":[{"full_name":"eessi/compat-layer"}]}`,
			want: map[string]int64{"eessi/compat-layer": 0, "eessi/filesystem-layer": 0}},
		{name: "no installation id", event: "installation", body: `{"action":"created","repositories":[{"full_name":"a/b"}]}`, permanent: true},
		{name: "a repository name that is not owner/name", event: "installation_repositories",
			body: `{"action":"added","installation":{"id":7},"repositories_added":[{"full_name":"no-slash"}]}`, permanent: true},
	}
	for _, st := range steps {
		err := e.deliver("", st.event, []byte(st.body))
		if st.permanent != intake.IsPermanent(err) {
			t.Fatalf("%s: error %v, want permanent=%v", st.name, err, st.permanent)
		}
		if !st.permanent && err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		for repo, want := range st.want {
			if got := known(repo); got != want {
				t.Errorf("%s: %s in installation %d, want %d", st.name, repo, got, want)
			}
		}
	}
}

// The intake stores installation events as events to process, not as
// ignored ones.
func TestInstallationEventsAreHandled(t *testing.T) {
	for _, ev := range []string{"installation", "installation_repositories"} {
		found := false
		for _, d := range intake.DefaultEvents {
			found = found || d == ev
		}
		if !found {
			t.Errorf("intake.DefaultEvents lacks %q", ev)
		}
	}
}

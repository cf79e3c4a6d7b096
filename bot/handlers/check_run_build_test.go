package handlers

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/compatbot/compatbot/sets"
)

func TestBuildTargetFromCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want sets.Target
		ok   bool
	}{
		{"compat 2026.06 linux-x86_64", sets.Target{Version: "2026.06", OS: "linux", Arch: "x86_64"}, true},
		{"compat 2025.06 linux-aarch64", sets.Target{Version: "2025.06", OS: "linux", Arch: "aarch64"}, true},
		{"compat sets", sets.Target{}, false},
		{"compat 2026.06", sets.Target{}, false},
		{"CI / build", sets.Target{}, false},
		{"compat 2026.06 linux-", sets.Target{}, false},
	} {
		got, ok := buildTarget(tc.name)
		if ok != tc.ok || got != tc.want {
			t.Errorf("buildTarget(%q) = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// "Re-run" on a build's check run builds that target of the PR's head
// again, once per delivery; runs compatbot did not make, or of targets the
// PR does not change, are left alone.
func TestCheckRunRerequestedRebuilds(t *testing.T) {
	b := &recBuilder{}
	e := newEnv(t, func(o *Options) { o.Builder = b })
	files := map[string]string{}
	for _, arch := range []string{"x86_64", "aarch64"} {
		p := "sets/2026.06/linux-" + arch
		files[p] = e.file(e.baseSHA, p) + "\napp-misc/jq # JSON in the EESSI init scripts\n"
	}
	clean := e.commit(e.baseSHA, files)
	e.push(prNumber, clean)
	if err := e.deliver("", "pull_request", e.payload("pull_request.json", data{Action: "synchronize", Number: prNumber, Author: "alice", HeadSHA: clean,
		Before: e.headSHA, UpdatedAt: time.Now().UTC().Format(time.RFC3339)})); err != nil {
		t.Fatal(err)
	}
	if len(b.reqs) != 1 {
		t.Fatalf("%d builds after the push, want 1", len(b.reqs))
	}
	rerun := func(delivery, runName, action, identifier string) {
		t.Helper()
		var p map[string]any
		json.Unmarshal(e.payload("check_run.json", data{Action: action, Number: prNumber, HeadSHA: clean, BaseSHA: e.baseSHA, RunID: 4242, Identifier: identifier, Login: "bob"}), &p)
		p["check_run"].(map[string]any)["name"] = runName
		body, _ := json.Marshal(p)
		if err := e.deliver(delivery, "check_run", body); err != nil {
			t.Fatalf("%s %s: %v", action, runName, err)
		}
	}
	x86 := sets.Target{Version: "2026.06", OS: "linux", Arch: "x86_64"}
	for _, tc := range []struct {
		name, delivery, run, action, identifier string
		want                                    int // build requests after the step
	}{
		{"Re-run on the x86_64 build", "d-rerun-1", "compat 2026.06 linux-x86_64", "rerequested", "", 2},
		{"the same delivery again", "d-rerun-1", "compat 2026.06 linux-x86_64", "rerequested", "", 2},
		{"the run's own Re-run button", "d-rerun-2", "compat 2026.06 linux-x86_64", "requested_action", "rerun", 3},
		{"a target the PR does not change", "d-rerun-3", "compat 2025.06 linux-x86_64", "rerequested", "", 3},
		{"another app's run", "d-rerun-4", "CI / build", "rerequested", "", 3},
		{"completed, not a re-run", "d-rerun-5", "compat 2026.06 linux-x86_64", "completed", "", 3},
	} {
		rerun(tc.delivery, tc.run, tc.action, tc.identifier)
		if len(b.reqs) != tc.want {
			t.Fatalf("%s: %d build requests, want %d", tc.name, len(b.reqs), tc.want)
		}
	}
	for i, r := range b.reqs[1:] {
		if !slices.Equal(r.Targets, []sets.Target{x86}) || r.HeadSHA != clean || r.PR != prNumber || r.BaseSHA != e.baseSHA || r.Trigger != []string{"rerun:d-rerun-1", "rerun:d-rerun-2"}[i] {
			t.Errorf("re-run build request %d: %+v", i, r)
		}
	}
}

package deploy

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/compatbot/compatbot/workflow/publish"
	"github.com/compatbot/compatbot/workflow/state"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestMarkdownGolden(t *testing.T) {
	dg := "sha256:" + strings.Repeat("ab", 32)
	lin1, lin2 := NextLineage("", dg), NextLineage(NextLineage("", dg), dg)
	ok := ItemResult{Target: x86, Path: "versions/2025.06/compat/linux/x86_64", Digest: dg, Tag: "2025.06-linux-x86_64-pr12-abcdef0", Revision: 7,
		LineageBefore: lin1, LineageAfter: lin2, State: stVerified, VerifyPassed: true, VerifySummary: "42 files match | all good"}
	failedTests := ok
	failedTests.State, failedTests.FailedStep, failedTests.VerifyPassed, failedTests.VerifySummary = stFailed, "verify", false, "compat test startprefix: missing"
	aborted := ItemResult{Target: arm, Path: "versions/2025.06/compat/linux/aarch64", Digest: dg, Tag: "2025.06-linux-aarch64-pr12-abcdef0",
		State: stAborted, FailedStep: "apply", Error: "artifact: apply: no space left on device"}
	skipped := ItemResult{Target: arm, Path: "versions/2025.06/compat/linux/aarch64", Digest: dg, State: stAborted, Error: "not attempted because an earlier target failed"}
	base := Result{RequestID: 3, Kind: kindDeploy, Env: EnvTest, Repo: "eessi/compat-layer", PR: 12, HeadSHA: "abcdef0123456", Requester: "bob"}
	with := func(r Result, f func(*Result)) Result { f(&r); return r }
	for name, res := range map[string]Result{
		"deploy-ok":     with(base, func(r *Result) { r.Items = []ItemResult{ok} }),
		"deploy-apply":  with(base, func(r *Result) { r.Items = []ItemResult{ok, aborted} }),
		"deploy-verify": with(base, func(r *Result) { r.Items = []ItemResult{failedTests, skipped}; r.Env = EnvProd }),
		"deploy-recovered": with(base, func(r *Result) {
			r.Items = []ItemResult{aborted}
			r.Recovered = true
			r.Notes = []string{"The changelog commit is pending and will be retried: 409"}
		}),
		"rollback-ok": {Kind: kindRollback, Env: EnvProd, Requester: "carol", Tag: "2025.06-linux-x86_64-pr11-1234567", FromTag: ok.Tag, Revision: 9,
			Items: []ItemResult{{Target: x86, Path: ok.Path, LineageAfter: lin1, State: stPublished}}},
		"rollback-failed": {Kind: kindRollback, Env: EnvProd, Requester: "carol", Tag: "2025.06-linux-x86_64-pr11-1234567", Recovered: true,
			Error: "compatbot stopped (crash or restart) before the rollback completed; the published tree is unchanged. Run the rollback again."},
	} {
		t.Run(name, func(t *testing.T) {
			testtree.Golden(t, name+".md", res.Markdown(), *update)
		})
	}
}

func TestNewChecksOptions(t *testing.T) {
	db, err := state.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r := newRig(t)
	good := Options{DB: db, Targets: r.pubs, Artifacts: StoreSource{Store: r.store}, Verify: r.verify}
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"no db", func(o *Options) { o.DB = nil }, "Options.DB is nil"},
		{"no targets", func(o *Options) { o.Targets = nil }, "Options.Targets is empty"},
		{"bad env", func(o *Options) { o.Targets = map[string]publish.Publisher{"staging": r.pubs[EnvTest]} }, `unknown environment "staging"`},
		{"layout without a target", func(o *Options) { o.Layouts = map[string]publish.Layout{"staging": {}} }, `Options.Layouts: environment "staging" has no target`},
		{"no artifacts", func(o *Options) { o.Artifacts = nil }, "Options.Artifacts is nil"},
		{"no verifier", func(o *Options) { o.Verify = nil }, "Options.Verify is nil"},
	} {
		o := good
		tc.mod(&o)
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
}

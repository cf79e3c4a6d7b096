package prflow

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/mirror"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/publish"
	"github.com/compatbot/compatbot/workflow/report"
)

// prodBaseRig is a PR head built and deployed to test, after which
// production moved on (another change was published there): its
// /deploy prod is refused for the lineage and a rebuild on the production
// base is due.
type prodBaseRig struct {
	e       *env
	b       *Builder
	pd      *Deployer
	core    *deploy.Engine
	digest  string // the head's own artifact
	prodLin string // production's lineage after it moved
}

func newProdBaseRig(t *testing.T) *prodBaseRig {
	t.Helper()
	e := newEnv(t)
	ctx := context.Background()
	r := &prodBaseRig{e: e}
	r.b = e.builder(func(o *Options) {
		o.ProdLower = publish.Lower{P: e.prodPub, Empty: filepath.Join(e.dataDir, "empty")}
	})
	r.pd, r.core = e.deployer(t)
	r.pd.Rebuild = r.b
	if err := r.b.Build(ctx, e.request(e.headSHA, x86_2026)); err != nil {
		t.Fatal(err)
	}
	r.b.Wait()
	outs, err := r.b.Outcomes(ctx, repoName, 7, e.headSHA)
	if err != nil || outs[x86_2026].Digest == "" {
		t.Fatalf("the head's build did not pass: %+v %v", outs, err)
	}
	r.digest = outs[x86_2026].Digest
	if _, err := r.pd.DeployTest(ctx, e.deployReq(e.headSHA, "test", "bob", 1, false, x86_2026)); err != nil {
		t.Fatal(err)
	}
	// Production moves on outside this PR (a hotfix published there).
	tx, err := e.prodPub.Transaction(ctx, "versions/2026.06/compat/linux/x86_64")
	if err != nil {
		t.Fatal(err)
	}
	r.prodLin = deploy.NextLineage("", "sha256:"+strings.Repeat("ab", 32))
	testtree.Build(t, tx.Dir(), map[string]testtree.File{"etc/hotfix": {Content: "prod only\n"}, deploy.LineageFile: {Content: r.prodLin + "\n"}})
	if _, err := tx.Publish(ctx, "hotfix-1", "hotfix"); err != nil {
		t.Fatal(err)
	}
	return r
}

// mirrorBlob is the mirror's stored copy of the head's one distfile.
func (r *prodBaseRig) mirrorBlob(t *testing.T) (name, blob string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.e.mirror.Dir, "Manifest"))
	if err != nil {
		t.Fatal(err)
	}
	ents, err := mirror.ParseManifest("Manifest", data)
	if err != nil || len(ents) != 1 {
		t.Fatalf("mirror Manifest: %d entries, %v\n%s", len(ents), err, data)
	}
	return ents[0].Name, filepath.Join(r.e.mirror.Dir, "blobs", "sha512", ents[0].SHA512)
}

func TestProdLineageMismatchStartsProdBaseRebuild(t *testing.T) {
	t.Parallel()
	r := newProdBaseRig(t)
	e, ctx := r.e, context.Background()
	_, err := r.pd.DeployProd(ctx, e.deployReq(e.headSHA, "prod", "mia", 2, true, x86_2026))
	refusal(t, err, "production has moved on")
	refusal(t, err, "`"+prodBaseCheckName(x86_2026)+"` started")
	refusal(t, err, "must go through test again")
	refusal(t, err, "`/deploy test`, then `/deploy prod`")
	r.b.Wait()

	pb := e.waitRun(e.headSHA, "compat 2026.06 linux-x86_64 (prod base)", "completed")
	if pb.Conclusion != "success" || !strings.HasPrefix(pb.Title, "On the production base: ") || !strings.Contains(pb.Summary, "lineage `"+r.prodLin[:12]+"`") {
		t.Fatalf("prod-base run: %s %q\n%s", pb.Conclusion, pb.Title, pb.Summary)
	}
	// The head's own run and result are untouched.
	own := e.runsFor(e.headSHA)[pipeline.CheckName(x86_2026)]
	if len(own) != 1 || own[0].Conclusion != "success" || strings.Contains(own[0].Title, "production") {
		t.Errorf("the head's own check run changed: %+v", own)
	}
	rows, err := r.b.rows(ctx, `head_sha=? AND version=?`, e.headSHA, x86_2026.Version)
	if err != nil || len(rows) != 2 || rows[0].Trigger != "" || rows[0].Digest != r.digest || rows[1].Trigger != prodBaseTrigger(r.prodLin) {
		t.Fatalf("recorded builds: %+v %v", rows, err)
	}
	if rows[1].BaseLineage != r.prodLin || rows[1].Digest == "" || rows[1].Digest == r.digest {
		t.Errorf("the rebuild's record: lineage %q digest %q (head's own %q)", rows[1].BaseLineage, rows[1].Digest, r.digest)
	}
	// The rebuild is what Outcomes (and so the next deploy) uses.
	outs, _ := r.b.Outcomes(ctx, repoName, 7, e.headSHA)
	if o := outs[x86_2026]; o.Digest != rows[1].Digest || o.BaseLineage != r.prodLin || o.Conclusion != report.Success {
		t.Errorf("outcome after the rebuild = %+v", o)
	}
	// Asking again starts nothing new.
	_, err = r.pd.DeployProd(ctx, e.deployReq(e.headSHA, "prod", "mia", 3, true, x86_2026))
	refusal(t, err, "never deployed to `test`")
	if n := len(e.runsFor(e.headSHA)[prodBaseCheckName(x86_2026)]); n != 1 {
		t.Errorf("%d prod-base runs, want 1", n)
	}
}

func TestProdBaseRebuildMirrorFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, blob string)
		want   string
	}{
		{"missing", func(t *testing.T, blob string) {
			if err := os.Remove(blob); err != nil {
				t.Fatal(err)
			}
		}, "not in the mirror"},
		{"corrupted", func(t *testing.T, blob string) {
			if err := os.WriteFile(blob, []byte("not the sources that were tested\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newProdBaseRig(t)
			e, ctx := r.e, context.Background()
			name, blob := r.mirrorBlob(t)
			tc.break_(t, blob)
			_, err := r.pd.DeployProd(ctx, e.deployReq(e.headSHA, "prod", "mia", 2, true, x86_2026))
			refusal(t, err, "started")
			r.b.Wait()
			run := e.waitRun(e.headSHA, prodBaseCheckName(x86_2026), "completed")
			if run.Conclusion != "failure" || !strings.Contains(run.Title, "Source "+name+" is missing from the mirror or does not match it") {
				t.Fatalf("prod-base run: %s %q", run.Conclusion, run.Title)
			}
			if !strings.Contains(run.Summary, "distfile "+name+": ") || !strings.Contains(run.Summary, tc.want) {
				t.Errorf("summary does not name %s with %q:\n%s", name, tc.want, run.Summary)
			}
			if _, err := os.Stat(filepath.Join(e.dataDir, "runs", r.latestRun(t), "build.log")); err == nil {
				t.Error("the build command ran although its sources were not in the mirror")
			}
			// The failed variant neither hides the head's own result nor
			// is started again by the next /deploy prod.
			outs, _ := r.b.Outcomes(ctx, repoName, 7, e.headSHA)
			if outs[x86_2026].Digest != r.digest {
				t.Errorf("outcome after the failed rebuild = %+v", outs[x86_2026])
			}
			_, err = r.pd.DeployProd(ctx, e.deployReq(e.headSHA, "prod", "mia", 3, true, x86_2026))
			refusal(t, err, "ended failure: Source "+name)
			r.b.Wait()
			if n := len(e.runsFor(e.headSHA)[prodBaseCheckName(x86_2026)]); n != 1 {
				t.Errorf("%d prod-base runs, want 1", n)
			}
		})
	}
}

func (r *prodBaseRig) latestRun(t *testing.T) string {
	t.Helper()
	var id string
	if err := r.e.db.QueryRow(`SELECT run_id FROM prflow_builds WHERE trigger LIKE 'prod-base:%'`).Scan(&id); err != nil || id == "" {
		t.Fatalf("no prod-base run id: %v", err)
	}
	return id
}

func TestProdBaseRebuildThroughTestToProd(t *testing.T) {
	t.Parallel()
	r := newProdBaseRig(t)
	e, ctx := r.e, context.Background()
	_, err := r.pd.DeployProd(ctx, e.deployReq(e.headSHA, "prod", "mia", 2, true, x86_2026))
	refusal(t, err, "started")
	r.b.Wait()
	outs, _ := r.b.Outcomes(ctx, repoName, 7, e.headSHA)
	rebuilt := outs[x86_2026].Digest
	if rebuilt == "" || rebuilt == r.digest {
		t.Fatalf("no rebuilt artifact: %+v", outs[x86_2026])
	}
	// Production refuses the rebuilt artifact until test has it.
	_, err = r.pd.DeployProd(ctx, e.deployReq(e.headSHA, "prod", "mia", 3, true, x86_2026))
	refusal(t, err, "never deployed to `test` with passing tests")

	reply, err := r.pd.DeployTest(ctx, e.deployReq(e.headSHA, "test", "bob", 4, true, x86_2026))
	if err != nil || strings.Contains(reply, "Already on test") || !strings.Contains(reply, "test's tree for it was first made production's tree") {
		t.Fatalf("/deploy test of the rebuilt artifact: %v\n%s", err, reply)
	}
	testLin, _ := r.core.Lineage(ctx, "test", x86_2026)
	if testLin != deploy.NextLineage(r.prodLin, rebuilt) {
		t.Errorf("test lineage %s, want production's lineage followed by the rebuilt artifact", testLin)
	}
	testCur, _, _ := e.testPub.Current(ctx)
	if b, err := os.ReadFile(filepath.Join(testCur, "versions/2026.06/compat/linux/x86_64/etc/hotfix")); err != nil || string(b) != "prod only\n" {
		t.Errorf("test's tree is not production's tree plus the rebuild: etc/hotfix %q %v", b, err)
	}

	reply, err = r.pd.DeployProd(ctx, e.deployReq(e.headSHA, "prod", "mia", 5, true, x86_2026))
	if err != nil {
		t.Fatalf("/deploy prod after the rebuild went through test: %v", err)
	}
	if !strings.Contains(reply, "2026.06-linux-x86_64-pr7-"+e.headSHA[:7]) {
		t.Errorf("prod reply:\n%s", reply)
	}
	prodLin, _ := r.core.Lineage(ctx, "prod", x86_2026)
	if prodLin != deploy.NextLineage(r.prodLin, rebuilt) || prodLin != testLin {
		t.Errorf("prod lineage %s, test %s: want both production's old lineage followed by the rebuild", prodLin, testLin)
	}
	cur, _, _ := e.prodPub.Current(ctx)
	tree := filepath.Join(cur, "versions/2026.06/compat/linux/x86_64")
	if _, err := os.Stat(filepath.Join(tree, "var/db/pkg/dev-util/direnv-2.36.0")); err != nil {
		t.Errorf("prod lacks the built package: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(tree, "etc/hotfix")); err != nil || string(b) != "prod only\n" {
		t.Errorf("prod lost what it had before: etc/hotfix %q %v", b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(tree, deploy.ArtifactFile)); strings.TrimSpace(string(b)) != rebuilt {
		t.Errorf("prod's artifact marker %q, want the rebuilt %s", b, rebuilt)
	}
}

// A production-base rebuild cut short by a shutdown runs again on
// Recover as the same variant, under the same check run.
func TestProdBaseRebuildRecovered(t *testing.T) {
	t.Parallel()
	r := newProdBaseRig(t)
	e, ctx := r.e, context.Background()
	if err := os.WriteFile(e.hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := r.pd.DeployProd(ctx, e.deployReq(e.headSHA, "prod", "mia", 2, true, x86_2026))
	refusal(t, err, "started")
	e.waitRun(e.headSHA, prodBaseCheckName(x86_2026), "in_progress")
	r.b.Close()
	os.Remove(e.hold)

	b2 := e.builder(func(o *Options) {
		o.ProdLower = publish.Lower{P: e.prodPub, Empty: filepath.Join(e.dataDir, "empty")}
	})
	n, err := b2.Recover(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Recover restarted %d builds, %v; want the prod-base rebuild", n, err)
	}
	b2.Wait()
	run := e.waitRun(e.headSHA, prodBaseCheckName(x86_2026), "completed")
	if run.Conclusion != "success" {
		t.Fatalf("recovered rebuild: %s %q\n%s", run.Conclusion, run.Title, run.Summary)
	}
	if n := len(e.runsFor(e.headSHA)[prodBaseCheckName(x86_2026)]); n != 1 {
		t.Errorf("%d prod-base runs, want 1", n)
	}
	outs, _ := b2.Outcomes(ctx, repoName, 7, e.headSHA)
	if o := outs[x86_2026]; o.BaseLineage != r.prodLin || o.Digest == r.digest || o.Digest == "" {
		t.Errorf("outcome after the recovered rebuild = %+v", o)
	}
}

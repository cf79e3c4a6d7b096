package prflow

// The Builder with a Slurm remote, against a real single-node Slurm
// (testslurm, started once for this package): every x86_64 build is a
// batch job that re-executes this test binary in compatbot's job mode, as
// a compute node runs compatbot. Missing binaries fail the tests.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compatbot/compatbot/internal/testslurm"
	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/cluster"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/report"
)

func TestMain(m *testing.M) { testslurm.Main(m, cluster.RunJobFile) }

// slurmBuilder is e's Builder with x86_64 built through the test cluster,
// its runs on e's shared storage.
func (e *env) slurmBuilder() *Builder {
	e.t.Helper()
	slurmC := testslurm.Shared(e.t)
	root := filepath.Dir(e.dataDir)
	remote := &cluster.Slurm{
		Slurm:     build.Slurm{JobArgv: []string{os.Args[0], "build-job"}, Partition: "zen4", Env: slurmC.Env, Poll: 50 * time.Millisecond},
		SharedDir: filepath.Join(root, "shared"), ScratchDir: filepath.Join(root, "node-scratch"),
	}
	return e.builder(func(o *Options) { o.Remote = map[string]pipeline.Remote{"x86_64": remote} })
}

// uniqueHead is a child of the head whose set differs by a comment naming
// the test: its own commit, so its Slurm jobs are its own by name.
func (e *env) uniqueHead(t *testing.T) string {
	const setPath = "sets/2026.06/linux-x86_64"
	return e.commit(e.headSHA, map[string]string{setPath: e.file(e.headSHA, setPath) + "# " + t.Name() + "\n"})
}

// waitBuilding waits until sha's x86_2026 run says its job runs on a node.
func (e *env) waitBuilding(sha string) checkRun {
	e.t.Helper()
	var last checkRun
	ok := poll(func() bool {
		for _, r := range e.runsFor(sha)[pipeline.CheckName(x86_2026)] {
			last = r
			if r.Status == "in_progress" && strings.HasPrefix(r.Title, "Building ") {
				return true
			}
		}
		return false
	})
	if !ok {
		e.t.Fatalf("the run of %s never said its job was building: %+v\nslurmctld.log:\n%s", sha[:7], last, testslurm.Shared(e.t).Log("slurmctld"))
	}
	return last
}

// poll checks cond until it holds, for up to 45 s: Slurm and the node
// report only through the scheduler's state and the files a job writes.
func poll(cond func() bool) bool {
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

func (e *env) runID(sha string) string {
	e.t.Helper()
	var id string
	if err := e.db.QueryRow(`SELECT run_id FROM prflow_builds WHERE head_sha=? AND arch='x86_64'`, sha).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// slurmJobs lists the jobs Slurm knows (any state) built for sha.
func slurmJobs(t *testing.T, sha string) map[string]string {
	t.Helper()
	cmd := exec.Command("squeue", "-h", "-t", "all", "-n", build.SlurmJobName(x86_2026, sha), "-o", "%i %T")
	cmd.Env = append(os.Environ(), testslurm.Shared(t).Env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("squeue: %v: %s", err, out)
	}
	jobs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if id, st, ok := strings.Cut(l, " "); ok {
			jobs[id] = st
		}
	}
	return jobs
}

// TestSlurmBuildThroughTheBuilder: an arch with a Slurm runner is built as
// a batch job named for its target and commit, its live log served from
// the shared storage while the node writes it; an arch without a runner
// stays "no build host".
func TestSlurmBuildThroughTheBuilder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := os.WriteFile(e.hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b := e.slurmBuilder()
	sha := e.uniqueHead(t)
	if err := b.Build(context.Background(), e.request(sha, x86_2026, arm_2026)); err != nil {
		t.Fatal(err)
	}
	arm := e.waitRun(sha, pipeline.CheckName(arm_2026), "completed")
	if arm.Conclusion != "skipped" || !strings.Contains(arm.Title, "No build host for linux-aarch64") || !strings.Contains(arm.Summary, "x86_64 (cluster)") {
		t.Errorf("aarch64 run = %s %q %q", arm.Conclusion, arm.Title, arm.Summary)
	}
	running := e.waitBuilding(sha)
	if !strings.Contains(running.Summary, "on localhost (Slurm job ") || !strings.Contains(running.Summary, "[Live log](") {
		t.Errorf("in-progress summary: %q", running.Summary)
	}

	// The live log, while the job holds: read from the shared storage.
	id := e.runID(sha)
	srv := httptest.NewServer(func() http.Handler {
		m := http.NewServeMux()
		m.Handle("GET /builds/{id}/log", b.LogHandler())
		return m
	}())
	defer srv.Close()
	// The node starts the log when its build starts, soon after Slurm
	// calls the job running.
	var status int
	var body []byte
	if !poll(func() bool {
		resp, err := http.Get(srv.URL + "/builds/" + id + "/log")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
		return status == 200 && strings.Contains(string(body), "compatbot: building 2026.06 linux-x86_64")
	}) {
		t.Errorf("live log: %d %q", status, body)
	}
	if _, err := os.Stat(filepath.Join(e.dataDir, "runs", id)); !os.IsNotExist(err) {
		t.Errorf("a Slurm run wrote into the service's own data dir: %v", err)
	}

	os.Remove(e.hold)
	b.Wait()
	r := e.waitRun(sha, pipeline.CheckName(x86_2026), "completed")
	if r.Conclusion != "success" || !strings.Contains(r.Summary, "Built by Slurm job ") {
		t.Fatalf("%s %q\n%s\n%s", r.Conclusion, r.Title, r.Summary, r.Text)
	}
	outs, err := b.Outcomes(context.Background(), repoName, 7, sha)
	if err != nil {
		t.Fatal(err)
	}
	if o := outs[x86_2026]; o.Conclusion != report.Success || o.BaseRevision != "0" {
		t.Errorf("outcome %+v", o)
	} else if err := e.store.Verify(o.Digest); err != nil {
		t.Errorf("the recorded artifact is not in the service's store: %v", err)
	}
	// The node's sources (on the shared storage) went into the mirror.
	if _, err := e.mirror.Lookup("linux-x86_64-2026.06.tar.gz"); err != nil {
		t.Errorf("mirror: %v", err)
	}
	if jobs := slurmJobs(t, sha); len(jobs) != 1 {
		t.Errorf("jobs for %s: %v, want one", sha[:7], jobs)
	}
}

// publishTest publishes a change of the test target's x86_2026 tree with
// a new lineage, as a deploy of another PR would, and returns the lineage.
func (e *env) publishTest(tag string) string {
	e.t.Helper()
	ctx := context.Background()
	tx, err := e.testPub.Transaction(ctx, "versions/2026.06/compat/linux/x86_64")
	if err != nil {
		e.t.Fatal(err)
	}
	lin := deploy.NextLineage("", "sha256:"+strings.Repeat(fmt.Sprintf("%x", len(tag)%16), 64))
	testtree.Build(e.t, tx.Dir(), map[string]testtree.File{"etc/" + tag: {Content: tag + "\n"}, deploy.LineageFile: {Content: lin + "\n"}})
	if _, err := tx.Publish(ctx, tag, tag); err != nil {
		e.t.Fatal(err)
	}
	return lin
}

// TestSlurmRecoverAfterRestart: compatbot stops (its Builder closes, as a
// shutdown or a crash leaves it) while its job runs; the job goes on, and
// the restarted Builder takes it up under the same run id: while it still
// runs, and when it ended while compatbot was down. Each build is one job,
// and its outcome names the published tree it was built on, though
// another deploy moved the tree on while compatbot was down.
func TestSlurmRecoverAfterRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for i, endsWhileDown := range []bool{false, true} {
		if err := os.WriteFile(e.hold, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		lin := e.publishTest(fmt.Sprintf("before-%d", i))
		sha := e.commit(e.uniqueHead(t), map[string]string{"README.md": fmt.Sprintf("ends while down: %v\n", endsWhileDown)})
		b := e.slurmBuilder()
		if err := b.Build(ctx, e.request(sha, x86_2026)); err != nil {
			t.Fatal(err)
		}
		e.waitBuilding(sha)
		id := e.runID(sha)
		b.Close()
		var st string
		e.db.QueryRow(`SELECT state FROM prflow_builds WHERE head_sha=?`, sha).Scan(&st)
		jobs := slurmJobs(t, sha)
		if st != "running" || len(jobs) != 1 {
			t.Fatalf("after the stop: build %q, jobs %v; want running, one job", st, jobs)
		}
		for job, state := range jobs {
			if state != "RUNNING" {
				t.Fatalf("the stop ended job %s: %s", job, state)
			}
		}
		moved := e.publishTest(fmt.Sprintf("while-down-%d", i))
		os.Remove(e.hold)
		if endsWhileDown {
			outcome := filepath.Join(filepath.Dir(e.dataDir), "shared", "runs", id, "slurm", "outcome.json")
			if !poll(func() bool { _, err := os.Stat(outcome); return err == nil }) {
				t.Fatal("the job never ended while compatbot was down")
			}
		}

		b2 := e.slurmBuilder()
		if n, err := b2.Recover(ctx); err != nil || n != 1 {
			t.Fatalf("Recover restarted %d builds (err %v), want 1", n, err)
		}
		b2.Wait()
		runs := e.runsFor(sha)[pipeline.CheckName(x86_2026)]
		if len(runs) != 1 || runs[0].Conclusion != "success" {
			t.Fatalf("ended while down %v: runs %+v, want one, success", endsWhileDown, runs)
		}
		if got := e.runID(sha); got != id {
			t.Errorf("the recovered build ran as %s, was %s", got, id)
		}
		if jobs := slurmJobs(t, sha); len(jobs) != 1 {
			t.Errorf("ended while down %v: jobs %v, want the one job", endsWhileDown, jobs)
		}
		outs, err := b2.Outcomes(ctx, repoName, 7, sha)
		if err != nil {
			t.Fatal(err)
		}
		if o := outs[x86_2026]; o.Conclusion != report.Success || o.Digest == "" || o.BaseLineage != lin || o.BaseRevision != fmt.Sprint(2*i+1) {
			t.Errorf("outcome %+v, want built on lineage %s at revision %d (not %s, published while down)", o, lin, 2*i+1, moved)
		} else if err := e.store.Verify(o.Digest); err != nil {
			t.Error(err)
		}
		b2.Close()
	}
}

// TestSlurmNewPushCancelsTheJob: a push of a new head cancels the running
// job of the old one (scancel), and the new head is built.
func TestSlurmNewPushCancelsTheJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := os.WriteFile(e.hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b := e.slurmBuilder()
	ctx := context.Background()
	old := e.uniqueHead(t)
	if err := b.Build(ctx, e.request(old, x86_2026)); err != nil {
		t.Fatal(err)
	}
	e.waitBuilding(old)
	next := e.commit(old, map[string]string{"README.md": "next push\n"})
	if err := b.Build(ctx, e.request(next, x86_2026)); err != nil {
		t.Fatal(err)
	}
	r := e.waitRun(old, pipeline.CheckName(x86_2026), "completed")
	if r.Conclusion != "cancelled" || !strings.Contains(r.Title, "superseded by "+next[:7]) {
		t.Errorf("old run: %s %q", r.Conclusion, r.Title)
	}
	// squeue says COMPLETING while the node still stops the job.
	var jobs map[string]string
	if !poll(func() bool {
		jobs = slurmJobs(t, old)
		for _, st := range jobs {
			if st != "CANCELLED" {
				return false
			}
		}
		return len(jobs) == 1
	}) {
		t.Errorf("the old head's jobs: %v, want one, CANCELLED", jobs)
	}
	// The node stopped the build and took its overlay down.
	scratch := filepath.Join(filepath.Dir(e.dataDir), "node-scratch")
	if !poll(func() bool {
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		return !strings.Contains(string(mi), scratch)
	}) {
		t.Errorf("an overlay under %s stayed mounted after scancel", scratch)
	}
	os.Remove(e.hold)
	b.Wait()
	if r := e.waitRun(next, pipeline.CheckName(x86_2026), "completed"); r.Conclusion != "success" {
		t.Errorf("new head: %s %q\n%s", r.Conclusion, r.Title, r.Text)
	}
}

package build

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compatbot/compatbot/internal/testslurm"
)

// The Slurm tests run against a real single-node cluster (Debian's
// slurm-wlm and munge, started once for this package by testslurm); the
// batch jobs re-execute this test binary in compatbot's job mode, as a
// compute node runs compatbot. Missing binaries fail the tests.

func TestMain(m *testing.M) { testslurm.Main(m, RunJobFile) }

func slurmCluster(t testing.TB) *testslurm.Cluster { return testslurm.Shared(t) }

func slurmRunner(t testing.TB) *SlurmRunner {
	c := slurmCluster(t)
	return &SlurmRunner{Slurm{JobArgv: []string{os.Args[0], "build-job"}, Partition: "zen4", TimeLimit: "10", Env: c.Env, Poll: 50 * time.Millisecond}}
}

func scontrol(t testing.TB, c *testslurm.Cluster, id string) string {
	t.Helper()
	cmd := exec.Command("scontrol", "-o", "show", "job", id)
	cmd.Env = append(os.Environ(), c.Env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scontrol: %v: %s", err, out)
	}
	return string(out)
}

func jobID(t testing.TB, j Job) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(j.LogPath), "slurm", "jobid"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestSlurmBuildRunsAsABatchJob(t *testing.T) {
	r := slurmRunner(t)
	j := newJob(t, "echo building \"$COMPAT_SET\" into \"$COMPAT_PREFIX\"\ntouch \"$COMPAT_PREFIX/installed\"\n")
	res, err := r.Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("result %+v\n%s", res, slurmCluster(t).Log("slurmd"))
	}
	if log := readLog(t, res); !strings.Contains(log, "building eessi-2025.06-linux-"+HostArch()+" into "+j.Prefix) {
		t.Errorf("the job's log lacks the build's output:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(j.Prefix, "installed")); err != nil {
		t.Errorf("the job did not install into the prefix: %v", err)
	}
	job := scontrol(t, slurmCluster(t), jobID(t, j))
	for _, want := range []string{"JobName=" + SlurmJobName(j.Target, filepath.Base(j.WorkDir)), "Partition=zen4", "JobState=COMPLETED", "ExitCode=0:0"} {
		if !strings.Contains(job, want) {
			t.Errorf("the Slurm job lacks %q: %s", want, job)
		}
	}
}

func TestSlurmFailingJob(t *testing.T) {
	r := slurmRunner(t)
	j := newJob(t, "echo 'gcc: error: unrecognized option'\nexit 3\n")
	res, err := r.Run(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() || res.ExitCode != 3 || !strings.Contains(res.Tail, "unrecognized option") {
		t.Errorf("failing job: %+v", res)
	}
	if job := scontrol(t, slurmCluster(t), jobID(t, j)); !strings.Contains(job, "JobState=FAILED") {
		t.Errorf("Slurm's view of the failed job: %s", job)
	}
}

// TestSlurmCancelOnNewPush: cancelling the build (a new push, a shutdown)
// cancels the Slurm job with scancel.
func TestSlurmCancelOnNewPush(t *testing.T) {
	r := slurmRunner(t)
	started := filepath.Join(t.TempDir(), "started")
	j := newJob(t, "touch "+started+"\nsleep 120\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var res Result
	var err error
	go func() { res, err = r.Run(ctx, j); close(done) }()
	waitFor(t, "the job to start", func() bool { _, err := os.Stat(started); return err == nil })
	t0 := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after the cancel")
	}
	if err != nil || !res.Cancelled {
		t.Errorf("cancelled job: %+v, %v", res, err)
	}
	if job := scontrol(t, slurmCluster(t), jobID(t, j)); !strings.Contains(job, "JobState=CANCELLED") {
		t.Errorf("the Slurm job was not cancelled: %s", job)
	}
	if d := time.Since(t0); d > 30*time.Second {
		t.Errorf("cancelling took %s", d)
	}
}

func TestSlurmRefusesBeforeSubmitting(t *testing.T) {
	j := newJob(t, "true\n")
	j.SetName = "--bad"
	if _, err := (&SlurmRunner{Slurm{JobArgv: []string{"/usr/bin/compatbot", "build-job"}}}).Run(context.Background(), j); err == nil {
		t.Error("a job with an invalid set name was submitted")
	}
	j = newJob(t, "true\n")
	if _, err := (&SlurmRunner{Slurm{JobArgv: []string{"/usr/bin/compat bot"}}}).Run(context.Background(), j); err == nil || !strings.Contains(err.Error(), "batch script") {
		t.Errorf("a job-mode path with a space: %v", err)
	}
}

// waitFor polls cond (bounded) until it holds: the scheduler and the node
// report only through Slurm's state and the files a job writes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s; slurmctld.log:\n%s", what, slurmCluster(t).Log("slurmctld"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jobsNamed lists the ids of the jobs named name that Slurm knows (all
// states, as long as the cluster keeps ended jobs: MinJobAge=600).
func jobsNamed(t testing.TB, name string) []string {
	t.Helper()
	cmd := exec.Command("squeue", "-h", "-t", "all", "-n", name, "-o", "%i")
	cmd.Env = append(os.Environ(), slurmCluster(t).Env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("squeue: %v: %s", err, out)
	}
	return strings.Fields(string(out))
}

// TestSlurmLogStreams: the build's output reaches the log on the shared
// storage while the job runs (the live log page serves that file).
func TestSlurmLogStreams(t *testing.T) {
	r := slurmRunner(t)
	hold := filepath.Join(t.TempDir(), "hold")
	os.WriteFile(hold, nil, 0o644)
	j := newJob(t, "echo 'emerging app-shells/bash'\nwhile [ -e "+hold+" ]; do sleep 0.05; done\necho 'emerged app-shells/bash'\n")
	done := make(chan struct{})
	var res Result
	var err error
	go func() { res, err = r.Run(context.Background(), j); close(done) }()
	waitFor(t, "the first line in the log", func() bool {
		b, _ := os.ReadFile(j.LogPath)
		return strings.Contains(string(b), "emerging app-shells/bash")
	})
	if b, _ := os.ReadFile(j.LogPath); strings.Contains(string(b), "emerged") {
		t.Fatalf("the log has the end of a build that is held:\n%s", b)
	}
	if st := scontrol(t, slurmCluster(t), jobID(t, j)); !strings.Contains(st, "JobState=RUNNING") {
		t.Errorf("the log grew but the job is not running: %s", st)
	}
	os.Remove(hold)
	<-done
	if err != nil || !res.OK() || !strings.Contains(readLog(t, res), "emerged app-shells/bash") {
		t.Errorf("after the hold: %+v, %v", res, err)
	}
}

// TestSlurmRecoverAfterRestart: compatbot stops following a running job
// without cancelling it (ErrDetach: its shutdown), even loses the job id
// it was about to record (a crash right after sbatch); the next Start for
// the same directory finds the same job by its comment instead of
// submitting another, and following it gives its end.
func TestSlurmRecoverAfterRestart(t *testing.T) {
	s := &slurmRunner(t).Slurm
	hold := filepath.Join(t.TempDir(), "hold")
	os.WriteFile(hold, nil, 0o644)
	j := newJob(t, "while [ -e "+hold+" ]; do sleep 0.05; done\necho done\n")
	dir := filepath.Join(filepath.Dir(j.LogPath), "slurm")
	sub := SlurmSubmission{Dir: dir, Name: SlurmJobName(j.Target, "recover"+strconv.FormatInt(time.Now().UnixNano(), 36)), Key: "run-" + filepath.Base(filepath.Dir(filepath.Dir(j.LogPath)))}
	write := func() error {
		b, _ := json.Marshal(SlurmJob{Job: j})
		return os.WriteFile(filepath.Join(dir, "job.json"), b, 0o600)
	}
	id, resumed, err := s.Start(context.Background(), sub, write)
	if err != nil || resumed {
		t.Fatalf("first Start: %s, resumed %v, %v", id, resumed, err)
	}
	waitFor(t, "the job to run", func() bool { st, _ := s.State(context.Background(), id); return st.State == "RUNNING" })

	// The service stops: following ends, the job goes on.
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(ErrDetach)
	if _, err := s.Follow(ctx, id, nil); !errors.Is(err, ErrDetach) {
		t.Fatalf("Follow after a shutdown: %v, want ErrDetach", err)
	}
	if st, _ := s.State(context.Background(), id); st.State != "RUNNING" {
		t.Fatalf("a shutdown stopped the job: %+v", st)
	}

	// The id was never recorded (a crash between sbatch and the write).
	os.Remove(filepath.Join(dir, "jobid"))
	again := func() error { t.Error("Start wrote a new job file for a job already submitted"); return nil }
	id2, resumed, err := s.Start(context.Background(), sub, again)
	if err != nil || !resumed || id2 != id {
		t.Fatalf("Start after the restart: %s, resumed %v, %v; want job %s taken up", id2, resumed, err, id)
	}
	// Now recorded: found without asking Slurm.
	if id3, resumed, err := s.Start(context.Background(), sub, again); err != nil || !resumed || id3 != id {
		t.Fatalf("Start with the id recorded: %s, %v, %v", id3, resumed, err)
	}
	os.Remove(hold)
	st, err := s.Follow(context.Background(), id, nil)
	if err != nil || st.State != "COMPLETED" || st.ExitCode != 0 {
		t.Errorf("the taken-up job ended %+v, %v", st, err)
	}
	if ids := jobsNamed(t, sub.Name); len(ids) != 1 || ids[0] != id {
		t.Errorf("jobs submitted for the build: %v, want only %s", ids, id)
	}
}

package build

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compatbot/compatbot/internal/testslurm"
)

// The Slurm tests run against a real single-node cluster (Debian's
// slurm-wlm and munge, started once for this package by testslurm); the
// batch jobs re-execute this test binary in compatbot's job mode, as a
// compute node runs compatbot. Missing binaries fail the tests.

var (
	clusterOnce sync.Once
	cluster     *testslurm.Cluster
	clusterErr  error
	clusterDir  string
)

func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == "build-job" && os.Args[2] == "--job" {
		if err := RunJobFile(context.Background(), os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "build-job:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if cluster != nil {
		cluster.Stop()
	}
	if clusterDir != "" {
		os.RemoveAll(clusterDir)
	}
	os.Exit(code)
}

func slurmCluster(t *testing.T) *testslurm.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		if clusterDir, clusterErr = os.MkdirTemp("", "compatbot-slurm-"); clusterErr == nil {
			cluster, clusterErr = testslurm.Start(clusterDir)
		}
	})
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	return cluster
}

func slurmRunner(t *testing.T) *SlurmRunner {
	c := slurmCluster(t)
	return &SlurmRunner{JobArgv: []string{os.Args[0], "build-job"}, Partition: "zen4", TimeLimit: "10", Env: c.Env, Poll: 50 * time.Millisecond}
}

func scontrol(t *testing.T, c *testslurm.Cluster, id string) string {
	t.Helper()
	cmd := exec.Command("scontrol", "-o", "show", "job", id)
	cmd.Env = append(os.Environ(), c.Env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scontrol: %v: %s", err, out)
	}
	return string(out)
}

func jobID(t *testing.T, j Job) string {
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
		t.Fatalf("result %+v\n%s", res, cluster.Log("slurmd"))
	}
	if log := readLog(t, res); !strings.Contains(log, "building eessi-2025.06-linux-"+HostArch()+" into "+j.Prefix) {
		t.Errorf("the job's log lacks the build's output:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(j.Prefix, "installed")); err != nil {
		t.Errorf("the job did not install into the prefix: %v", err)
	}
	job := scontrol(t, cluster, jobID(t, j))
	for _, want := range []string{"JobName=" + SlurmJobName(j), "Partition=zen4", "JobState=COMPLETED", "ExitCode=0:0"} {
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
	if job := scontrol(t, cluster, jobID(t, j)); !strings.Contains(job, "JobState=FAILED") {
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
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, serr := os.Stat(started); serr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job never started:\n%s", cluster.Log("slurmctld"))
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	if job := scontrol(t, cluster, jobID(t, j)); !strings.Contains(job, "JobState=CANCELLED") {
		t.Errorf("the Slurm job was not cancelled: %s", job)
	}
	if d := time.Since(t0); d > 30*time.Second {
		t.Errorf("cancelling took %s", d)
	}
}

func TestSlurmRefusesBeforeSubmitting(t *testing.T) {
	j := newJob(t, "true\n")
	j.SetName = "--bad"
	if _, err := (&SlurmRunner{JobArgv: []string{"/usr/bin/compatbot", "build-job"}}).Run(context.Background(), j); err == nil {
		t.Error("a job with an invalid set name was submitted")
	}
	j = newJob(t, "true\n")
	if _, err := (&SlurmRunner{JobArgv: []string{"/usr/bin/compat bot"}}).Run(context.Background(), j); err == nil || !strings.Contains(err.Error(), "batch script") {
		t.Errorf("a job-mode path with a space: %v", err)
	}
}

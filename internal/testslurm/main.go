package testslurm

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
)

// One cluster per test binary: starting slurmctld and slurmd costs seconds,
// and every test of a package can share it.
var (
	sharedOnce sync.Once
	shared     *Cluster
	sharedErr  error
	sharedDir  string
)

// Shared is the test binary's cluster, started on first use. A cluster that
// cannot start fails the test (CI installs the binaries), never skips it.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	sharedOnce.Do(func() {
		if sharedDir, sharedErr = os.MkdirTemp("", "compatbot-slurm-"); sharedErr == nil {
			shared, sharedErr = Start(sharedDir)
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// Main is the TestMain of a package whose tests submit batch jobs that
// re-execute the test binary as compatbot's job mode does ("build-job --job
// FILE"): then it runs runJob, stopped by scancel's SIGTERM, and exits;
// otherwise it runs the tests and stops the shared cluster after them.
func Main(m *testing.M, runJob func(ctx context.Context, jobFile string) error) {
	if len(os.Args) == 4 && os.Args[1] == "build-job" && os.Args[2] == "--job" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := runJob(ctx, os.Args[3])
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "build-job:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

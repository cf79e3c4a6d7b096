package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/compatbot/compatbot/workflow/cluster"
)

func init() {
	register(command{Name: "build-job", Summary: "run one build job file on this node (what a Slurm batch job of compatbot runs)", Run: buildJobCmd})
}

const buildJobUsage = `Usage:
  compatbot build-job --job FILE

compatbot's job mode, what a Slurm batch job of compatbot runs on a compute
node. FILE is <shared>/runs/<id>/slurm/job.json, written by the service on
the storage both share (build.runners.<arch>.slurm.shared_dir): the run of
one target, made here as the service would make it locally. The overlay is
staged on the published tree in node-local scratch (scratch_dir, default
the job's $TMPDIR, else /tmp), the set is built with the local runner (clean
environment, its own process group, the time limit, the sandbox; real
emerge when the service builds with it), the compat tests run on the
result, and the upper layer is packed as an artifact onto the shared
storage, where the service takes it in by digest and verifies it. The log
(runs/<id>/build.log), results and outcome.json go there too. A scancel
(SIGTERM) stops the build and takes the overlay down.

Needs root or fuse-overlayfs (the overlay), bubblewrap for sandbox: true,
root for an EPREFIX mount (real emerge), and the published tree at the
path the service reads it.

Exit status: 0 built and tested, 1 the build or a test failed or the run
could not be made, 2 usage errors.
`

func buildJobCmd(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("build-job", buildJobUsage, stdout, stderr)
	job := fl.String("job", "", "the job `FILE` (JSON, from the Slurm runner)")
	if code, done := parseFlags(fl, args, stdout); done {
		return code
	}
	if *job == "" { // parseFlags refused extra arguments
		fmt.Fprint(stderr, "compatbot build-job: want --job FILE\n")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := cluster.RunJobFile(ctx, *job); err != nil {
		fmt.Fprintf(stderr, "compatbot build-job: %v\n", err)
		return 1
	}
	return 0
}

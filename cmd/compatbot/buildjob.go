package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/compatbot/compatbot/workflow/build"
)

func init() {
	register(command{Name: "build-job", Summary: "run one build job file on this node (what a Slurm batch job of compatbot runs)", Run: buildJobCmd})
}

const buildJobUsage = `Usage:
  compatbot build-job --job FILE

compatbot's job mode, run by the batch jobs of the Slurm runner on a compute
node: reads the build job from FILE (written by the service on storage both
share), runs it with the local runner (clean environment, its own process
group, the time limit, the sandbox) and writes result.json beside FILE for
the service to read. The build's log goes where the job says, on the same
shared storage. A scancel (SIGTERM) stops the build.

Exit status: 0 built, 1 the build failed or could not run, 2 usage errors.
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
	if err := build.RunJobFile(ctx, *job); err != nil {
		fmt.Fprintf(stderr, "compatbot build-job: %v\n", err)
		return 1
	}
	return 0
}

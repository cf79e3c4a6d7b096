package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// SlurmRunner builds each job as one Slurm batch job, as EESSI's build bot
// does on its clusters: the job runs compatbot's own binary in job mode
// (JobArgv, e.g. ["/usr/bin/compatbot", "build-job"]), which reads the job
// from a file on storage shared with the service and runs it with the
// LocalRunner on the compute node (clean environment, process group, time
// limit, sandbox). The build's log and result land on that shared storage,
// so the service streams the log and reads the outcome from there.
//
// The batch script holds nothing but fixed, validated paths: the job's
// argv and everything from the PR travel in the JSON job file, never
// through a shell.
type SlurmRunner struct {
	// JobArgv starts compatbot's job mode; "--job FILE" is appended.
	JobArgv []string
	// Partition, Constraint, Account and TimeLimit go to sbatch as -p,
	// -C, -A and -t when set (per arch in the bot config).
	Partition, Constraint, Account, TimeLimit string
	// Env is added to the environment of sbatch, squeue, scontrol and
	// scancel (e.g. SLURM_CONF).
	Env []string
	// Poll is how often the job's state is read (default 2 s).
	Poll time.Duration
}

// SlurmJob is what a job file holds: the Job, for the job mode to run.
type SlurmJob struct {
	Job Job `json:"job"`
}

// slurmResult is what the job mode writes when the build ended.
type slurmResult struct {
	Result Result `json:"result"`
	Error  string `json:"error,omitempty"`
}

// plainPath is what a path in the batch script may contain.
var plainPath = regexp.MustCompile(`^[A-Za-z0-9_./+-]+$`)

// Run submits job, follows it until it ends and returns its result. A
// cancelled ctx (a new push, a shutdown) cancels the Slurm job.
func (r *SlurmRunner) Run(ctx context.Context, job Job) (Result, error) {
	if err := job.Validate(); err != nil {
		return Result{}, err
	}
	if len(r.JobArgv) == 0 {
		return Result{}, errors.New("build: slurm: JobArgv (compatbot's job mode) is not configured")
	}
	if job.LogPath == "" {
		return Result{}, errors.New("build: slurm: the job has no LogPath on shared storage")
	}
	dir := filepath.Join(filepath.Dir(job.LogPath), "slurm")
	for _, p := range append([]string{dir}, r.JobArgv...) {
		if !plainPath.MatchString(p) {
			return Result{}, fmt.Errorf("build: slurm: %q may not appear in a batch script: want letters, digits and _./+-", p)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, err
	}
	js, err := json.Marshal(SlurmJob{Job: job})
	if err != nil {
		return Result{}, err
	}
	jobFile, resultFile := filepath.Join(dir, "job.json"), filepath.Join(dir, "result.json")
	os.Remove(resultFile)
	if err := os.WriteFile(jobFile, js, 0o600); err != nil {
		return Result{}, err
	}
	script := "#!/bin/sh\nexec '" + strings.Join(r.JobArgv, "' '") + "' --job '" + jobFile + "'\n"
	scriptFile := filepath.Join(dir, "job.sh")
	if err := os.WriteFile(scriptFile, []byte(script), 0o700); err != nil {
		return Result{}, err
	}
	args := []string{"--parsable", "-J", SlurmJobName(job), "-o", filepath.Join(dir, "slurm-%j.out"), "-D", dir}
	for _, o := range []struct{ flag, v string }{{"-p", r.Partition}, {"-C", r.Constraint}, {"-A", r.Account}, {"-t", r.TimeLimit}} {
		if o.v != "" {
			args = append(args, o.flag, o.v)
		}
	}
	start := time.Now()
	out, err := r.slurm(ctx, "sbatch", append(args, scriptFile)...)
	if err != nil {
		return Result{}, fmt.Errorf("build: slurm: sbatch: %w", err)
	}
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
	if _, err := strconv.Atoi(id); err != nil {
		return Result{}, fmt.Errorf("build: slurm: sbatch answered %q, not a job id", out)
	}
	if err := os.WriteFile(filepath.Join(dir, "jobid"), []byte(id+"\n"), 0o644); err != nil {
		return Result{}, err
	}
	res, err := r.follow(ctx, id, resultFile)
	res.Duration = time.Since(start)
	res.LogPath = job.LogPath
	if res.Tail == "" {
		res.Tail, _ = Tail(job.LogPath, TailLines)
	}
	return res, err
}

// SlurmJobName is the job's name in squeue: the target and the PR head's
// commit, so an operator sees what a job builds.
func SlurmJobName(job Job) string {
	sha := filepath.Base(job.WorkDir)
	if len(sha) > 12 {
		sha = sha[:12]
	}
	return fmt.Sprintf("compat-%s-%s-%s-%s", job.Target.Version, job.Target.OS, job.Target.Arch, sha)
}

// terminal are the Slurm job states in which a job has ended.
var terminal = map[string]bool{"COMPLETED": true, "FAILED": true, "CANCELLED": true, "TIMEOUT": true, "NODE_FAIL": true,
	"OUT_OF_MEMORY": true, "PREEMPTED": true, "BOOT_FAIL": true, "DEADLINE": true}

func (r *SlurmRunner) follow(ctx context.Context, id, resultFile string) (Result, error) {
	poll := r.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	cancelled := false
	for {
		st, code, err := r.state(context.WithoutCancel(ctx), id)
		if err != nil {
			return Result{}, err
		}
		if terminal[st] || st == "" {
			res := Result{ExitCode: code, Cancelled: cancelled || st == "CANCELLED", TimedOut: st == "TIMEOUT"}
			if b, err := os.ReadFile(resultFile); err == nil {
				var sr slurmResult
				if err := json.Unmarshal(b, &sr); err == nil {
					if sr.Error != "" {
						return res, fmt.Errorf("build: slurm job %s: %s", id, sr.Error)
					}
					res = sr.Result
					res.Cancelled = res.Cancelled || cancelled
				}
			} else if st == "" {
				return res, fmt.Errorf("build: slurm job %s is gone and left no result", id)
			}
			return res, nil
		}
		select {
		case <-ctx.Done():
			if !cancelled {
				cancelled = true
				if _, err := r.slurm(context.WithoutCancel(ctx), "scancel", id); err != nil {
					return Result{Cancelled: true}, fmt.Errorf("build: slurm: scancel %s: %w", id, err)
				}
			}
		case <-time.After(poll):
		}
	}
}

// state is the job's state and exit code from scontrol ("" when Slurm no
// longer knows the job).
func (r *SlurmRunner) state(ctx context.Context, id string) (string, int, error) {
	out, err := r.slurm(ctx, "scontrol", "-o", "show", "job", id)
	if err != nil {
		if strings.Contains(err.Error(), "Invalid job id") {
			return "", 0, nil
		}
		return "", 0, fmt.Errorf("build: slurm: scontrol show job %s: %w", id, err)
	}
	var st string
	code := 0
	for _, f := range strings.Fields(out) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "JobState":
			st = v
		case "ExitCode":
			c, sig, _ := strings.Cut(v, ":")
			code, _ = strconv.Atoi(c)
			if sig != "0" && sig != "" {
				code = -1
			}
		}
	}
	return st, code, nil
}

func (r *SlurmRunner) slurm(ctx context.Context, name string, args ...string) (string, error) {
	c := exec.CommandContext(ctx, name, args...)
	c.Env = append(os.Environ(), r.Env...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// RunJobFile is compatbot's job mode: it runs the job in file with the
// LocalRunner, here on the compute node, and writes the result beside the
// job file for the service to read.
func RunJobFile(ctx context.Context, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var sj SlurmJob
	if err := json.Unmarshal(b, &sj); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	res, err := (&LocalRunner{}).Run(ctx, sj.Job)
	sr := slurmResult{Result: res}
	if err != nil {
		sr.Error = err.Error()
	}
	out, jerr := json.Marshal(sr)
	if jerr != nil {
		return jerr
	}
	tmp := filepath.Join(filepath.Dir(file), ".result.json.tmp")
	if werr := os.WriteFile(tmp, out, 0o644); werr != nil {
		return werr
	}
	if rerr := os.Rename(tmp, filepath.Join(filepath.Dir(file), "result.json")); rerr != nil {
		return rerr
	}
	if err != nil {
		return err
	}
	if !res.OK() {
		return fmt.Errorf("the build exited %d", res.ExitCode)
	}
	return nil
}

var _ Runner = (*SlurmRunner)(nil)

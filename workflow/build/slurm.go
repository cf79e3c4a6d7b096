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

	"github.com/compatbot/compatbot/sets"
)

// Slurm submits batch jobs that run compatbot's own binary in its job mode
// on a cluster's compute nodes, as EESSI's build bot does, and follows
// them: sbatch to submit, scontrol (then sacct, for a job slurmctld has
// forgotten) to follow, squeue to find a job whose id was not recorded,
// scancel to cancel. What a job does is in a file on
// storage shared with the service (the caller writes it); the batch script
// holds nothing but fixed, validated paths, so nothing from a PR ever
// reaches a shell.
//
// A job outlives the service: its id is recorded in the job's directory,
// so a restarted compatbot follows the job it submitted (or reads what it
// left) instead of submitting it again.
type Slurm struct {
	// JobArgv starts compatbot's job mode on the node, e.g.
	// ["/usr/bin/compatbot", "build-job"]; "--job FILE" is appended.
	JobArgv []string
	// Partition, Constraint, Account and TimeLimit go to sbatch as -p,
	// -C, -A and -t when set (per arch in the bot config).
	Partition, Constraint, Account, TimeLimit string
	// BinDir holds sbatch, squeue, scontrol and scancel ("" = PATH).
	BinDir string
	// Env is added to the environment of the Slurm commands (e.g.
	// SLURM_CONF). The job itself never gets the service's environment
	// (sbatch --export=NONE): its secrets stay on the service.
	Env []string
	// Poll is how often a job's state is read (default 2 s).
	Poll time.Duration
}

// SlurmSubmission is one batch job's place and names.
type SlurmSubmission struct {
	// Dir is the job's directory on the shared storage as the service sees
	// it: job.json (the caller's, for the job mode), job.sh, jobid and
	// the job's output slurm-<id>.out.
	Dir string
	// NodeDir is Dir as the compute nodes see it ("" = the same path).
	NodeDir string
	// Name is the job's name in squeue (SlurmJobName).
	Name string
	// Key is unique to this build (compatbot's run id) and goes into the
	// job's comment: it finds the job again when the service stopped
	// between sbatch and recording the id.
	Key string
}

// SlurmState is what Slurm says of a job.
type SlurmState struct {
	ID string
	// State is Slurm's JobState (PENDING, RUNNING, COMPLETED, FAILED,
	// CANCELLED, TIMEOUT, ...); "" once Slurm no longer knows the job
	// (it ended longer ago than the cluster's MinJobAge).
	State string
	// Reason is why a pending job waits (Resources, Priority, ...).
	Reason string
	// Node is where the job runs or ran.
	Node string
	// ExitCode is the batch script's exit code; -1 when a signal ended it.
	ExitCode int
}

// terminal are the Slurm job states in which a job has ended.
var terminal = map[string]bool{"COMPLETED": true, "FAILED": true, "CANCELLED": true, "TIMEOUT": true, "NODE_FAIL": true,
	"OUT_OF_MEMORY": true, "PREEMPTED": true, "BOOT_FAIL": true, "DEADLINE": true}

// Ended reports whether the job is over.
func (s SlurmState) Ended() bool { return s.State == "" || terminal[s.State] }

// followPatience is how long Follow keeps asking a slurmctld that does
// not answer before it gives the job up.
const followPatience = 5 * time.Minute

// ErrDetach, as the cause of a cancelled context (context.WithCancelCause),
// stops following a batch job without cancelling it: compatbot shuts down,
// the job goes on on its node, and the restarted service takes it up
// again. Any other cancellation (a new push) cancels the job.
var ErrDetach = errors.New("compatbot is shutting down; the batch job goes on")

// plainPath is what a path in the batch script may contain.
var plainPath = regexp.MustCompile(`^[A-Za-z0-9_./+-]+$`)

// Check refuses a configuration that cannot submit anything, before a job
// is written.
func (s *Slurm) Check() error {
	if len(s.JobArgv) == 0 {
		return errors.New("build: slurm: JobArgv (compatbot's job mode) is not configured")
	}
	if !filepath.IsAbs(s.JobArgv[0]) {
		return fmt.Errorf("build: slurm: the job mode's program %q must be an absolute path (the job runs without a PATH of the service)", s.JobArgv[0])
	}
	for _, p := range s.JobArgv {
		if !plainPath.MatchString(p) {
			return fmt.Errorf("build: slurm: %q may not appear in a batch script: want letters, digits and _./+-", p)
		}
	}
	for _, o := range []struct{ name, v string }{{"partition", s.Partition}, {"constraint", s.Constraint}, {"account", s.Account}, {"time limit", s.TimeLimit}} {
		if strings.HasPrefix(o.v, "-") || strings.ContainsAny(o.v, "\x00\n\r") {
			return fmt.Errorf("build: slurm: %s %q is not a value for sbatch", o.name, o.v)
		}
	}
	return nil
}

// Start submits the job of sub, or takes up the one submitted for sub.Dir
// before a restart. write, called only when a new job is submitted, writes
// what the job mode reads (job.json): a job already submitted keeps the
// file it was submitted with. resumed reports a job found rather than
// submitted.
func (s *Slurm) Start(ctx context.Context, sub SlurmSubmission, write func() error) (id string, resumed bool, err error) {
	if err := s.Check(); err != nil {
		return "", false, err
	}
	nodeDir := sub.NodeDir
	if nodeDir == "" {
		nodeDir = sub.Dir
	}
	if !plainPath.MatchString(nodeDir) || !filepath.IsAbs(nodeDir) {
		return "", false, fmt.Errorf("build: slurm: %q may not appear in a batch script: want an absolute path of letters, digits and _./+-", nodeDir)
	}
	if b, err := os.ReadFile(filepath.Join(sub.Dir, "jobid")); err == nil {
		if id := strings.TrimSpace(string(b)); validJobID(id) {
			return id, true, nil
		}
	}
	script := filepath.Join(sub.Dir, "job.sh")
	if _, err := os.Stat(script); err == nil {
		// A submission was under way when the service stopped: the job may
		// exist without its id recorded. Slurm knows it by its comment.
		id, err := s.find(ctx, sub)
		if err != nil {
			return "", false, err
		}
		if id != "" {
			return id, true, s.record(sub.Dir, id)
		}
	}
	if err := os.MkdirAll(sub.Dir, 0o755); err != nil {
		return "", false, err
	}
	if err := write(); err != nil {
		return "", false, err
	}
	// PATH is set because the job starts with Slurm's variables only: the
	// job mode looks up bwrap and fuse-overlayfs there.
	body := "#!/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nexport PATH\nexec '" +
		strings.Join(s.JobArgv, "' '") + "' --job '" + filepath.Join(nodeDir, "job.json") + "'\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		return "", false, err
	}
	args := []string{"--parsable", "--export=NONE", "-J", sub.Name, "--comment", commentKey + sub.Key,
		"-o", filepath.Join(nodeDir, "slurm-%j.out"), "-D", nodeDir}
	for _, o := range []struct{ flag, v string }{{"-p", s.Partition}, {"-C", s.Constraint}, {"-A", s.Account}, {"-t", s.TimeLimit}} {
		if o.v != "" {
			args = append(args, o.flag, o.v)
		}
	}
	// sbatch reads the script here, on the service, and hands it to
	// slurmctld: the path is the service's.
	out, err := s.run(ctx, "sbatch", append(args, script)...)
	if err != nil {
		return "", false, fmt.Errorf("build: slurm: sbatch: %w", err)
	}
	id, _, _ = strings.Cut(strings.TrimSpace(out), ";")
	if !validJobID(id) {
		return "", false, fmt.Errorf("build: slurm: sbatch answered %q, not a job id", out)
	}
	return id, false, s.record(sub.Dir, id)
}

// commentKey marks compatbot's key in a job's comment.
const commentKey = "compatbot-run="

func validJobID(id string) bool {
	_, err := strconv.ParseUint(id, 10, 64)
	return err == nil
}

// record writes the job id atomically, so a reader never sees half of it.
func (s *Slurm) record(dir, id string) error {
	tmp := filepath.Join(dir, ".jobid.tmp")
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "jobid"))
}

// find looks for the job of sub among those Slurm still knows.
func (s *Slurm) find(ctx context.Context, sub SlurmSubmission) (string, error) {
	out, err := s.run(ctx, "squeue", "-h", "-t", "all", "-n", sub.Name, "-o", "%i|%k")
	if err != nil {
		return "", fmt.Errorf("build: slurm: squeue: %w", err)
	}
	for _, l := range strings.Split(out, "\n") {
		id, comment, ok := strings.Cut(strings.TrimSpace(l), "|")
		if ok && comment == commentKey+sub.Key && validJobID(id) {
			return id, nil
		}
	}
	return "", nil
}

// Follow polls the job until it ends, calling changed whenever its state,
// node or pending reason changes. A cancelled ctx cancels the job with
// scancel and waits for it to end, unless the cause is ErrDetach: then
// Follow returns at once with ctx's error and the job goes on.
func (s *Slurm) Follow(ctx context.Context, id string, changed func(SlurmState)) (SlurmState, error) {
	poll := s.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	cancelled := false
	var last SlurmState
	// slurmctld restarts (an upgrade, a failover) are routine and the job
	// goes on meanwhile: only a failure lasting followPatience ends Follow.
	var failing time.Time
	failed := func(err error) error {
		if failing.IsZero() {
			failing = time.Now()
		}
		if time.Since(failing) > followPatience {
			return err
		}
		return nil
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		st, err := s.State(context.WithoutCancel(ctx), id)
		if err != nil {
			if err := failed(err); err != nil {
				return last, err
			}
		} else {
			failing = time.Time{}
			if st != last && changed != nil {
				changed(st)
			}
			last = st
			if st.Ended() {
				return st, nil
			}
		}
		t.Reset(poll)
		if cancelled {
			<-t.C // cancelled already: wait for the end
			continue
		}
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), ErrDetach) {
				return last, context.Cause(ctx)
			}
			if _, err := s.run(context.WithoutCancel(ctx), "scancel", id); err != nil {
				if err := failed(fmt.Errorf("build: slurm: scancel %s: %w", id, err)); err != nil {
					return last, err
				}
				<-t.C // asked again after the next poll
				continue
			}
			cancelled = true
		case <-t.C:
		}
	}
}

// State is what scontrol says of the job. Once slurmctld has forgotten an
// ended job (MinJobAge) it is what sacct says, where the cluster keeps
// accounting; else State is "".
func (s *Slurm) State(ctx context.Context, id string) (SlurmState, error) {
	out, err := s.run(ctx, "scontrol", "-o", "show", "job", id)
	if err != nil {
		if strings.Contains(err.Error(), "Invalid job id") {
			return s.accounted(ctx, id), nil
		}
		return SlurmState{}, fmt.Errorf("build: slurm: scontrol show job %s: %w", id, err)
	}
	st := SlurmState{ID: id}
	for _, f := range strings.Fields(out) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "JobState":
			st.State = v
		case "Reason":
			if v != "None" {
				st.Reason = v
			}
		case "NodeList":
			if v != "(null)" {
				st.Node = v
			}
		case "ExitCode":
			c, sig, _ := strings.Cut(v, ":")
			st.ExitCode, _ = strconv.Atoi(c)
			if sig != "0" && sig != "" {
				st.ExitCode = -1
			}
		}
	}
	return st, nil
}

// accounted is the job's end as sacct records it; State "" when the
// cluster keeps no accounting (sacct fails) or has no record.
func (s *Slurm) accounted(ctx context.Context, id string) SlurmState {
	st := SlurmState{ID: id}
	out, err := s.run(ctx, "sacct", "-n", "-X", "-P", "-j", id, "-o", "State,ExitCode,NodeList")
	if err != nil {
		return st
	}
	f := strings.Split(strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]), "|")
	if len(f) != 3 {
		return st
	}
	// "CANCELLED by 0" names who cancelled.
	state, _, _ := strings.Cut(f[0], " ")
	if !terminal[state] {
		return st
	}
	st.State, st.Node = state, f[2]
	c, sig, _ := strings.Cut(f[1], ":")
	st.ExitCode, _ = strconv.Atoi(c)
	if sig != "0" && sig != "" {
		st.ExitCode = -1
	}
	return st
}

func (s *Slurm) run(ctx context.Context, name string, args ...string) (string, error) {
	if s.BinDir != "" {
		name = filepath.Join(s.BinDir, name)
	}
	c := exec.CommandContext(ctx, name, args...)
	c.Env = append(os.Environ(), s.Env...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// SlurmJobName is a job's name in squeue: the target and the commit it
// builds, so an operator sees what a job is for.
func SlurmJobName(t sets.Target, sha string) string {
	if len(sha) > 12 {
		sha = sha[:12]
	}
	return fmt.Sprintf("compat-%s-%s-%s-%s", t.Version, t.OS, t.Arch, sha)
}

// SlurmRunner runs one build.Job as a batch job: the job mode runs it
// with the LocalRunner on the node (clean environment, process group,
// time limit, sandbox). Every path of the job (the Prefix, the work dir,
// the log) must be on storage the node shares with the service at the
// same path, so it is a runner for a Prefix on shared storage; the server
// runs whole pipeline runs on nodes instead (workflow/cluster), with the
// overlay on the node. The job's files are in <dir of LogPath>/slurm/.
type SlurmRunner struct {
	Slurm
}

// SlurmJob is what the job file of a SlurmRunner holds.
type SlurmJob struct {
	Job Job `json:"job"`
}

// slurmResult is what the job mode writes when the build ended.
type slurmResult struct {
	Result Result `json:"result"`
	Error  string `json:"error,omitempty"`
}

// Run submits job, follows it until it ends and returns its result. A
// cancelled ctx cancels the Slurm job (see Slurm.Follow).
func (r *SlurmRunner) Run(ctx context.Context, job Job) (Result, error) {
	if err := job.Validate(); err != nil {
		return Result{}, err
	}
	dir := filepath.Join(filepath.Dir(job.LogPath), "slurm")
	resultFile := filepath.Join(dir, "result.json")
	start := time.Now()
	id, _, err := r.Start(ctx, SlurmSubmission{Dir: dir, Name: SlurmJobName(job.Target, filepath.Base(job.WorkDir)), Key: dir},
		func() error {
			js, err := json.Marshal(SlurmJob{Job: job})
			if err != nil {
				return err
			}
			os.Remove(resultFile)
			return os.WriteFile(filepath.Join(dir, "job.json"), js, 0o600)
		})
	if err != nil {
		return Result{}, err
	}
	st, err := r.Follow(ctx, id, nil)
	if err != nil {
		return Result{Cancelled: ctx.Err() != nil}, err
	}
	res := Result{ExitCode: st.ExitCode, Cancelled: ctx.Err() != nil || st.State == "CANCELLED", TimedOut: st.State == "TIMEOUT"}
	if b, rerr := os.ReadFile(resultFile); rerr == nil {
		var sr slurmResult
		if err := json.Unmarshal(b, &sr); err == nil {
			if sr.Error != "" {
				return res, fmt.Errorf("build: slurm job %s: %s", id, sr.Error)
			}
			res = sr.Result
			res.Cancelled = res.Cancelled || ctx.Err() != nil
		}
	} else if st.State == "" {
		return res, fmt.Errorf("build: slurm job %s is gone and left no result", id)
	}
	res.Duration = time.Since(start)
	res.LogPath = job.LogPath
	if res.Tail == "" {
		res.Tail, _ = Tail(job.LogPath, TailLines)
	}
	return res, nil
}

// RunJobFile is the job mode of a SlurmRunner's job: it runs the job in
// file with the LocalRunner, here on the compute node, and writes the
// result beside the job file for the service to read.
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
	if werr := WriteJSONFile(filepath.Join(filepath.Dir(file), "result.json"), sr, 0o644); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	if !res.OK() {
		return fmt.Errorf("the build exited %d", res.ExitCode)
	}
	return nil
}

// WriteJSONFile writes v as JSON to path, with mode perm, through a
// temporary file and a rename, so no reader on the shared storage (the
// node, the service) sees half a file.
func WriteJSONFile(path string, v any, perm os.FileMode) error {
	out, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	os.Remove(tmp)
	if err := os.WriteFile(tmp, out, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

var _ Runner = (*SlurmRunner)(nil)

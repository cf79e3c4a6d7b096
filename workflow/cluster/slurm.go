package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/report"
)

// Slurm runs each pipeline run as one Slurm batch job on a compute node
// (a pipeline.Remote). The job's name carries the target and the commit
// (build.SlurmJobName); partition, constraint, account and time limit come
// from the arch's config. The service follows the job, reports it on the
// check run (queued with its job id and pending reason, then building on
// its node, with the live log, which the node writes to the shared
// storage), and takes the artifact into its own store by digest, verified.
//
// A new push cancels the job (scancel); a shutdown of compatbot leaves it
// running (build.ErrDetach), and Execute with the same run id after the
// restart follows it, or reads what it left if it ended meanwhile: the
// job id is recorded in runs/<id>/slurm/jobid, and a job submitted just
// before a crash is found by its comment. A run is never submitted twice.
type Slurm struct {
	build.Slurm
	// SharedDir is the storage shared with the compute nodes, as the
	// service sees it: runs/<id>/ (job file, log, results, outcome, the
	// node's artifact), checkouts/ and distfiles/ are there. Absolute.
	SharedDir string
	// NodeSharedDir is SharedDir as the nodes see it ("" = the same path).
	NodeSharedDir string
	// ScratchDir is a directory on the node's local disk for the overlay
	// ("" = the node's temporary directory): an overlay's upper layer
	// cannot be on NFS or Lustre.
	ScratchDir string
	// Portage, when set, has the nodes build with real emerge.
	Portage *Portage
}

var _ pipeline.Remote = (*Slurm)(nil)

// DataDir implements pipeline.Remote: the shared storage.
func (s *Slurm) DataDir() string { return s.SharedDir }

// Execute implements pipeline.Remote.
func (s *Slurm) Execute(ctx context.Context, p pipeline.Params) (pipeline.Outcome, error) {
	if !build.SafeName(p.ID) {
		return pipeline.Outcome{}, fmt.Errorf("cluster: invalid run id %q", p.ID)
	}
	if p.Lower == nil || p.Store == nil {
		return pipeline.Outcome{}, errors.New("cluster: Lower and Store are required")
	}
	if !filepath.IsAbs(s.SharedDir) || filepath.Clean(p.DataDir) != filepath.Clean(s.SharedDir) {
		return pipeline.Outcome{}, fmt.Errorf("cluster: the run's data dir %s is not the shared storage %s", p.DataDir, s.SharedDir)
	}
	runDir := filepath.Join(s.SharedDir, "runs", p.ID)
	dir := filepath.Join(runDir, "slurm")
	x := &execution{ctx: ctx, s: s, p: p, dir: dir, out: pipeline.Outcome{RunDir: runDir, Check: report.Check{Name: pipeline.CheckName(p.Target)}}}
	// A run that ended while the service was away left its outcome; Slurm
	// may know why it ended (its time limit, an operator's scancel).
	if _, err := os.Stat(filepath.Join(dir, outcomeFile)); err == nil {
		var st build.SlurmState
		if id := x.jobID(); id != "" {
			st, _ = s.State(ctx, id)
		}
		return x.collect(ctx, st), nil
	}
	x.progress("Queued", "Waiting for the cluster.")
	nodeDir := ""
	if s.NodeSharedDir != "" {
		nodeDir = filepath.Join(s.NodeSharedDir, "runs", p.ID, "slurm")
	}
	id, _, err := s.Start(ctx, build.SlurmSubmission{Dir: dir, NodeDir: nodeDir, Name: build.SlurmJobName(p.Target, p.HeadSHA), Key: p.ID}, x.writeJob)
	if err != nil {
		if ctx.Err() != nil {
			return x.cancelled(ctx, ""), nil
		}
		x.finish(report.Failure, "The build could not be submitted to Slurm", err.Error())
		return x.out, nil
	}
	x.id = id
	st, err := s.Follow(ctx, id, x.changed)
	if errors.Is(err, build.ErrDetach) {
		x.finish(report.Cancelled, "Cancelled: "+err.Error(), "")
		return x.out, nil
	}
	if err != nil {
		x.finish(report.Failure, fmt.Sprintf("Cannot follow Slurm job %s", id), err.Error())
		return x.out, nil
	}
	if ctx.Err() != nil {
		return x.cancelled(ctx, id), nil
	}
	return x.collect(ctx, st), nil
}

// execution is one Execute.
type execution struct {
	ctx context.Context
	s   *Slurm
	p   pipeline.Params
	dir string // runs/<id>/slurm on the service
	id  string
	out pipeline.Outcome
}

func (x *execution) progress(title, summary string) {
	if x.p.Progress != nil {
		if x.p.LogURL != "" && title != "Queued" {
			summary += " [Live log](" + x.p.LogURL + ")"
		}
		x.p.Progress(report.Check{Name: x.out.Check.Name, Title: title, Summary: summary, DetailsURL: x.p.LogURL})
	}
}

func (x *execution) finish(c report.Conclusion, title, summary string) {
	x.out.Check.Conclusion, x.out.Check.Title, x.out.Check.DetailsURL = c, title, x.p.LogURL
	if summary != "" {
		x.out.Check.Summary = summary
	}
}

// writeJob writes the job file: only for a job about to be submitted, so
// the published tree is resolved (and its lineage recorded by the caller's
// Lower) once per job.
func (x *execution) writeJob() error {
	p, s := x.p, x.s
	r := &Run{ID: p.ID, Target: p.Target, SetName: p.SetName, SetPath: p.SetPath, Mask: p.Mask, Unmask: p.Unmask, ExtraSets: p.ExtraSets,
		HeadSHA: p.HeadSHA, Build: p.Build, Tests: p.Tests, LogURL: p.LogURL, Scratch: s.ScratchDir, Portage: s.Portage}
	var err error
	for _, f := range []struct {
		dst *string
		src string
	}{{&r.SetFile, p.SetFile}, {&r.WorkDir, p.WorkDir}, {&r.Build.DistDir, p.Build.DistDir}} {
		if *f.dst, err = relTo(s.SharedDir, f.src); err != nil {
			return err
		}
	}
	lower, rev, err := p.Lower.Current(x.ctx, p.Target)
	if err != nil {
		return fmt.Errorf("the published tree: %w", err)
	}
	if !isEmptyDir(lower) {
		r.Lower = lower
	}
	r.Revision = rev
	os.Remove(filepath.Join(x.dir, outcomeFile))
	// Only for the service's account: the build's env is in it.
	return build.WriteJSONFile(filepath.Join(x.dir, jobFile), Job{Run: r}, 0o600)
}

// changed reports the job's progress on the check run.
func (x *execution) changed(st build.SlurmState) {
	where := ""
	if x.s.Partition != "" {
		where = " in partition " + x.s.Partition
	}
	switch st.State {
	case "PENDING":
		why := ""
		if st.Reason != "" {
			why = " (" + st.Reason + ")"
		}
		x.progress("Queued in Slurm: job "+st.ID, fmt.Sprintf("Slurm job %s waits for a node%s%s.", st.ID, where, why))
	case "RUNNING":
		x.progress("Building "+x.p.Target.String(), fmt.Sprintf("Building `%s` for %s on %s (Slurm job %s%s).", x.p.SetName, x.p.Target, st.Node, st.ID, where))
	}
}

// cancelled is the outcome of a run stopped by ctx (a new push).
func (x *execution) cancelled(ctx context.Context, id string) pipeline.Outcome {
	summary := "The build was stopped before it finished; nothing was kept."
	if id != "" {
		summary = fmt.Sprintf("Slurm job %s was cancelled (scancel) before it finished; nothing was kept.", id)
	}
	x.finish(report.Cancelled, "Cancelled: "+context.Cause(ctx).Error(), summary)
	x.out.Build.Cancelled = true
	x.logText()
	return x.out
}

// collect turns what the ended job left into the outcome: the node's
// outcome with the artifact taken into the service's store, or, when the
// job left none, why.
func (x *execution) collect(ctx context.Context, st build.SlurmState) pipeline.Outcome {
	var no nodeOutcome
	b, err := os.ReadFile(filepath.Join(x.dir, outcomeFile))
	if err == nil {
		err = json.Unmarshal(b, &no)
	}
	if err != nil {
		x.noOutcome(st, err)
		return x.out
	}
	x.out.Check, x.out.Build, x.out.Tests, x.out.BaseRevision, x.out.Info = no.Check, no.Build, no.Tests, no.BaseRevision, no.Info
	x.out.Check.Name = pipeline.CheckName(x.p.Target)
	// Slurm stopped the job (its time limit, an operator's scancel): the
	// node saw only a SIGTERM; the scheduler knows why.
	switch {
	case st.State == "TIMEOUT":
		x.out.Check.Conclusion, x.out.Check.Title, x.out.Build.TimedOut = report.TimedOut, x.timeLimitTitle(), true
	case st.State == "CANCELLED" && x.out.Check.Conclusion == report.Cancelled:
		x.out.Check.Title = fmt.Sprintf("Cancelled: Slurm job %s was cancelled outside compatbot", x.jobID())
	}
	x.out.Build.LogPath = filepath.Join(x.out.RunDir, "build.log")
	if no.Digest != "" {
		src := runStore(x.s.SharedDir, x.p.ID)
		art, err := x.p.Store.Import(ctx, src, no.Digest)
		if err != nil {
			x.out.Tests = no.Tests
			x.finish(report.Failure, "The node's artifact does not verify", fmt.Sprintf("The artifact `%s` the build left on the shared storage could not be taken in: %v", no.Digest, err))
			return x.out
		}
		x.out.Artifact = &art
		// Taken in and verified: the shared storage's copy is no longer
		// needed.
		os.RemoveAll(src.Dir)
	}
	if id := x.jobID(); id != "" {
		host := no.Host
		if host == "" {
			host = st.Node
		}
		x.out.Check.Summary += fmt.Sprintf("\n\nBuilt by Slurm job %s on %s.\n", id, host)
	}
	return x.out
}

// noOutcome describes a job that ended without writing its outcome: the
// scheduler's view (time limit, node failure, out of memory) and the end
// of its output.
func (x *execution) noOutcome(st build.SlurmState, readErr error) {
	id := x.jobID()
	state := st.State
	if state == "" {
		state = "and was forgotten by Slurm"
	}
	conc, title := report.Failure, fmt.Sprintf("Slurm job %s ended %s without a result", id, state)
	switch st.State {
	case "TIMEOUT":
		conc, title = report.TimedOut, x.timeLimitTitle()
	case "CANCELLED":
		conc, title = report.Cancelled, fmt.Sprintf("Slurm job %s was cancelled outside compatbot", id)
	}
	summary := fmt.Sprintf("The batch job ended (state %s, exit code %d, node %s) and left no outcome on the shared storage (%v). Nothing was kept.", st.State, st.ExitCode, st.Node, readErr)
	x.finish(conc, title, summary)
	x.out.Build = build.Result{ExitCode: st.ExitCode, TimedOut: st.State == "TIMEOUT", LogPath: filepath.Join(x.out.RunDir, "build.log")}
	if tail, err := build.Tail(filepath.Join(x.dir, "slurm-"+id+".out"), 20); err == nil && tail != "" {
		x.out.Check.Text += "### Batch job output (last lines)\n\n```\n" + strings.ReplaceAll(tail, "```", "'''") + "\n```\n"
	}
	x.logText()
}

func (x *execution) timeLimitTitle() string {
	title := fmt.Sprintf("Slurm job %s hit its time limit", x.jobID())
	if x.s.TimeLimit != "" {
		title += " (" + x.s.TimeLimit + ")"
	}
	return title
}

func (x *execution) logText() {
	if tail, err := build.Tail(filepath.Join(x.out.RunDir, "build.log"), build.TailLines); err == nil && tail != "" {
		x.out.Build.Tail = tail
		x.out.Check.Text += "### Build log (last lines)\n\n```\n" + strings.ReplaceAll(tail, "```", "'''") + "\n```\n"
	}
}

// jobID is the recorded job id ("" when none).
func (x *execution) jobID() string {
	if x.id != "" {
		return x.id
	}
	b, _ := os.ReadFile(filepath.Join(x.dir, "jobid"))
	return strings.TrimSpace(string(b))
}

// Check refuses, before the service starts, a configuration that could
// not submit or collect anything: the job mode's path, the shared storage
// (it must exist here: a directory created on the service's own disk
// would be seen by no node) and sbatch.
func (s *Slurm) Check() error {
	if err := s.Slurm.Check(); err != nil {
		return err
	}
	if !filepath.IsAbs(s.SharedDir) {
		return fmt.Errorf("cluster: the shared storage %q must be an absolute path", s.SharedDir)
	}
	if st, err := os.Stat(s.SharedDir); err != nil || !st.IsDir() {
		return fmt.Errorf("cluster: the shared storage %s is not a directory here (%v): mount the storage shared with the compute nodes there", s.SharedDir, err)
	}
	sbatch := "sbatch"
	if s.BinDir != "" {
		sbatch = filepath.Join(s.BinDir, sbatch)
	}
	if _, err := exec.LookPath(sbatch); err != nil {
		return fmt.Errorf("cluster: %v (install Slurm's client commands, or set bin_dir)", err)
	}
	return nil
}

// Package cluster builds on a cluster's compute nodes through Slurm, as
// EESSI builds every arch on nodes of that arch: one pipeline run of a
// target (stage the overlay on the published tree, build, run the compat
// tests, pack the upper layer as an artifact) is one batch job that runs
// compatbot's own binary in its job mode (`compatbot build-job`) on a
// node. The node needs compatbot, the published tree (the CVMFS
// repository, or the local backend's directory on shared storage) and the
// storage it shares with the service; everything the run needs travels
// in a job file on that storage, with its paths relative to it, and the
// artifact comes back the same way, taken in by digest and verified.
//
// Slurm is the service's side (a pipeline.Remote); RunJobFile the node's.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/compattest"
	"github.com/compatbot/compatbot/workflow/mirror"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/portage"
	"github.com/compatbot/compatbot/workflow/report"
)

// Job is what a job file holds: one pipeline run.
type Job struct {
	Run *Run `json:"run"`
}

// Run is a pipeline.Params that can travel: the paths on the shared
// storage (the checkout, the set file, DISTDIR) are relative to its root,
// so the nodes may mount it elsewhere than the service; the others (the
// published tree, Portage's) are absolute paths the nodes see as the
// service does.
type Run struct {
	ID        string      `json:"id"`
	Target    sets.Target `json:"target"`
	SetName   string      `json:"set_name"`
	SetFile   string      `json:"set_file"` // relative
	SetPath   string      `json:"set_path"`
	Mask      []string    `json:"mask,omitempty"`
	Unmask    []string    `json:"unmask,omitempty"`
	ExtraSets []string    `json:"extra_sets,omitempty"`
	WorkDir   string      `json:"work_dir"` // relative
	HeadSHA   string      `json:"head_sha"`
	// Build.DistDir is relative ("" when the build has none: Portage's
	// own, through the mirror).
	Build pipeline.BuildConfig `json:"build"`
	Tests pipeline.TestConfig  `json:"tests"`
	// Lower is the published tree the build starts from, as the node sees
	// it; "" for a target never published (the node uses an empty
	// directory). Revision is its revision, read by the service.
	Lower    string `json:"lower"`
	Revision string `json:"revision"`
	LogURL   string `json:"log_url"`
	// Scratch is a node-local directory for the overlay ("" = the node's
	// temporary directory).
	Scratch string `json:"scratch,omitempty"`
	// Portage, when set, builds with real emerge.
	Portage *Portage `json:"portage,omitempty"`
}

// Portage is how a node builds with real emerge (workflow/portage): the
// Portage release, the ebuild repositories and the profile of Config, and
// the mirror, all at paths the nodes see as the service does.
type Portage struct {
	Config portage.Config `json:"config"`
	// MirrorDir is compatbot's distfiles mirror (mirror.Mirror.Dir).
	MirrorDir string `json:"mirror_dir"`
	// Distfiles is where sources missing from the mirror come from.
	Distfiles string `json:"distfiles,omitempty"`
}

// nodeOutcome is what the job mode writes when the run ended: the
// pipeline's outcome, with the artifact as a digest in the run's store on
// the shared storage.
type nodeOutcome struct {
	Check        report.Check        `json:"check"`
	Build        build.Result        `json:"build"`
	Tests        *compattest.Result  `json:"tests,omitempty"`
	Digest       string              `json:"digest,omitempty"`
	BaseRevision string              `json:"base_revision"`
	Info         *pipeline.BuildInfo `json:"info,omitempty"`
	Host         string              `json:"host"`
	// Error is a run the node could not make at all.
	Error string `json:"error,omitempty"`
}

// File names in a run's Slurm directory, runs/<id>/slurm/.
const (
	jobFile     = "job.json"
	outcomeFile = "outcome.json"
)

// runStore is where the node puts a run's artifact, on the shared storage.
func runStore(root, id string) *artifact.Store {
	return &artifact.Store{Dir: filepath.Join(root, "runs", id, "artifacts")}
}

// RunJobFile is compatbot's job mode (`compatbot build-job --job FILE`),
// what a batch job runs on the node. A run's job file is
// <shared>/runs/<id>/slurm/job.json: the run is made here with the local
// runner (or real emerge), its overlay in node-local scratch, its log,
// results and artifact on the shared storage, and outcome.json is written
// beside the job file. A job file of a build.SlurmRunner (one build
// command, {"job": ...}) is run by build.RunJobFile.
func RunJobFile(ctx context.Context, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if j.Run == nil {
		return build.RunJobFile(ctx, file)
	}
	file, err = filepath.Abs(file)
	if err != nil {
		return err
	}
	dir := filepath.Dir(file)
	out := runOnNode(ctx, j.Run, file)
	out.Host, _ = os.Hostname()
	if err := build.WriteJSONFile(filepath.Join(dir, outcomeFile), out, 0o644); err != nil {
		return err
	}
	switch {
	case out.Error != "":
		return errors.New(out.Error)
	case out.Check.Conclusion != report.Success:
		return fmt.Errorf("%s: %s", out.Check.Conclusion, out.Check.Title)
	}
	return nil
}

// runOnNode makes the run; every way it ends is in the outcome.
func runOnNode(ctx context.Context, r *Run, file string) nodeOutcome {
	fail := func(err error) nodeOutcome {
		return nodeOutcome{Error: err.Error(), Check: report.Check{Name: pipeline.CheckName(r.Target), Conclusion: report.Failure,
			Title: "The build could not start on the node", Summary: err.Error()}}
	}
	// The job file is <root>/runs/<id>/slurm/job.json: the root is the
	// shared storage as this node sees it.
	slurmDir := filepath.Dir(file)
	runDir := filepath.Dir(slurmDir)
	root := filepath.Dir(filepath.Dir(runDir))
	if !build.SafeName(r.ID) || filepath.Base(runDir) != r.ID || filepath.Base(filepath.Dir(runDir)) != "runs" || filepath.Base(slurmDir) != "slurm" {
		return fail(fmt.Errorf("job file %s is not <shared>/runs/%s/slurm/%s", file, r.ID, jobFile))
	}
	rel := func(p string) (string, error) {
		if p == "" {
			return "", nil
		}
		if !filepath.IsLocal(p) {
			return "", fmt.Errorf("job path %q is not inside the shared storage", p)
		}
		return filepath.Join(root, p), nil
	}
	var err error
	p := pipeline.Params{ID: r.ID, DataDir: root, Target: r.Target, SetName: r.SetName, SetPath: r.SetPath,
		Mask: r.Mask, Unmask: r.Unmask, ExtraSets: r.ExtraSets, HeadSHA: r.HeadSHA, Build: r.Build, Tests: r.Tests, LogURL: r.LogURL,
		Store: runStore(root, r.ID)}
	for _, f := range []*string{&r.SetFile, &r.WorkDir, &r.Build.DistDir} {
		if *f, err = rel(*f); err != nil {
			return fail(err)
		}
	}
	p.SetFile, p.WorkDir, p.Build.DistDir = r.SetFile, r.WorkDir, r.Build.DistDir
	if p.Build.DistDir != "" {
		if err := os.MkdirAll(p.Build.DistDir, 0o755); err != nil {
			return fail(err)
		}
	}
	scratch := r.Scratch
	if scratch == "" {
		scratch = os.TempDir()
	}
	p.ScratchDir = filepath.Join(scratch, "compatbot-"+r.ID)
	lower := r.Lower
	if lower == "" {
		// Never published: an empty tree of this node's own, never written.
		lower = filepath.Join(scratch, "compatbot-empty-lower")
		if err := os.MkdirAll(lower, 0o755); err != nil {
			return fail(err)
		}
	} else if st, err := os.Stat(lower); err != nil || !st.IsDir() {
		return fail(fmt.Errorf("the published tree %s is not a directory on this node (%v): a node must see the test target's published tree at the path the service does (its CVMFS repository, or the local backend's base_dir on shared storage)", lower, err))
	}
	p.Lower = fixedLower{dir: lower, revision: r.Revision}
	var portageWork string
	if p.Runner, portageWork, err = nodeRunner(r, scratch); err != nil {
		return fail(err)
	}
	if portageWork != "" {
		defer os.RemoveAll(portageWork)
	}
	res, err := pipeline.Run(ctx, p)
	if err != nil {
		return fail(err)
	}
	out := nodeOutcome{Check: res.Check, Build: res.Build, Tests: res.Tests, BaseRevision: res.BaseRevision, Info: res.Info}
	if res.Artifact != nil {
		out.Digest = res.Artifact.Digest
	}
	return out
}

// nodeRunner is the build runner on the node: the local runner, inside
// real emerge's when the service builds with Portage; work is Portage's
// scratch on the node, removed after the run.
func nodeRunner(r *Run, scratch string) (_ build.Runner, work string, _ error) {
	local := &build.LocalRunner{}
	if r.Portage == nil {
		return local, "", nil
	}
	c := r.Portage.Config
	paths := []string{c.Release.Dir, c.Profile, r.Portage.MirrorDir}
	for _, repo := range c.Repos {
		paths = append(paths, repo.Dir)
	}
	for _, p := range paths {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return nil, "", fmt.Errorf("real emerge on this node needs %s at the path the service has it: %v (put Portage, the ebuild repositories and the mirror on storage shared with the nodes)", p, err)
		}
	}
	if c.WorkDir == "" {
		// Portage's build dirs on the node's local disk, not the shared
		// storage.
		c.WorkDir = filepath.Join(scratch, "compatbot-"+r.ID+"-portage")
		work = c.WorkDir
	}
	pr := &portage.Runner{Inner: local, Config: c, Distfiles: r.Portage.Distfiles}
	if r.Portage.MirrorDir != "" {
		pr.Mirror = &mirror.Mirror{Dir: r.Portage.MirrorDir}
	}
	return pr, work, nil
}

// fixedLower is the published tree the service resolved, as the node
// sees it.
type fixedLower struct{ dir, revision string }

func (l fixedLower) Current(ctx context.Context, t sets.Target) (string, string, error) {
	return l.dir, l.revision, nil
}

// relTo is p relative to root, refusing a path outside it.
func relTo(root, p string) (string, error) {
	if p == "" {
		return "", nil
	}
	r, err := filepath.Rel(root, p)
	if err != nil || !filepath.IsLocal(r) {
		return "", fmt.Errorf("cluster: %s is not on the shared storage %s", p, root)
	}
	return r, nil
}

// isEmptyDir reports a directory with no entries (an unpublished target's
// stand-in, which the node makes for itself).
func isEmptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	return len(names) == 0 && errors.Is(err, io.EOF)
}

// Package pipeline runs one target of a PR end to end: stage an overlay on
// the published tree, build the proposed set into it, test the result,
// record how it was made, keep the upper layer as a content-addressed
// artifact, and describe all of it as one check run. Nothing here panics or
// returns early without a check: every way a run can end (failure, time
// limit, cancellation by a new push, a full disk) becomes a conclusion.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/compattest"
	"github.com/compatbot/compatbot/workflow/overlay"
	"github.com/compatbot/compatbot/workflow/portage"
	"github.com/compatbot/compatbot/workflow/report"
)

// Lower gives the current published tree of a target: the read-only lower
// layer of its build. The publishing backend implements it.
type Lower interface {
	Current(ctx context.Context, t sets.Target) (dir, revision string, err error)
}

// DirLower serves published trees from plain directories
// Root/<version>/<os>-<arch>, for local builds and tests. A missing
// directory is created empty: the first build of a new version starts
// from nothing. The revision is the content of .compatbot/revision, or
// "none".
type DirLower struct{ Root string }

// Current implements Lower.
func (d DirLower) Current(ctx context.Context, t sets.Target) (string, string, error) {
	for _, f := range []string{t.Version, t.OS, t.Arch} {
		if !build.SafeName(f) {
			return "", "", fmt.Errorf("pipeline: invalid target %q", t)
		}
	}
	dir := filepath.Join(d.Root, t.Version, t.OS+"-"+t.Arch)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("pipeline: lower layer: %w", err)
	}
	rev := "none"
	if b, err := os.ReadFile(filepath.Join(dir, ".compatbot", "revision")); err == nil {
		rev = strings.TrimSpace(string(b))
	}
	return dir, rev, nil
}

// Store keeps artifacts; *artifact.Store implements it.
type Store interface {
	Put(ctx context.Context, upperDir string, meta map[string]string) (artifact.Artifact, error)
	// Import takes in the artifact digest that a build elsewhere (a
	// cluster node) put into the store src, verified against its digest.
	Import(ctx context.Context, src *artifact.Store, digest string) (artifact.Artifact, error)
}

// Remote runs whole runs away from the service, on a node of the run's
// arch (workflow/cluster: a Slurm batch job). The node stages the overlay,
// builds, tests and packs the artifact; the service gets the outcome and
// the artifact, taken into Params.Store by digest and verified.
type Remote interface {
	// Execute runs p there and waits for its outcome, like Run. Called
	// again with the same p.ID after compatbot restarted, it takes up the
	// run it started (never runs it twice). A ctx cancelled with cause
	// build.ErrDetach leaves the run going on its node.
	Execute(ctx context.Context, p Params) (Outcome, error)
	// DataDir is where p.DataDir, p.WorkDir, p.SetFile and p.Build.DistDir
	// must be: storage shared with the nodes.
	DataDir() string
}

// BuildConfig is the bot config's build: section.
type BuildConfig struct {
	Command []string
	Env     map[string]string
	Timeout time.Duration
	Sandbox bool
	DistDir string
	// MountAt is the EPREFIX: the path the target is published at, where
	// the build sees the overlay (in its own mount namespace), as a
	// template of {{.Version}}, {{.OS}} and {{.Arch}} (e.g.
	// portage.DefaultEPrefix). "" builds at the overlay's scratch mount
	// point.
	MountAt string
	// KeepOut are paths relative to the Prefix that the build writes but
	// the artifact must not contain (portage.KeptOut: logs, caches,
	// scratch dirs); they are removed from the upper layer after
	// unmounting, so the published version shows through.
	KeepOut []string
}

// TestConfig says what compattest checks.
type TestConfig struct {
	Tools           []compattest.Tool // nil: compattest.DefaultTools()
	Extra           [][]string        // sets.Config.Tests
	AllowLibcUpdate bool
	Timeout         time.Duration
}

// Params is one target's run.
type Params struct {
	// ID names the run; scratch lives under DataDir/runs/<ID>/.
	ID      string
	DataDir string
	Target  sets.Target
	// SetName is the set's name for Portage; SetFile the absolute path of
	// the proposed set file; SetPath its path in the repository (for
	// annotations).
	SetName, SetFile, SetPath string
	// Use goes to the build job (build.Job), as package.use lines.
	Use []string
	// Mask, Unmask, ExtraSets and Unmerge go to the build job (build.Job).
	Mask, Unmask, ExtraSets, Unmerge []string
	// WorkDir is the checkout of the PR head; HeadSHA its commit.
	WorkDir, HeadSHA string
	Build            BuildConfig
	Tests            TestConfig
	Runner           build.Runner
	Lower            Lower
	Store            Store
	// LogURL links the live log from the in-progress check run.
	LogURL string
	// Progress receives the queued and in-progress states of the check
	// (Conclusion "" until completed); nil to ignore.
	Progress func(report.Check)
	// KeepScratch keeps the overlay's directories after the run.
	KeepScratch bool
	// ScratchDir holds the overlay's upper, work and mount directories
	// ("" = RunDir/overlay). A cluster node puts them on its local disk:
	// an overlay's upper layer cannot be on NFS.
	ScratchDir string
}

// BuildInfo is the reproducibility record written into every artifact at
// .compatbot/build-info.json.
type BuildInfo struct {
	Target       sets.Target `json:"target"`
	BaseRevision string      `json:"base_revision"`
	HeadSHA      string      `json:"head_sha"`
	Set          string      `json:"set"`
	SetPath      string      `json:"set_path"`
	Command      []string    `json:"command"`
	Installed    []string    `json:"installed"` // cat/pkg-ver::repo
	Started      time.Time   `json:"started"`
	Finished     time.Time   `json:"finished"`
	Host         string      `json:"host"`
	Arch         string      `json:"host_arch"`
	// EPrefix is the path the Prefix was built for.
	EPrefix string `json:"eprefix"`
}

// BuildInfoPath is where BuildInfo lands inside the artifact.
const BuildInfoPath = ".compatbot/build-info.json"

// Outcome is what a run produced.
type Outcome struct {
	Check        report.Check
	Build        build.Result
	Tests        *compattest.Result // nil when the build did not succeed
	Artifact     *artifact.Artifact // nil unless build and tests passed
	BaseRevision string
	RunDir       string
	Info         *BuildInfo
}

// CheckName is the check run's name for a target.
func CheckName(t sets.Target) string { return "compat " + t.Version + " " + t.OS + "-" + t.Arch }

// Run runs one target. The error is only for a misuse of the API (missing
// Runner, Lower or Store, an invalid ID); everything that can go wrong in
// a run is the Outcome's check conclusion.
func Run(ctx context.Context, p Params) (Outcome, error) {
	if p.Runner == nil || p.Lower == nil || p.Store == nil {
		return Outcome{}, errors.New("pipeline: Runner, Lower and Store are required")
	}
	if !build.SafeName(p.ID) {
		return Outcome{}, fmt.Errorf("pipeline: invalid run id %q", p.ID)
	}
	if !filepath.IsAbs(p.DataDir) {
		return Outcome{}, fmt.Errorf("pipeline: DataDir must be absolute, got %q", p.DataDir)
	}
	r := &run{p: p, out: Outcome{RunDir: filepath.Join(p.DataDir, "runs", p.ID)}, ctx: ctx}
	r.out.Check = report.Check{Name: CheckName(p.Target)}
	r.progress("Queued", "Waiting for a build slot.", "")
	r.execute(ctx)
	return r.out, nil
}

type run struct {
	p   Params
	out Outcome
	ctx context.Context
}

func (r *run) progress(title, summary, url string) {
	if r.p.Progress != nil {
		r.p.Progress(report.Check{Name: r.out.Check.Name, Title: title, Summary: summary, DetailsURL: url})
	}
}

// finish completes the check.
func (r *run) finish(c report.Conclusion, title, summary string) {
	r.out.Check.Conclusion, r.out.Check.Title = c, title
	if summary != "" {
		r.out.Check.Summary = summary
	}
	r.out.Check.DetailsURL = r.p.LogURL
}

func (r *run) execute(ctx context.Context) {
	p := r.p
	if err := os.MkdirAll(r.out.RunDir, 0o755); err != nil {
		r.fail("Cannot create the run directory", err)
		return
	}
	lowerDir, rev, err := p.Lower.Current(ctx, p.Target)
	if err != nil {
		r.fail("Cannot read the published tree", err)
		return
	}
	r.out.BaseRevision = rev
	scratch := p.ScratchDir
	if scratch == "" {
		scratch = filepath.Join(r.out.RunDir, "overlay")
	}
	m, err := overlay.Stage(ctx, lowerDir, scratch)
	if err != nil {
		r.fail("Cannot stage the overlay", err)
		r.clean(scratch)
		return
	}
	defer func() {
		_ = m.Unmount()
		r.clean(scratch)
	}()
	if !m.Visible() {
		r.fail("Cannot test the build", fmt.Errorf("overlay method %s keeps the mount inside a namespace; the pipeline needs root (kernel overlayfs) or fuse-overlayfs", m.Method()))
		return
	}

	msg := fmt.Sprintf("Building `%s` for %s (overlay: %s).", p.SetName, p.Target, m.Method())
	if p.LogURL != "" {
		msg += " [Live log](" + p.LogURL + ")"
	}
	mountAt := ""
	if p.Build.MountAt != "" {
		if mountAt, err = portage.ExpandEPrefix(p.Build.MountAt, p.Target); err != nil {
			r.fail("The build could not start", err)
			return
		}
		msg += fmt.Sprintf(" EPREFIX `%s`.", mountAt)
	}
	r.progress("Building "+p.Target.String(), msg, p.LogURL)
	started := time.Now().UTC()
	res, err := p.Runner.Run(ctx, build.Job{
		Target: p.Target, SetName: p.SetName, SetFile: p.SetFile,
		Use:     p.Use,
		Command: p.Build.Command, Env: p.Build.Env, WorkDir: p.WorkDir,
		Prefix: m.Target(), DistDir: p.Build.DistDir,
		HomeDir: filepath.Join(r.out.RunDir, "home"),
		Timeout: p.Build.Timeout, LogPath: filepath.Join(r.out.RunDir, "build.log"),
		Sandbox: p.Build.Sandbox, MountAt: mountAt, Mask: p.Mask, Unmask: p.Unmask, ExtraSets: p.ExtraSets,
		Unmerge: p.Unmerge,
	})
	r.out.Build = res
	if err != nil {
		r.fail("The build could not start", err)
		return
	}
	switch {
	case res.Cancelled:
		cause := "cancelled"
		if c := context.Cause(ctx); c != nil {
			cause = c.Error()
		}
		r.finish(report.Cancelled, "Cancelled: "+cause, "The build was stopped before it finished; nothing was kept.")
		r.logText()
		return
	case res.TimedOut:
		r.finish(report.TimedOut, fmt.Sprintf("Build timed out after %s", p.Build.Timeout), "The build hit its time limit and was stopped; nothing was kept.")
		r.logText()
		return
	case res.ExitCode != 0:
		r.finish(report.Failure, buildFailureTitle(res, m.Upper()), fmt.Sprintf("The build command exited with code %d. The end of its log is below.", res.ExitCode))
		r.out.Check.Text += packageLogText(res)
		r.logText()
		return
	}

	data, err := os.ReadFile(p.SetFile)
	if err != nil {
		r.fail("Cannot read the set file", err)
		return
	}
	eprefix := mountAt
	if eprefix == "" {
		eprefix = m.Target()
	}
	sf := sets.ParseSetFile(p.SetPath, data)
	tests := compattest.Run(ctx, compattest.Input{
		Target: p.Target, Prefix: m.Target(), Lower: lowerDir, Set: sf,
		Tools: p.Tests.Tools, AllowLibcUpdate: p.Tests.AllowLibcUpdate,
		Tests: p.Tests.Extra, WorkDir: p.WorkDir, Timeout: p.Tests.Timeout,
		Upper: m.Upper(), EPrefix: eprefix,
	})
	r.out.Tests = &tests
	_ = tests.WriteFiles(r.out.RunDir)
	if ctx.Err() != nil {
		r.finish(report.Cancelled, "Cancelled: "+context.Cause(ctx).Error(), "The run was stopped while testing; nothing was kept.")
		return
	}
	if err := m.Unmount(); err != nil {
		r.fail("Cannot unmount the overlay", err)
		return
	}
	if _, err := portage.Scrub(m.Upper(), p.Build.KeepOut); err != nil {
		r.fail("Cannot keep the build's scratch files out of the artifact", err)
		return
	}
	info := &BuildInfo{
		Target: p.Target, BaseRevision: rev, HeadSHA: p.HeadSHA, Set: p.SetName, SetPath: p.SetPath,
		Command: res.Argv, Installed: tests.Installed, Started: started, Finished: time.Now().UTC(),
		Arch: build.HostArch(), EPrefix: eprefix,
	}
	info.Host, _ = os.Hostname()
	r.out.Info = info
	if !tests.Passed {
		r.finish(report.Failure, "Tests failed: "+strings.Join(tests.Failed(), ", "), "")
		r.testText(nil)
		return
	}
	// The record goes into the upper layer itself, after unmounting, so it
	// is part of the artifact and its digest.
	if err := writeInfo(m.Upper(), info); err != nil {
		r.fail("Cannot write "+BuildInfoPath, err)
		return
	}
	art, err := p.Store.Put(ctx, m.Upper(), map[string]string{
		"target": p.Target.String(), "version": p.Target.Version, "os": p.Target.OS, "arch": p.Target.Arch,
		"base_revision": rev, "head_sha": p.HeadSHA, "set": p.SetName, "set_path": p.SetPath,
	})
	if err != nil {
		if ctx.Err() != nil {
			r.finish(report.Cancelled, "Cancelled: "+context.Cause(ctx).Error(), "The run was stopped while storing the artifact.")
			return
		}
		r.fail("Cannot store the artifact", err)
		return
	}
	r.out.Artifact = &art
	r.finish(report.Success, fmt.Sprintf("Built and tested: %s, artifact %s", changesPhrase(tests.Changes), humanSize(art.Size)), "")
	r.testText(&art)
}

func writeInfo(upper string, info *BuildInfo) error {
	dir := filepath.Join(upper, filepath.Dir(BuildInfoPath))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(upper, BuildInfoPath), append(b, '\n'), 0o644)
}

// clean removes the overlay's scratch directories: the upper layer is in
// the artifact (or worthless after a failed run); the log and the results
// stay for the check run's links. overlay.RemoveScratch first detaches a
// merged view an Unmount could not remove, which os.RemoveAll would walk
// into and empty file by file.
func (r *run) clean(scratch string) {
	if !r.p.KeepScratch {
		_ = overlay.RemoveScratch(scratch)
	}
}

// fail completes the check as a failure caused by err; a full disk is
// named as such, since "no space" hides in many error shapes.
func (r *run) fail(what string, err error) {
	if r.ctx.Err() != nil {
		// Whatever broke, it broke because the run was stopped.
		r.finish(report.Cancelled, "Cancelled: "+context.Cause(r.ctx).Error(), fmt.Sprintf("%s: %v", what, err))
		r.logText()
		return
	}
	title := what
	if errors.Is(err, syscall.ENOSPC) {
		title = "Disk full (ENOSPC): " + what
	}
	r.finish(report.Failure, title, fmt.Sprintf("%s: %v", what, err))
	r.logText()
}

// noSpace recognises ENOSPC in a build's log, where it appears as text.
var noSpace = regexp.MustCompile(`(?i)no space left on device|ENOSPC`)

// What emerge prints when a package fails: ">>> Failed to emerge
// CAT/PF, Log file:" then ">>>  '<PORTAGE_TMPDIR>/portage/CAT/PF/temp/build.log'",
// and before that "* ERROR: CAT/PF::REPO failed (compile phase):".
var (
	failedEmerge = regexp.MustCompile(`(?m)^>>> Failed to emerge ([^\s,]+)`)
	failedPhase  = regexp.MustCompile(`(?m)\* ERROR: ([^\s:]+)::\S+ failed \((\w+) phase\)`)
	packageLog   = regexp.MustCompile(`(?m)^>>>\s+'(/[^']+/build\.log)'`)
	// compatbot's mirror fetch helper on a source it could not mirror
	// ("distfile X: missing from the source S", "distfile X from S/X does
	// not match ..."; not "distfile X entered the mirror").
	distfileFailure = regexp.MustCompile(`(?m)^compatbot: (distfile \S+?(?::| from \S+ does not match).*)$`)
)

// PackageLogLines is how much of a failed package's own build log the
// check run shows.
const PackageLogLines = 40

func buildFailureTitle(res build.Result, upper string) string {
	log := res.Tail
	if b, err := build.Tail(res.LogPath, 2000); err == nil {
		log = b
	}
	if noSpace.MatchString(log) || diskFull(upper) {
		return "Build failed: disk full (ENOSPC) in the upper layer"
	}
	if m := distfileFailure.FindStringSubmatch(log); m != nil {
		t := m[1]
		if len(t) > 200 {
			t = t[:200] + "…"
		}
		return "Build failed: " + t
	}
	if m := failedEmerge.FindStringSubmatch(log); m != nil {
		phase := ""
		for _, pm := range failedPhase.FindAllStringSubmatch(log, -1) {
			if pm[1] == m[1] {
				phase = " (" + pm[2] + " phase)"
			}
		}
		return "Build failed: " + m[1] + " did not build" + phase
	}
	return fmt.Sprintf("Build failed: exit code %d", res.ExitCode)
}

// packageLogText is the end of the failed package's own build log (the
// compiler's error is there, not in emerge's output), when the build log
// names it.
func packageLogText(res build.Result) string {
	log, err := build.Tail(res.LogPath, 2000)
	if err != nil {
		return ""
	}
	fm := failedEmerge.FindStringSubmatch(log)
	m := packageLog.FindAllStringSubmatch(log, -1)
	if fm == nil || m == nil {
		return ""
	}
	p := m[len(m)-1][1]
	tail, err := build.Tail(p, PackageLogLines)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("### %s: its build log (last lines of %s)\n\n```\n%s\n```\n", fm[1], p, strings.ReplaceAll(tail, "```", "'''"))
}

// diskFull reports an upper layer's filesystem with (almost) no room left.
func diskFull(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Bavail*uint64(st.Bsize) < 4096
}

func (r *run) logText() {
	if r.out.Build.Tail != "" {
		r.out.Check.Text += "### Build log (last lines)\n\n```\n" + strings.ReplaceAll(r.out.Build.Tail, "```", "'''") + "\n```\n"
	}
}

func (r *run) testText(art *artifact.Artifact) {
	t := r.out.Tests
	var s strings.Builder
	fmt.Fprintf(&s, "Set `%s` built on %s from published revision `%s` in %s.\n\n", r.p.SetName, r.p.Target, r.out.BaseRevision, r.out.Build.Duration.Round(time.Second))
	if art != nil {
		fmt.Fprintf(&s, "**Artifact** `%s` (%s, %d paths, %d deletions)\n\n", art.Digest, humanSize(art.Size), len(art.Manifest.Entries), len(art.Manifest.Deleted()))
	}
	s.WriteString(t.Markdown())
	r.out.Check.Summary = s.String()
	r.out.Check.Annotations = t.Annotations()
	r.logText()
}

func changesPhrase(ch []compattest.Change) string {
	switch len(ch) {
	case 0:
		return "no package changes"
	case 1:
		return "1 package change"
	}
	return fmt.Sprintf("%d package changes", len(ch))
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

package portage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/mirror"
)

// Runner builds a job with real emerge: it writes the Portage
// configuration into the job's Prefix, then runs the job's command (by
// default emerge InstallArgs) and, when that succeeds, emerge --depclean,
// both through Inner with the Portage environment. It implements
// build.Runner, so the pipeline runs it like any other build.
type Runner struct {
	Inner  build.Runner
	Config Config
	// Mirror is compatbot's distfiles mirror. When set, the sources the
	// build needs (emerge --pretend --fetchonly) enter it first from
	// Distfiles, verified against the repositories' Manifests, and emerge
	// fetches from Mirror.DistfilesDir() only (Config.Mirror is set to it).
	Mirror *mirror.Mirror
	// Distfiles is where sources missing from the mirror come from: a
	// directory or an http(s) URL; "" means the mirror must have them.
	Distfiles string
}

// DefaultCommand is the install command the bot's config gets when it
// names no command of its own.
func (c Config) DefaultCommand() []string { return c.Emerge(InstallArgs...) }

// Run implements build.Runner.
func (r *Runner) Run(ctx context.Context, job build.Job) (build.Result, error) {
	if r.Inner == nil {
		return build.Result{}, fmt.Errorf("portage: Runner.Inner is nil")
	}
	c := r.Config
	if len(job.Command) == 0 {
		job.Command = c.DefaultCommand()
	}
	if err := job.Validate(); err != nil {
		return build.Result{}, err
	}
	c.EPrefix = job.BuildPrefix()
	if c.WorkDir == "" {
		c.WorkDir = filepath.Join(filepath.Dir(job.LogPath), "portage")
	}
	if err := c.Prepare(job.Prefix, job.SetName, job.SetFile); err != nil {
		return build.Result{}, err
	}
	if r.Mirror != nil {
		c.Mirror = r.Mirror.DistfilesDir()
	}
	env := c.Env()
	for k, v := range job.Env {
		env[k] = v
	}
	job.Env = env
	if job.DistDir == "" {
		job.DistDir = env["DISTDIR"]
	}
	if err := os.MkdirAll(job.DistDir, 0o755); err != nil {
		return build.Result{}, fmt.Errorf("portage: %w", err)
	}
	if r.Mirror != nil {
		if res, err := r.fillMirror(ctx, c, job); err != nil || !res.OK() {
			return res, err
		}
		job.AppendLog = true
	}
	res, err := r.Inner.Run(ctx, job)
	if err != nil || !res.OK() {
		return res, err
	}
	// The set no longer lists what the PR removed; depclean takes it (and
	// whatever only it needed) out of the Prefix.
	clean := job
	clean.Command = c.Emerge(DepcleanArgs...)
	clean.AppendLog = true
	res2, err := r.Inner.Run(ctx, clean)
	if err != nil {
		return res, err
	}
	res2.Argv = res.Argv
	res2.Duration += res.Duration
	return res2, nil
}

// fillMirror asks emerge which sources the build needs and brings them
// into the mirror, verified. Its output starts the build log; a source
// that is missing or corrupt ends the build there, the log's last line
// naming the file ("compatbot: distfile X: ...").
func (r *Runner) fillMirror(ctx context.Context, c Config, job build.Job) (build.Result, error) {
	list := job
	list.Command = c.Emerge(append([]string{"--pretend", "--fetchonly"}, InstallArgs...)...)
	res, err := r.Inner.Run(ctx, list)
	if err != nil || !res.OK() {
		return res, err
	}
	b, err := os.ReadFile(job.LogPath)
	if err != nil {
		return res, err
	}
	fail := func(msg string) (build.Result, error) {
		f, err := os.OpenFile(job.LogPath, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(f, "compatbot: %s\n", msg)
		f.Close()
		res.ExitCode = 1
		res.Tail, _ = build.Tail(job.LogPath, build.TailLines)
		return res, nil
	}
	names := FetchList(string(b))
	manifests, err := mirror.RepoManifests(c.repoDirs()...)
	if err != nil {
		return fail(err.Error())
	}
	var entries []mirror.Entry
	for _, n := range names {
		e, ok := manifests[n]
		if !ok {
			return fail(fmt.Sprintf("distfile %s: no Manifest of the ebuild repositories lists it, so it cannot be verified", n))
		}
		entries = append(entries, e)
	}
	fetched, err := r.Mirror.Ingest(ctx, entries, r.Distfiles)
	if err != nil {
		return fail(err.Error())
	}
	f, err := os.OpenFile(job.LogPath, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		fmt.Fprintf(f, "compatbot: %d distfiles needed, %d new in the mirror %s, all verified (BLAKE2B, SHA512)\n", len(names), len(fetched), r.Mirror.DistfilesDir())
		f.Close()
	}
	return res, nil
}

func (c Config) repoDirs() []string {
	var ds []string
	for _, r := range c.Repos {
		ds = append(ds, r.Dir)
	}
	return ds
}

// FetchList reads the distfile names from emerge --pretend --fetchonly
// output: one URI per line, the file being its last path element.
func FetchList(out string) []string {
	seen := map[string]bool{}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		for _, f := range strings.Fields(line) {
			if !strings.Contains(f, "://") {
				continue
			}
			n := f[strings.LastIndex(f, "/")+1:]
			if n != "" && !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	return names
}

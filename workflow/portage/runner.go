package portage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compatbot/compatbot/workflow/build"
)

// Runner builds a job with real emerge: it writes the Portage
// configuration into the job's Prefix, then runs the job's command (by
// default emerge InstallArgs) and, when that succeeds, emerge --depclean,
// both through Inner with the Portage environment. It implements
// build.Runner, so the pipeline runs it like any other build.
type Runner struct {
	Inner  build.Runner
	Config Config
	// Before runs after the configuration is written and before emerge,
	// with the configuration the build uses (the mirror fills its
	// distfiles here); an error fails the build before it starts.
	Before func(ctx context.Context, c Config) error
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
	if r.Before != nil {
		if err := r.Before(ctx, c); err != nil {
			return build.Result{}, err
		}
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

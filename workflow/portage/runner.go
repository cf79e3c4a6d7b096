package portage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/mirror"
	"github.com/compatbot/compatbot/workflow/vdb"
)

// Runner builds a job with real emerge: it writes the Portage
// configuration into the job's Prefix, then runs the job's command (by
// default emerge InstallArgs) and, when that succeeds, emerge --depclean,
// both through Inner with the Portage environment. It implements
// build.Runner, so the pipeline runs it like any other build.
type Runner struct {
	Inner  build.Runner
	Config Config
	// Mirror is compatbot's distfiles mirror. When set, emerge fetches
	// from Mirror.DistfilesDir() only (Config.Mirror is set to it); a
	// source not there yet enters it first, from Distfiles, verified
	// against the repositories' Manifests (FetchHelper).
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
	c = c.forJob(job)
	job.Command = append(append([]string(nil), job.Command...), job.ExtraSets...)
	if err := job.Validate(); err != nil {
		return build.Result{}, err
	}
	c.EPrefix = job.BuildPrefix()
	if c.WorkDir == "" {
		c.WorkDir = filepath.Join(filepath.Dir(job.LogPath), "portage")
	}
	if r.Mirror != nil {
		c.Mirror = r.Mirror.DistfilesDir()
		c.fetchHelper = true
	}
	if err := c.Prepare(job.Prefix, job.SetName, job.SetFile); err != nil {
		return build.Result{}, err
	}
	env := c.Env()
	if r.Mirror != nil {
		for k, v := range r.helperEnv(c) {
			env[k] = v
		}
		// Written by the helper during the build.
		if err := os.MkdirAll(r.Mirror.DistfilesDir(), 0o755); err != nil {
			return build.Result{}, fmt.Errorf("portage: mirror: %w", err)
		}
		job.Binds = append(job.Binds, r.Mirror.Dir)
	}
	job.Binds = append(job.Binds, c.WorkDir)
	// Under a sandbox the host is read-only and /tmp private: bind what
	// emerge reads from elsewhere. The release is writable: Python keeps
	// its __pycache__ there.
	if !c.Release.Installed() {
		job.Binds = append(job.Binds, c.Release.Dir)
	}
	job.ROBinds = append(job.ROBinds, c.repoDirs()...)
	if c.Profile != "" {
		job.ROBinds = append(job.ROBinds, c.Profile)
	}
	if r.Mirror != nil {
		// The file alone: its directory may hold the Prefix (a binary
		// in the data dir's parent), which must stay writable.
		if self, err := os.Executable(); err == nil {
			job.ROBinds = append(job.ROBinds, self)
		}
		if st, err := os.Stat(r.Distfiles); err == nil && st.IsDir() {
			job.ROBinds = append(job.ROBinds, r.Distfiles)
		}
	}
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
	if len(job.Unmerge) > 0 {
		un, ran, err := r.unmerge(ctx, job, c)
		if err != nil {
			return res, err
		}
		if ran {
			un.Argv = res.Argv
			un.Duration += res.Duration
			res = un
			if !res.OK() {
				return res, nil
			}
		}
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

// unmerge removes the target's removals that are installed, as EESSI's
// role does after installing (community.general.portage with state
// absent: emerge --unmerge, and nothing for a package that is not
// installed). It runs before depclean, which keeps what is in the world
// file or the profile's @system, the packages removals exist for. The log
// says which removals had nothing to remove. ran is false when none was
// installed.
func (r *Runner) unmerge(ctx context.Context, job build.Job, c Config) (res build.Result, ran bool, err error) {
	installed, err := vdb.Read(job.Prefix)
	if err != nil {
		return res, false, fmt.Errorf("portage: before unmerging: %w", err)
	}
	var present, absent []string
	for _, u := range job.Unmerge {
		a, err := sets.ParseAtom(u)
		if err != nil {
			return res, false, fmt.Errorf("portage: package to unmerge %q: %w", u, err)
		}
		if slices.ContainsFunc(installed, func(i vdb.Installed) bool { return a.Matches(i.Package) }) {
			present = append(present, u)
		} else {
			absent = append(absent, u)
		}
	}
	if len(absent) > 0 {
		f, err := os.OpenFile(job.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return res, false, fmt.Errorf("portage: %w", err)
		}
		_, werr := fmt.Fprintf(f, "\ncompatbot: removals not installed, nothing to unmerge: %s\n", strings.Join(absent, " "))
		if err := errors.Join(werr, f.Close()); err != nil {
			return res, false, fmt.Errorf("portage: %w", err)
		}
	}
	if len(present) == 0 {
		return res, false, nil
	}
	un := job
	un.Command = c.Emerge(append(append([]string(nil), UnmergeArgs...), present...)...)
	un.AppendLog = true
	res, err = r.Inner.Run(ctx, un)
	return res, true, err
}

func (c Config) repoDirs() []string {
	var ds []string
	for _, r := range c.Repos {
		ds = append(ds, r.Dir)
	}
	return ds
}

// forJob adds the target's own package.mask, package.unmask and
// package.use lines (from its lists, e.g. EESSI's prefix_mask_packages, and
// the repo config's targets:) to the configured ones.
func (c Config) forJob(job build.Job) Config {
	c.Mask = append(append([]string(nil), c.Mask...), job.Mask...)
	c.Unmask = append(append([]string(nil), c.Unmask...), job.Unmask...)
	c.Use = append(append([]string(nil), c.Use...), job.Use...)
	return c
}

package handlers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/compatbot/compatbot/bot/intake"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/prflow"
)

// buildTarget reads the target back from a build check run's name
// ("compat 2026.06 linux-x86_64", pipeline.CheckName).
func buildTarget(name string) (sets.Target, bool) {
	rest, ok := strings.CutPrefix(name, "compat ")
	if !ok {
		return sets.Target{}, false
	}
	version, osArch, ok := strings.Cut(rest, " ")
	if !ok {
		return sets.Target{}, false
	}
	os, arch, ok := strings.Cut(osArch, "-")
	if !ok || version == "" || os == "" || arch == "" || strings.ContainsAny(arch, " ") {
		return sets.Target{}, false
	}
	return sets.Target{Version: version, OS: os, Arch: arch}, true
}

// rerunBuild answers "Re-run" on a build's check run (check_run
// rerequested, or the run's own rerun button): that target of the PR's
// head is built again, as a new run of the same name (trigger
// "rerun:<delivery>"), whatever the earlier run concluded. Other runs of
// the suite are left alone; "Re-run all checks" is check_suite
// rerequested.
func (h *Handler) rerunBuild(ctx context.Context, d *intake.Delivery, ev *checkRunEvent) error {
	tg, ok := buildTarget(ev.CheckRun.Name)
	if !ok || h.opts.Builder == nil {
		return nil // not a run of compatbot's, or this server does not build
	}
	if err := validRepo(ev.Repository); err != nil {
		return err
	}
	if ev.CheckRun.HeadSHA == "" {
		return intake.Permanent(errPayload("check_run.head_sha is required"))
	}
	prs := ev.CheckRun.PullRequests
	if len(prs) == 0 {
		// Builds run for pull requests only: GitHub lists none when the
		// PR was closed (or its head moved on) since.
		h.log.Info("re-run of a build without a pull request ignored", "delivery", d.ID, "run", ev.CheckRun.Name)
		return nil
	}
	t := target{repo: ev.Repository, installation: ev.Installation.ID, headSHA: ev.CheckRun.HeadSHA,
		pr: prs[0].Number, baseRef: prs[0].Base.Ref, baseHint: prs[0].Base.SHA}
	gh, err := h.client(ctx, t.installation)
	if err != nil {
		return err
	}
	// The label that lets a build change glibc is the PR's now, as for a
	// push: a re-run does not keep a permission taken away since.
	owner, name, _ := strings.Cut(t.repo.FullName, "/")
	pr, _, err := gh.PullRequests.Get(ctx, owner, name, t.pr)
	if err != nil {
		return fmt.Errorf("re-run %s: %w", ev.CheckRun.Name, err)
	}
	t.allowLibc = slices.Contains(labelNames(pr.Labels), AllowLibcUpdateLabel)
	trigger := "rerun:" + d.ID
	if done, err := h.opts.Builder.Requested(ctx, t.repo.FullName, t.headSHA, trigger); err != nil || done {
		return err
	}
	gitDir, err := h.fetch(ctx, t)
	if err != nil {
		return err
	}
	rev, err := readPR(ctx, gitDir, t)
	if err != nil {
		return intake.Permanent(fmt.Errorf("re-run %s: %w", ev.CheckRun.Name, err))
	}
	if !slices.Contains(changedTargets(rev), tg) {
		h.log.Info("re-run of a build whose target the PR no longer changes ignored", "delivery", d.ID, "run", ev.CheckRun.Name)
		return nil
	}
	req := prflow.BuildRequest{Repo: t.repo.FullName, Installation: t.installation, PR: t.pr, BaseRef: t.baseRef,
		BaseSHA: rev.BaseSHA, HeadSHA: t.headSHA, ConfigSHA: rev.ConfigSHA, GitDir: gitDir, Targets: []sets.Target{tg},
		Trigger: trigger, AllowLibcUpdate: t.allowLibc}
	if err := h.opts.Builder.Build(ctx, req); err != nil {
		return fmt.Errorf("re-run %s@%s: %w", ev.CheckRun.Name, short(t.headSHA), err)
	}
	return nil
}

package handlers

import (
	"context"
	"fmt"
	"github.com/compatbot/compatbot/workflow/prflow"

	"github.com/compatbot/compatbot/bot/checks"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/setscheck"
	"github.com/google/go-github/v60/github"
)

// runSetsCheck queues the "compat sets" run for t at once (so the PR shows
// it while the fetch runs), fetches base and head, judges the PR, completes
// the run and then asks the Builder, if any, to build. trigger separates
// re-runs from the run of the push. Repeating it is harmless: a completed
// run is not redone, a requested build is not requested again.
func (h *Handler) runSetsCheck(ctx context.Context, gh *github.Client, t target, trigger string, arches []string) (checks.Run, error) {
	run, err := h.runs.Queue(ctx, gh, checks.Key{Repo: t.repo.FullName, HeadSHA: t.headSHA, Name: setscheck.CheckName, Trigger: trigger, PR: t.pr})
	if err != nil {
		return run, err
	}
	var rev *setscheck.Revisions
	var gitDir string
	if run.Status != "completed" {
		if run, err = h.runs.Start(ctx, gh, run); err != nil {
			return run, err
		}
		gitDir, err = h.fetch(ctx, t)
		if err != nil {
			return run, err
		}
		var chk report.Check
		rev, err = readPR(ctx, gitDir, t)
		if err == nil {
			chk = setscheck.RunRevisions(rev)
		} else {
			// The revisions could not be read (a broken config on the
			// base, a head that no longer exists): that is the check's
			// verdict, not a reason to retry.
			chk = report.Check{Name: setscheck.CheckName, Title: "The sets could not be read", Conclusion: report.Failure,
				Summary: fmt.Sprintf("compatbot could not read the revisions of this PR:\n\n```\n%s\n```\n", err)}
		}
		if run, err = h.runs.Complete(ctx, gh, run, chk); err != nil {
			return run, err
		}
	}
	if h.opts.Builder == nil || run.Conclusion == string(report.Failure) || run.Conclusion == string(report.Cancelled) {
		return run, nil
	}
	return run, h.requestBuild(ctx, t, trigger, arches, gitDir, rev)
}

func (h *Handler) requestBuild(ctx context.Context, t target, trigger string, arches []string, gitDir string, rev *setscheck.Revisions) error {
	done, err := h.opts.Builder.Requested(ctx, t.repo.FullName, t.headSHA, trigger)
	if err != nil || done {
		return err
	}
	if rev == nil {
		// The check was completed by an earlier attempt: read the
		// revisions again for the build.
		if gitDir, err = h.fetch(ctx, t); err != nil {
			return err
		}
		if rev, err = readPR(ctx, gitDir, t); err != nil {
			return nil
		}
	}
	req := prflow.BuildRequest{Repo: t.repo.FullName, Installation: t.installation, PR: t.pr, BaseRef: t.baseRef,
		BaseSHA: rev.BaseSHA, HeadSHA: t.headSHA, ConfigSHA: rev.ConfigSHA, GitDir: gitDir, Targets: changedTargets(rev), Arches: arches, Trigger: trigger, Revisions: rev,
		AllowLibcUpdate: t.allowLibc}
	if err := h.opts.Builder.Build(ctx, req); err != nil {
		return fmt.Errorf("build %s@%s: %w", t.repo.FullName, short(t.headSHA), err)
	}
	return nil
}

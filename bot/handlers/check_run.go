package handlers

import (
	"context"

	"github.com/compatbot/compatbot/bot/checks"
	"github.com/compatbot/compatbot/bot/intake"
	"github.com/compatbot/compatbot/workflow/setscheck"
)

type checkRunEvent struct {
	Action   string `json:"action"`
	CheckRun struct {
		ID           int64   `json:"id"`
		Name         string  `json:"name"`
		HeadSHA      string  `json:"head_sha"`
		PullRequests []prRef `json:"pull_requests"`
		CheckSuite   struct {
			HeadBranch string `json:"head_branch"`
		} `json:"check_suite"`
	} `json:"check_run"`
	RequestedAction *struct {
		Identifier string `json:"identifier"`
	} `json:"requested_action"`
	Repository   repository   `json:"repository"`
	Installation installation `json:"installation"`
}

// checkRun re-runs the sets check when someone presses "Re-run" on GitHub
// (rerequested) or the run's own "Re-run" button (requested_action rerun).
// The re-run is a new check run of the same name for the same SHA.
func (h *Handler) checkRun(ctx context.Context, d *intake.Delivery) error {
	var ev checkRunEvent
	if err := decode(d, &ev); err != nil {
		return err
	}
	switch {
	case ev.Action == "rerequested":
	case ev.Action == "requested_action" && ev.RequestedAction != nil && ev.RequestedAction.Identifier == checks.RerunAction:
	default:
		return nil
	}
	if ev.CheckRun.Name != setscheck.CheckName {
		return h.rerunBuild(ctx, d, &ev) // a build's run: check_run_build.go
	}
	if err := validRepo(ev.Repository); err != nil {
		return err
	}
	if ev.CheckRun.HeadSHA == "" {
		return intake.Permanent(errPayload("check_run.head_sha is required"))
	}
	gh, err := h.client(ctx, ev.Installation.ID)
	if err != nil {
		return err
	}
	t := target{repo: ev.Repository, installation: ev.Installation.ID, headSHA: ev.CheckRun.HeadSHA,
		headRef: ev.CheckRun.CheckSuite.HeadBranch, baseRef: ev.Repository.DefaultBranch}
	if prs := ev.CheckRun.PullRequests; len(prs) > 0 {
		t.pr, t.baseRef, t.baseHint = prs[0].Number, prs[0].Base.Ref, prs[0].Base.SHA
	}
	_, err = h.runSetsCheck(ctx, gh, t, "rerun:"+d.ID, nil)
	return err
}

type checkSuiteEvent struct {
	Action     string `json:"action"`
	CheckSuite struct {
		HeadSHA      string  `json:"head_sha"`
		HeadBranch   string  `json:"head_branch"`
		PullRequests []prRef `json:"pull_requests"`
	} `json:"check_suite"`
	Repository   repository   `json:"repository"`
	Installation installation `json:"installation"`
}

// checkSuite creates the runs for a suite's SHA: requested on a push,
// rerequested when someone asks GitHub to re-run all checks. A push that
// belongs to a PR gets the same run as the pull_request event (same key),
// so it is checked once.
func (h *Handler) checkSuite(ctx context.Context, d *intake.Delivery) error {
	var ev checkSuiteEvent
	if err := decode(d, &ev); err != nil {
		return err
	}
	trigger := ""
	switch ev.Action {
	case "requested":
	case "rerequested":
		trigger = "rerun:" + d.ID
	default:
		return nil
	}
	if err := validRepo(ev.Repository); err != nil {
		return err
	}
	cs := ev.CheckSuite
	if cs.HeadSHA == "" {
		return intake.Permanent(errPayload("check_suite.head_sha is required"))
	}
	t := target{repo: ev.Repository, installation: ev.Installation.ID, headSHA: cs.HeadSHA, headRef: cs.HeadBranch, baseRef: ev.Repository.DefaultBranch}
	if len(cs.PullRequests) > 0 {
		t.pr, t.baseRef, t.baseHint = cs.PullRequests[0].Number, cs.PullRequests[0].Base.Ref, cs.PullRequests[0].Base.SHA
	}
	if t.baseRef == "" || (t.pr == 0 && t.headRef == "") {
		// A suite with neither PR nor branch (a pushed tag, a deleted
		// branch): there is nothing to compare it with.
		h.log.Debug("check_suite without branch or PR ignored", "delivery", d.ID, "sha", cs.HeadSHA)
		return nil
	}
	gh, err := h.client(ctx, ev.Installation.ID)
	if err != nil {
		return err
	}
	_, err = h.runSetsCheck(ctx, gh, t, trigger, nil)
	return err
}

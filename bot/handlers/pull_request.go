package handlers

import (
	"context"
	"time"

	"github.com/compatbot/compatbot/bot/intake"
)

type pullRequestEvent struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest struct {
		Number int  `json:"number"`
		Draft  bool `json:"draft"`
		Merged bool `json:"merged"`
		// MergeCommitSHA is the commit the merge made on the base branch.
		MergeCommitSHA string    `json:"merge_commit_sha"`
		MergedBy       *user     `json:"merged_by"`
		State          string    `json:"state"`
		User           user      `json:"user"`
		Head           ref       `json:"head"`
		Base           ref       `json:"base"`
		UpdatedAt      time.Time `json:"updated_at"`
		Labels         []struct {
			Name string `json:"name"`
		} `json:"labels"`
	} `json:"pull_request"`
	Repository   repository   `json:"repository"`
	Installation installation `json:"installation"`
}

// pullRequest runs the sets check for a new head: opened, synchronize
// (push), reopened and ready_for_review. Drafts only get their head
// recorded; their check runs once they are ready for review. A push
// cancels the unfinished runs of the PR's older heads.
func (h *Handler) pullRequest(ctx context.Context, d *intake.Delivery) error {
	var ev pullRequestEvent
	if err := decode(d, &ev); err != nil {
		return err
	}
	pr := ev.PullRequest
	if pr.Number == 0 {
		pr.Number = ev.Number
	}
	switch ev.Action {
	case "opened", "synchronize", "reopened", "ready_for_review":
	case "closed":
		if pr.Merged && h.opts.Deployer != nil {
			return h.mergeDeploy(ctx, d, &ev)
		}
		return nil
	default:
		return nil
	}
	if err := validRepo(ev.Repository); err != nil {
		return err
	}
	if pr.Number <= 0 || pr.Head.SHA == "" || pr.Base.Ref == "" {
		return intake.Permanent(errPayload("pull_request.number, head.sha and base.ref are required"))
	}
	seen := pr.UpdatedAt
	if seen.IsZero() {
		seen = d.ReceivedAt
	}
	if err := h.recordHead(ctx, ev.Repository.FullName, pr.Number, pr.Head.SHA, seen); err != nil {
		return err
	}
	if pr.Draft && ev.Action != "ready_for_review" {
		return nil
	}
	gh, err := h.client(ctx, ev.Installation.ID)
	if err != nil {
		return err
	}
	if _, err := h.runs.Supersede(ctx, gh, ev.Repository.FullName, pr.Number, pr.Head.SHA); err != nil {
		return err
	}
	t := target{repo: ev.Repository, installation: ev.Installation.ID, pr: pr.Number, headSHA: pr.Head.SHA, headRef: pr.Head.Ref, baseRef: pr.Base.Ref, baseHint: pr.Base.SHA}
	for _, l := range pr.Labels {
		t.allowLibc = t.allowLibc || l.Name == AllowLibcUpdateLabel
	}
	_, err = h.runSetsCheck(ctx, gh, t, "", nil)
	return err
}

// AllowLibcUpdateLabel on a PR lets its builds change glibc's version.
// A label, because only people with triage rights or more can set one: a
// line in the PR's own text would let any author waive the check.
const AllowLibcUpdateLabel = "compat: allow-libc-update"

type errPayload string

func (e errPayload) Error() string { return "malformed payload: " + string(e) }

package handlers

import (
	"context"
	"errors"
	"fmt"
	"github.com/compatbot/compatbot/workflow/prflow"

	"github.com/compatbot/compatbot/bot/intake"
)

// mergeDeploy is the merge half of "/deploy test, or the PR is merged":
// the merged PR's tested builds go to the test target exactly as a
// /deploy test by whoever merged it would. Merging is itself the approval,
// so no permission lookup is made (GitHub only lets writers merge).
//
// The request's CommentID is -N for PR N: no real comment has a negative
// id, so (Repo, CommentID, Line) stays a unique idempotency key and the
// reply's marker cannot collide with a command's.
func (h *Handler) mergeDeploy(ctx context.Context, d *intake.Delivery, ev *pullRequestEvent) error {
	if err := validRepo(ev.Repository); err != nil {
		return err
	}
	pr := ev.PullRequest
	if pr.Number <= 0 || pr.Head.SHA == "" || pr.Base.Ref == "" {
		return intake.Permanent(errPayload("pull_request.number, head.sha and base.ref are required"))
	}
	key := -int64(pr.Number)
	repo := ev.Repository.FullName
	replyState, err := h.replyState(ctx, repo, key)
	if err != nil {
		return err
	}
	if replyState == "posted" || replyState == "none" {
		return nil // an earlier delivery of this merge finished
	}
	gh, err := h.client(ctx, ev.Installation.ID)
	if err != nil {
		return err
	}
	p := &pullState{number: pr.Number, author: pr.User.Login, headSHA: pr.Head.SHA, headRef: pr.Head.Ref, baseRef: pr.Base.Ref,
		baseHint: pr.Base.SHA, mergeSHA: pr.MergeCommitSHA, merged: true, state: "closed", repo: ev.Repository, inst: ev.Installation.ID, gh: gh}
	if err := h.load(ctx, p); err != nil {
		return err
	}
	if p.targErr == nil && len(p.targets) == 0 {
		return h.noReply(ctx, repo, key)
	}
	merger := p.author
	if pr.MergedBy != nil && pr.MergedBy.Login != "" {
		merger = pr.MergedBy.Login
	}
	var section string
	if p.targErr != nil {
		section = fmt.Sprintf("Merged, but not deployed to test: the sets of this PR could not be read: %v", p.targErr)
	} else {
		req := prflow.DeployRequest{Repo: repo, Installation: p.inst, PR: p.number, HeadSHA: p.headSHA, BaseRef: p.baseRef, Merged: true,
			MergeSHA: p.mergeSHA, BaseSHA: p.rev.BaseSHA, ConfigSHA: p.rev.ConfigSHA, Author: p.author, Requester: merger, Env: "test", Targets: p.targets, GitDir: p.gitDir, CommentID: key}
		reply, err := h.opts.Deployer.DeployTest(ctx, req)
		var refusal *prflow.Refusal
		switch {
		case errors.As(err, &refusal):
			section = "Merged, but the deploy to test was refused: " + refusal.Reason
		case err != nil:
			return err
		default:
			section = "Merged by @" + merger + ": deploying the tested result to test.\n\n" + reply
		}
	}
	body := replyMarker(key) + "\n" + section
	return h.postReply(ctx, gh, p, key, replyState == "pending", body)
}

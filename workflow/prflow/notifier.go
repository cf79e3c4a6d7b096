package prflow

import (
	"context"
	"fmt"

	"github.com/compatbot/compatbot/workflow/deploy"
)

// Notifier tells a PR about its deploy outside the command's reply: its
// place in the queue, and the outcome settled by deploy.Recover after a
// restart. It implements deploy.Notifier.
type Notifier struct {
	API Commenter
	// OnOutcome, when set, also receives every outcome (the Deployer uses
	// it to answer a repeated command with the recovered result).
	OnOutcome func(ctx context.Context, env string, req deploy.Request, res deploy.Result)
}

// Queued implements deploy.Notifier.
func (n Notifier) Queued(ctx context.Context, env string, req deploy.Request, position int) {
	ahead := "1 request is"
	if position != 1 {
		ahead = fmt.Sprintf("%d requests are", position)
	}
	body := fmt.Sprintf("⏳ `/deploy %s` of %s by @%s is queued: %s ahead of it. compatbot runs one transaction per repository at a time.", env, short(req.HeadSHA), req.Requester, ahead)
	_ = n.API.Comment(ctx, req.Repo, req.PR, body)
}

// Outcome implements deploy.Notifier.
func (n Notifier) Outcome(ctx context.Context, env string, req deploy.Request, res deploy.Result) {
	if n.OnOutcome != nil {
		n.OnOutcome(ctx, env, req, res)
	}
	if req.PR <= 0 {
		return
	}
	body := res.Markdown()
	if res.Recovered {
		body = "compatbot restarted while this request was running; this is how it ended.\n\n" + body
	}
	_ = n.API.Comment(ctx, req.Repo, req.PR, body)
}

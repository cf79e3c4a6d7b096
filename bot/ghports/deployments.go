package ghports

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/prflow"
	"github.com/compatbot/compatbot/workflow/state"
	"github.com/google/go-github/v60/github"
)

// DeploymentLogHandler serves the log_url of deployment statuses, GET
// /deployments/{id}: what the lifecycle recorded about the command behind
// GitHub Deployment id (environment, who, which PR and commit, state, and
// the answer posted on the PR), as text. Only ids it recorded are served.
func DeploymentLogHandler(db *state.DB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			http.Error(w, "deployment id must be a positive number", http.StatusBadRequest)
			return
		}
		l, ok, err := prflow.DeployLogOf(r.Context(), db, id)
		if err != nil {
			http.Error(w, "reading the deploy record failed", http.StatusInternalServerError)
			return
		}
		if !ok {
			http.Error(w, "no deployment of compatbot's has this id", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fmt.Fprintf(w, "GitHub Deployment %d: %s of %s to %s\n", id, l.Kind, l.Repo, l.Env)
		fmt.Fprintf(w, "PR #%d, commit %s, by @%s, %s\nstate: %s\n", l.PR, l.HeadSHA, l.User, l.Created.Format("2006-01-02 15:04:05 UTC"), l.State)
		if l.Tag != "" {
			fmt.Fprintf(w, "tag: %s\n", l.Tag)
		}
		if l.Reply != "" {
			fmt.Fprintf(w, "\n%s\n", l.Reply)
		}
	})
}

// RollbackDeployments makes a rollback show in the repository's
// Deployments like a deploy: after the lifecycle's rollback (Core), a
// Deployment of the default branch to the environment, task "rollback",
// with a success or failure status linking the PR. A refused rollback
// (unknown tag, nothing to roll back) changed nothing and gets none, as a
// refused deploy gets none. The lifecycle answers a repeated command from
// its record without calling RollbackFor again, so each rollback is
// recorded once.
type RollbackDeployments struct {
	prflow.Core
	API GitHubAPI
}

// RollbackFor implements prflow.Core.
func (r RollbackDeployments) RollbackFor(ctx context.Context, env, tag string, from deploy.Request) (deploy.Result, error) {
	res, err := r.Core.RollbackFor(ctx, env, tag, from)
	if _, refused := deploy.IsRefusal(err); refused || res.RequestID == 0 && err != nil {
		return res, err
	}
	// A failure to record it is not the rollback's: the PR comment stays
	// the authoritative answer.
	if derr := r.record(context.WithoutCancel(ctx), env, from, res, err); derr != nil {
		slog.Warn("rollback deployment not recorded on GitHub", "repo", from.Repo, "env", env, "error", derr)
	}
	return res, err
}

func (r RollbackDeployments) record(ctx context.Context, env string, from deploy.Request, res deploy.Result, rerr error) error {
	gh, owner, name, err := r.API.client(ctx, from.Repo)
	if err != nil {
		return err
	}
	repo, _, err := gh.Repositories.Get(ctx, owner, name)
	if err != nil {
		return err
	}
	desc := fmt.Sprintf("Rollback of %s to %s by @%s", env, res.Tag, from.Requester)
	if len(desc) > 140 {
		desc = desc[:139] + "…"
	}
	environment := prflow.DeploymentEnv(env)
	d, _, err := gh.Repositories.CreateDeployment(ctx, owner, name, &github.DeploymentRequest{
		Ref: github.String(repo.GetDefaultBranch()), Task: github.String("rollback"), Environment: github.String(environment),
		Description: github.String(desc), AutoMerge: github.Bool(false), RequiredContexts: &[]string{},
		ProductionEnvironment: github.Bool(env == deploy.EnvProd),
	})
	if err != nil {
		return fmt.Errorf("create deployment: %w", err)
	}
	st, sdesc := "success", fmt.Sprintf("rolled back to %s (revision %d)", res.Tag, res.Revision)
	if rerr != nil || res.Error != "" {
		st, sdesc = "failure", "rollback failed: "+strings.TrimSpace(res.Error)
		if rerr != nil {
			sdesc = "rollback failed: " + rerr.Error()
		}
	}
	if len(sdesc) > 140 {
		sdesc = sdesc[:139] + "…"
	}
	req := &github.DeploymentStatusRequest{State: github.String(st), Description: github.String(sdesc)}
	if from.PR > 0 {
		// The rollback's answer is on the PR where it was asked for.
		req.LogURL = github.String(fmt.Sprintf("https://github.com/%s/pull/%d", from.Repo, from.PR))
	}
	if u := r.API.EnvironmentURLs[environment]; u != "" {
		req.EnvironmentURL = github.String(u)
	}
	_, _, err = gh.Repositories.CreateDeploymentStatus(ctx, owner, name, d.GetID(), req)
	return err
}

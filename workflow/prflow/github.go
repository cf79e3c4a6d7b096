package prflow

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/compatbot/compatbot/bot/checks"
	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/bot/handlers"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/state"
	"github.com/google/go-github/v60/github"
)

// ChecksReporter is the Reporter over bot/checks: runs are found or
// created per (repo, SHA, name, trigger), so every call is repeatable.
type ChecksReporter struct {
	Runs    *checks.Runs
	Clients handlers.Clients
}

func (c ChecksReporter) run(ctx context.Context, ref CheckRef) (*github.Client, checks.Run, error) {
	gh, err := c.Clients.Client(ctx, ref.Installation)
	if err != nil {
		return nil, checks.Run{}, err
	}
	run, err := c.Runs.Queue(ctx, gh, checks.Key{Repo: ref.Repo, HeadSHA: ref.HeadSHA, Name: ref.Name, Trigger: ref.Trigger, PR: ref.PR})
	return gh, run, err
}

// Queue creates the run as queued (once).
func (c ChecksReporter) Queue(ctx context.Context, ref CheckRef) error {
	_, _, err := c.run(ctx, ref)
	return err
}

// Progress marks the run in progress with the step's title, summary and
// live-log link. A completed run is left alone.
func (c ChecksReporter) Progress(ctx context.Context, ref CheckRef, chk report.Check) error {
	gh, run, err := c.run(ctx, ref)
	if err != nil {
		return err
	}
	if run.Status == "completed" {
		return nil
	}
	if run, err = c.Runs.Start(ctx, gh, run); err != nil {
		return err
	}
	owner, name, _ := strings.Cut(ref.Repo, "/")
	out := checks.Render(chk, "")
	opt := github.UpdateCheckRunOptions{Name: run.Name, Status: github.String("in_progress"),
		Output: &github.CheckRunOutput{Title: github.String(out.Title), Summary: github.String(out.Summary)}}
	if chk.DetailsURL != "" {
		opt.DetailsURL = github.String(chk.DetailsURL)
	}
	_, _, err = gh.Checks.UpdateCheckRun(ctx, owner, name, run.ID, opt)
	return err
}

// Complete publishes the final content and conclusion.
func (c ChecksReporter) Complete(ctx context.Context, ref CheckRef, chk report.Check) error {
	gh, run, err := c.run(ctx, ref)
	if err != nil {
		return err
	}
	_, err = c.Runs.Complete(ctx, gh, run, chk)
	return err
}

// GitHubAPI is what the Deployer and the deploy package need from GitHub,
// over the App's installation clients: Deployments with statuses, PR
// comments (deploy.Notifier), and the contents API for the changelog
// (deploy.ChangelogStore). The installation of a repository is the one
// prflow recorded from its last event.
type GitHubAPI struct {
	DB      *state.DB
	Clients handlers.Clients
}

func (g GitHubAPI) client(ctx context.Context, repo string) (*github.Client, string, string, error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok {
		return nil, "", "", fmt.Errorf("repository %q is not owner/name", repo)
	}
	inst, err := installation(ctx, g.DB, repo)
	if err != nil {
		return nil, "", "", err
	}
	if inst == 0 {
		return nil, "", "", fmt.Errorf("no App installation is known for %s (no event from it yet)", repo)
	}
	gh, err := g.Clients.Client(ctx, inst)
	return gh, owner, name, err
}

// CreateDeployment creates a Deployment of sha in environment and returns
// its id. Checks are not required (required_contexts empty): compatbot has
// checked the build itself, and a superseded run must not block a deploy.
func (g GitHubAPI) CreateDeployment(ctx context.Context, repo, sha, environment, description string) (int64, error) {
	gh, owner, name, err := g.client(ctx, repo)
	if err != nil {
		return 0, err
	}
	d, _, err := gh.Repositories.CreateDeployment(ctx, owner, name, &github.DeploymentRequest{
		Ref: github.String(sha), Task: github.String("deploy"), Environment: github.String(environment),
		Description: github.String(description), AutoMerge: github.Bool(false), RequiredContexts: &[]string{},
		TransientEnvironment: github.Bool(false), ProductionEnvironment: github.Bool(environment == deploymentEnv(deploy.EnvProd)),
	})
	if err != nil {
		return 0, fmt.Errorf("create deployment of %s to %s: %w", short(sha), environment, err)
	}
	return d.GetID(), nil
}

// SetDeploymentStatus adds a status (in_progress, success, failure, error).
func (g GitHubAPI) SetDeploymentStatus(ctx context.Context, repo string, id int64, st, description string) error {
	gh, owner, name, err := g.client(ctx, repo)
	if err != nil {
		return err
	}
	if len(description) > 140 {
		description = description[:139] + "…"
	}
	_, _, err = gh.Repositories.CreateDeploymentStatus(ctx, owner, name, id, &github.DeploymentStatusRequest{
		State: github.String(st), Description: github.String(description)})
	if err != nil {
		return fmt.Errorf("deployment %d status %s: %w", id, st, err)
	}
	return nil
}

// Comment posts body on PR pr.
func (g GitHubAPI) Comment(ctx context.Context, repo string, pr int, body string) error {
	gh, owner, name, err := g.client(ctx, repo)
	if err != nil {
		return err
	}
	_, _, err = gh.Issues.CreateComment(ctx, owner, name, pr, &github.IssueComment{Body: github.String(body)})
	return err
}

// ReadFile implements deploy.ChangelogStore: fs.ErrNotExist for a file
// (or branch) that does not exist.
func (g GitHubAPI) ReadFile(ctx context.Context, repo, branch, path string) ([]byte, error) {
	data, _, err := g.get(ctx, repo, branch, path)
	return data, err
}

func (g GitHubAPI) get(ctx context.Context, repo, branch, path string) ([]byte, string, error) {
	gh, owner, name, err := g.client(ctx, repo)
	if err != nil {
		return nil, "", err
	}
	// A changelog file that does not exist yet is a true 404, not the
	// eventual consistency ghclient retries right after a webhook.
	ctx = ghclient.WithEventTime(ctx, time.Time{})
	fc, _, resp, err := gh.Repositories.GetContents(ctx, owner, name, path, &github.RepositoryContentGetOptions{Ref: branch})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return nil, "", fmt.Errorf("%s on %s: %w", path, branch, fs.ErrNotExist)
		}
		return nil, "", fmt.Errorf("read %s on %s: %w", path, branch, err)
	}
	if fc == nil {
		return nil, "", fmt.Errorf("%s on %s is a directory", path, branch)
	}
	s, err := fc.GetContent()
	if err != nil {
		return nil, "", fmt.Errorf("read %s on %s: %w", path, branch, err)
	}
	return []byte(s), fc.GetSHA(), nil
}

// CommitFile implements deploy.ChangelogStore: a PUT with the blob sha
// read just before, so a concurrent change makes GitHub answer 409 rather
// than lose it.
func (g GitHubAPI) CommitFile(ctx context.Context, repo, branch, path string, content []byte, message string) error {
	_, sha, err := g.get(ctx, repo, branch, path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	gh, owner, name, err := g.client(ctx, repo)
	if err != nil {
		return err
	}
	opt := &github.RepositoryContentFileOptions{Message: github.String(message), Content: content, Branch: github.String(branch)}
	if sha != "" {
		opt.SHA = github.String(sha)
	}
	if _, _, err := gh.Repositories.CreateFile(ctx, owner, name, path, opt); err != nil {
		return fmt.Errorf("commit %s on %s: %w", path, branch, err)
	}
	return nil
}

// Notifier tells a PR about its deploy outside the command's reply: its
// place in the queue, and the outcome settled by deploy.Recover after a
// restart. It implements deploy.Notifier.
type Notifier struct {
	API GitHubAPI
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

// Package ghports implements the lifecycle's outward ports for GitHub:
// check runs (through bot/checks), Deployments with statuses, PR comments
// and the contents API for the changelog, over the App's installation
// clients.
package ghports

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
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/prflow"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/state"
	"github.com/google/go-github/v60/github"
)

// ChecksReporter is the Reporter over bot/checks: runs are found or
// created per (repo, SHA, name, trigger), so every call is repeatable.
type ChecksReporter struct {
	Runs    *checks.Runs
	Clients Clients
}

func (c ChecksReporter) run(ctx context.Context, ref prflow.CheckRef) (*github.Client, checks.Run, error) {
	gh, err := c.Clients.Client(ctx, ref.Installation)
	if err != nil {
		return nil, checks.Run{}, err
	}
	run, err := c.Runs.Queue(ctx, gh, checks.Key{Repo: ref.Repo, HeadSHA: ref.HeadSHA, Name: ref.Name, Trigger: ref.Trigger, PR: ref.PR})
	return gh, run, err
}

// Queue creates the run as queued (once).
func (c ChecksReporter) Queue(ctx context.Context, ref prflow.CheckRef) error {
	_, _, err := c.run(ctx, ref)
	return err
}

// Progress marks the run in progress with the step's title, summary and
// live-log link. A completed run is left alone.
func (c ChecksReporter) Progress(ctx context.Context, ref prflow.CheckRef, chk report.Check) error {
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
func (c ChecksReporter) Complete(ctx context.Context, ref prflow.CheckRef, chk report.Check) error {
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
	Clients Clients
	// PublicURL, when set, makes every deployment status link its log:
	// log_url PublicURL/deployments/<id> (DeploymentLogHandler).
	PublicURL string
	// EnvironmentURLs are the environment_url of each GitHub environment
	// ("compat-test", "compat-prod"): where the deployed tree is seen
	// (the CVMFS repository, a status page); from targets.<env>.url.
	EnvironmentURLs map[string]string
}

func (g GitHubAPI) client(ctx context.Context, repo string) (*github.Client, string, string, error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok {
		return nil, "", "", fmt.Errorf("repository %q is not owner/name", repo)
	}
	inst, err := prflow.KnownInstallation(ctx, g.DB, repo)
	if err != nil {
		return nil, "", "", err
	}
	if inst == 0 {
		// No event from the repository yet (the App was installed
		// before compatbot ran, or its events were lost): ask GitHub,
		// and remember the answer for the next call.
		finder, ok := g.Clients.(InstallationFinder)
		if !ok {
			return nil, "", "", fmt.Errorf("no App installation is known for %s (no event from it yet)", repo)
		}
		if inst, err = finder.RepoInstallation(ctx, owner, name); err != nil {
			return nil, "", "", fmt.Errorf("no App installation is known for %s and GitHub could not name one: %w", repo, err)
		}
		if err := prflow.RememberInstallation(ctx, g.DB, repo, inst); err != nil {
			return nil, "", "", err
		}
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
		TransientEnvironment: github.Bool(false), ProductionEnvironment: github.Bool(environment == prflow.DeploymentEnv(deploy.EnvProd)),
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
	req := &github.DeploymentStatusRequest{State: github.String(st), Description: github.String(description)}
	if g.PublicURL != "" {
		req.LogURL = github.String(fmt.Sprintf("%s/deployments/%d", strings.TrimSuffix(g.PublicURL, "/"), id))
	}
	if len(g.EnvironmentURLs) > 0 {
		// The status names no environment: the deployment's is read
		// back (one GET; statuses are a few per deploy).
		dep, _, err := gh.Repositories.GetDeployment(ctx, owner, name, id)
		if err != nil {
			return fmt.Errorf("deployment %d: %w", id, err)
		}
		if u := g.EnvironmentURLs[dep.GetEnvironment()]; u != "" {
			req.EnvironmentURL = github.String(u)
		}
	}
	_, _, err = gh.Repositories.CreateDeploymentStatus(ctx, owner, name, id, req)
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

// Clients hands out GitHub clients per App installation; *ghclient.Factory
// is the implementation.
type Clients interface {
	Client(ctx context.Context, installationID int64) (*github.Client, error)
	InstallationToken(ctx context.Context, installationID int64) (string, error)
}

// InstallationFinder is implemented by Clients that can ask GitHub which
// installation sees a repository (ghclient.Factory, with the App's JWT).
type InstallationFinder interface {
	RepoInstallation(ctx context.Context, owner, name string) (int64, error)
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

var (
	_ prflow.Reporter       = ChecksReporter{}
	_ prflow.Deployments    = GitHubAPI{}
	_ prflow.Commenter      = GitHubAPI{}
	_ deploy.ChangelogStore = GitHubAPI{}
	_ Clients               = (*ghclient.Factory)(nil)
)

package prflow

import (
	"context"
	"fmt"
	"io/fs"
	"sync"

	"github.com/compatbot/compatbot/workflow/report"
)

// portsDouble stands in for GitHub behind the lifecycle's outward ports
// (GitHub cannot be reached from tests; bot/ghports is tested against
// bot/githubfake and the whole path end to end in cmd/compatbot). It keeps
// GitHub's semantics the lifecycle relies on: a check run is one per
// (SHA, name, trigger) however often it is queued, a completed run is not
// moved back to in progress, Deployments keep their statuses in order,
// and a file read before it was ever committed is fs.ErrNotExist.
type portsDouble struct {
	mu       sync.Mutex
	runs     []*checkRun
	deps     []*deployment
	files    map[string][]byte
	comments []string
	calls    int
	created  int
}

type checkRun struct {
	HeadSHA, Name, Trigger           string
	Status, Conclusion               string
	Title, Summary, Text, DetailsURL string
}

type deployment struct {
	ID               int64
	SHA, Environment string
	Statuses         []string
}

func newPortsDouble() *portsDouble { return &portsDouble{files: map[string][]byte{}} }

func (p *portsDouble) run(ref CheckRef) *checkRun {
	p.calls++
	for _, r := range p.runs {
		if r.HeadSHA == ref.HeadSHA && r.Name == ref.Name && r.Trigger == ref.Trigger {
			return r
		}
	}
	r := &checkRun{HeadSHA: ref.HeadSHA, Name: ref.Name, Trigger: ref.Trigger, Status: "queued"}
	p.runs = append(p.runs, r)
	p.created++
	return r
}

func (p *portsDouble) Queue(ctx context.Context, ref CheckRef) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.run(ref)
	return nil
}

func (p *portsDouble) Progress(ctx context.Context, ref CheckRef, c report.Check) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.run(ref)
	if r.Status == "completed" {
		return nil
	}
	r.Status, r.Title, r.Summary = "in_progress", c.Title, c.Summary
	if c.DetailsURL != "" {
		r.DetailsURL = c.DetailsURL
	}
	return nil
}

func (p *portsDouble) Complete(ctx context.Context, ref CheckRef, c report.Check) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.run(ref)
	r.Status, r.Conclusion, r.Title, r.Summary, r.Text = "completed", string(c.Conclusion), c.Title, c.Summary, c.Text
	if c.DetailsURL != "" {
		r.DetailsURL = c.DetailsURL
	}
	return nil
}

// CheckRuns is a snapshot of every run.
func (p *portsDouble) CheckRuns() []checkRun {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]checkRun, len(p.runs))
	for i, r := range p.runs {
		out[i] = *r
	}
	return out
}

// Created counts the check runs created; Calls every call made.
func (p *portsDouble) Created() int { p.mu.Lock(); defer p.mu.Unlock(); return p.created }
func (p *portsDouble) Calls() int   { p.mu.Lock(); defer p.mu.Unlock(); return p.calls }

func (p *portsDouble) CreateDeployment(ctx context.Context, repo, sha, environment, description string) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	d := &deployment{ID: int64(len(p.deps) + 1), SHA: sha, Environment: environment}
	p.deps = append(p.deps, d)
	return d.ID, nil
}

func (p *portsDouble) SetDeploymentStatus(ctx context.Context, repo string, id int64, state, description string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if id < 1 || int(id) > len(p.deps) {
		return fmt.Errorf("404 Not Found: deployment %d", id)
	}
	p.deps[id-1].Statuses = append(p.deps[id-1].Statuses, state)
	return nil
}

func (p *portsDouble) Deployments() []deployment {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]deployment, len(p.deps))
	for i, d := range p.deps {
		out[i] = *d
		out[i].Statuses = append([]string(nil), d.Statuses...)
	}
	return out
}

func (p *portsDouble) Comment(ctx context.Context, repo string, pr int, body string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.comments = append(p.comments, body)
	return nil
}

func (p *portsDouble) ReadFile(ctx context.Context, repo, branch, path string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.files[repo+"@"+branch+":"+path]
	if !ok {
		return nil, fmt.Errorf("%s on %s: %w", path, branch, fs.ErrNotExist)
	}
	return append([]byte(nil), b...), nil
}

func (p *portsDouble) CommitFile(ctx context.Context, repo, branch, path string, content []byte, message string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.files[repo+"@"+branch+":"+path] = append([]byte(nil), content...)
	return nil
}

// File is a committed file's content.
func (p *portsDouble) File(repo, branch, path string) ([]byte, bool) {
	b, err := p.ReadFile(context.Background(), repo, branch, path)
	return b, err == nil
}

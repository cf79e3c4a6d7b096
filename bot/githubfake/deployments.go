package githubfake

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Deployment is a GitHub Deployment with its statuses (oldest first).
type Deployment struct {
	ID          int64
	Repo        string
	Ref, SHA    string
	Task        string
	Environment string
	Description string
	Payload     json.RawMessage
	Creator     string
	CreatedAt   time.Time
	Statuses    []DeploymentStatus
}

// DeploymentStatus is one status of a Deployment.
type DeploymentStatus struct {
	ID             int64
	State          string
	Description    string
	LogURL         string
	EnvironmentURL string
	Environment    string
	CreatedAt      time.Time
}

var deploymentStates = []string{"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}

// Deployments returns the repository's deployments, oldest first.
func (s *Server) Deployments(repo string) []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copies(s.deploys, func(d *Deployment) bool { return d.Repo == repo }, func(d *Deployment) Deployment {
		cp := *d
		cp.Statuses = slices.Clone(d.Statuses)
		return cp
	})
}

func (s *Server) deploymentJSON(d *Deployment) map[string]any {
	payload := d.Payload
	if len(payload) == 0 {
		payload = json.RawMessage(`{}`)
	}
	return map[string]any{
		"id": d.ID, "ref": d.Ref, "sha": d.SHA, "task": d.Task, "environment": d.Environment,
		"description": d.Description, "payload": payload, "creator": userJSON(d.Creator),
		"created_at": d.CreatedAt.Format(time.RFC3339), "updated_at": d.CreatedAt.Format(time.RFC3339),
		"statuses_url": s.URL + "/repos/" + d.Repo + "/deployments/" + strconv.FormatInt(d.ID, 10) + "/statuses",
	}
}

func statusJSON(st *DeploymentStatus) map[string]any {
	return map[string]any{
		"id": st.ID, "state": st.State, "description": st.Description, "log_url": st.LogURL, "target_url": st.LogURL,
		"environment_url": st.EnvironmentURL, "environment": st.Environment, "created_at": st.CreatedAt.Format(time.RFC3339),
	}
}

// resolveRef turns a deployment ref into a SHA as GitHub would: a full SHA,
// a branch, or a PR head ref the fake knows.
func resolveRef(repo *Repo, ref string) (string, bool) {
	if shaRE.MatchString(ref) {
		return ref, true
	}
	if sha, ok := repo.Branches[ref]; ok {
		return sha, true
	}
	for _, p := range repo.pulls {
		if p.HeadRef == ref {
			return p.HeadSHA, true
		}
	}
	return "", false
}

type deploymentInput struct {
	Ref              *string         `json:"ref"`
	Task             *string         `json:"task"`
	Environment      *string         `json:"environment"`
	Description      *string         `json:"description"`
	Payload          json.RawMessage `json:"payload"`
	RequiredContexts *[]string       `json:"required_contexts"`
}

func (s *Server) createDeployment(w http.ResponseWriter, r *http.Request, repo *Repo, in *deploymentInput) {
	if in.Ref == nil || *in.Ref == "" {
		writeValidation(w, ValidationError{Resource: "Deployment", Code: "missing_field", Field: "ref"})
		return
	}
	sha, ok := resolveRef(repo, *in.Ref)
	if !ok {
		writeError(w, http.StatusUnprocessableEntity, "No ref found for: "+*in.Ref)
		return
	}
	full := repo.fullName()
	// Without required_contexts GitHub verifies every check of the commit
	// and refuses with 409 while one has not succeeded.
	if in.RequiredContexts == nil {
		for _, c := range s.checkRuns {
			if c.Repo == full && c.HeadSHA == sha && !(c.Status == "completed" && slices.Contains([]string{"success", "neutral", "skipped"}, c.Conclusion)) {
				writeError(w, http.StatusConflict, "Conflict: Commit status checks failed for "+*in.Ref+".")
				return
			}
		}
	}
	d := &Deployment{ID: s.id(), Repo: full, Ref: *in.Ref, SHA: sha, Task: "deploy", Environment: "production", Payload: in.Payload, Creator: s.botLogin(), CreatedAt: time.Now().UTC()}
	setIf(&d.Task, in.Task)
	setIf(&d.Environment, in.Environment)
	setIf(&d.Description, in.Description)
	if len(d.Payload) > 0 && d.Payload[0] == '"' {
		// GitHub accepts the payload as a JSON string too and stores it as is.
		var str string
		json.Unmarshal(d.Payload, &str)
		d.Payload, _ = json.Marshal(str)
	}
	s.deploys[d.ID] = d
	writeJSON(w, http.StatusCreated, s.deploymentJSON(d))
}

func (s *Server) findDeployment(w http.ResponseWriter, r *http.Request, repo *Repo) *Deployment {
	return byID(w, r, repo, s.deploys, func(d *Deployment) string { return d.Repo })
}

func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request, repo *Repo) {
	if d := s.findDeployment(w, r, repo); d != nil {
		writeJSON(w, http.StatusOK, s.deploymentJSON(d))
	}
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request, repo *Repo) {
	q := r.URL.Query()
	var list []*Deployment
	for _, d := range s.deploys {
		if d.Repo == repo.fullName() &&
			(q.Get("sha") == "" || d.SHA == q.Get("sha")) && (q.Get("ref") == "" || d.Ref == q.Get("ref")) &&
			(q.Get("environment") == "" || d.Environment == q.Get("environment")) && (q.Get("task") == "" || d.Task == q.Get("task")) {
			list = append(list, d)
		}
	}
	slices.SortFunc(list, func(a, b *Deployment) int { return int(b.ID - a.ID) })
	writeList(w, list, s.deploymentJSON)
}

type deploymentStatusInput struct {
	State          string `json:"state"`
	Description    string `json:"description"`
	LogURL         string `json:"log_url"`
	TargetURL      string `json:"target_url"`
	EnvironmentURL string `json:"environment_url"`
	Environment    string `json:"environment"`
	AutoInactive   *bool  `json:"auto_inactive"`
}

func (s *Server) createDeploymentStatus(w http.ResponseWriter, r *http.Request, repo *Repo, in *deploymentStatusInput) {
	d := s.findDeployment(w, r, repo)
	if d == nil {
		return
	}
	if !slices.Contains(deploymentStates, in.State) {
		writeValidation(w, ValidationError{Resource: "DeploymentStatus", Code: "invalid", Field: "state"})
		return
	}
	if utf8.RuneCountInString(in.Description) > 140 {
		writeValidation(w, ValidationError{Resource: "DeploymentStatus", Code: "custom", Field: "description", Message: "description is too long (maximum is 140 characters)"})
		return
	}
	if in.LogURL == "" {
		in.LogURL = in.TargetURL
	}
	if in.Environment != "" {
		d.Environment = in.Environment
	}
	st := DeploymentStatus{ID: s.id(), State: in.State, Description: in.Description, LogURL: in.LogURL, EnvironmentURL: in.EnvironmentURL, Environment: d.Environment, CreatedAt: time.Now().UTC()}
	d.Statuses = append(d.Statuses, st)
	// auto_inactive (default true): a success marks the environment's
	// earlier successful deployments inactive.
	if in.State == "success" && (in.AutoInactive == nil || *in.AutoInactive) {
		for _, o := range s.deploys {
			if o.ID != d.ID && o.Repo == d.Repo && o.Environment == d.Environment && len(o.Statuses) > 0 && o.Statuses[len(o.Statuses)-1].State == "success" {
				o.Statuses = append(o.Statuses, DeploymentStatus{ID: s.id(), State: "inactive", Environment: o.Environment, CreatedAt: time.Now().UTC()})
			}
		}
	}
	writeJSON(w, http.StatusCreated, statusJSON(&st))
}

func (s *Server) listDeploymentStatuses(w http.ResponseWriter, r *http.Request, repo *Repo) {
	d := s.findDeployment(w, r, repo)
	if d == nil {
		return
	}
	newest := slices.Clone(d.Statuses)
	slices.Reverse(newest)
	writeList(w, newest, func(st DeploymentStatus) map[string]any { return statusJSON(&st) })
}

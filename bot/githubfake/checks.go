package githubfake

import (
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// CheckRun is a check run as the fake stores it.
type CheckRun struct {
	ID          int64
	Repo        string
	Name        string
	HeadSHA     string
	ExternalID  string
	Status      string
	Conclusion  string
	DetailsURL  string
	Title       string
	Summary     string
	Text        string
	Annotations []Annotation
	Actions     []Action
	StartedAt   time.Time
	CompletedAt time.Time
	Updates     int
}

// Annotation of a check run.
type Annotation struct {
	Path            string `json:"path"`
	StartLine       int    `json:"start_line"`
	EndLine         int    `json:"end_line"`
	StartColumn     *int   `json:"start_column,omitempty"`
	EndColumn       *int   `json:"end_column,omitempty"`
	AnnotationLevel string `json:"annotation_level"`
	Message         string `json:"message"`
	Title           string `json:"title,omitempty"`
	RawDetails      string `json:"raw_details,omitempty"`
}

// Action is a requested-action button.
type Action struct {
	Label       string `json:"label"`
	Description string `json:"description"`
	Identifier  string `json:"identifier"`
}

type checkRunInput struct {
	Name        *string  `json:"name"`
	HeadSHA     *string  `json:"head_sha"`
	ExternalID  *string  `json:"external_id"`
	DetailsURL  *string  `json:"details_url"`
	Status      *string  `json:"status"`
	Conclusion  *string  `json:"conclusion"`
	StartedAt   *string  `json:"started_at"`
	CompletedAt *string  `json:"completed_at"`
	Actions     []Action `json:"actions"`
	Output      *struct {
		Title       *string      `json:"title"`
		Summary     *string      `json:"summary"`
		Text        *string      `json:"text"`
		Annotations []Annotation `json:"annotations"`
	} `json:"output"`
}

// MaxOutput is GitHub's limit on a check run's output.summary and
// output.text, in characters.
const MaxOutput = 65535

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

var conclusions = []string{"action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"}

// CheckRuns returns the repository's check runs, oldest first.
func (s *Server) CheckRuns(repo string) []CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copies(s.checkRuns, func(c *CheckRun) bool { return c.Repo == repo }, func(c *CheckRun) CheckRun {
		cp := *c
		cp.Annotations = slices.Clone(c.Annotations)
		return cp
	})
}

// validate applies GitHub's rules for a create (create=true) or update.
func (in *checkRunInput) validate(create bool) []ValidationError {
	var errs []ValidationError
	bad := func(field, msg string) {
		errs = append(errs, ValidationError{Resource: "CheckRun", Code: "custom", Field: field, Message: msg})
	}
	if create && (in.Name == nil || *in.Name == "") {
		errs = append(errs, ValidationError{Resource: "CheckRun", Code: "missing_field", Field: "name"})
	}
	if create && (in.HeadSHA == nil || *in.HeadSHA == "") {
		errs = append(errs, ValidationError{Resource: "CheckRun", Code: "missing_field", Field: "head_sha"})
	}
	if in.Status != nil && !slices.Contains([]string{"queued", "in_progress", "completed"}, *in.Status) {
		bad("status", *in.Status+" is not a valid status")
	}
	if in.Conclusion != nil && !slices.Contains(conclusions, *in.Conclusion) {
		bad("conclusion", *in.Conclusion+" is not a valid conclusion")
	}
	if in.Status != nil && *in.Status == "completed" && in.Conclusion == nil {
		bad("conclusion", "conclusion is required when status is completed")
	}
	if len(in.Actions) > 3 {
		bad("actions", "at most 3 actions are allowed")
	}
	for _, a := range in.Actions {
		if a.Label == "" || utf8.RuneCountInString(a.Label) > 20 || a.Description == "" || utf8.RuneCountInString(a.Description) > 40 || a.Identifier == "" || utf8.RuneCountInString(a.Identifier) > 20 {
			bad("actions", "label (max 20), description (max 40) and identifier (max 20) are required")
		}
	}
	if o := in.Output; o != nil {
		if o.Title == nil || o.Summary == nil {
			errs = append(errs, ValidationError{Resource: "CheckRun", Code: "missing_field", Field: "output.title/output.summary"})
		}
		if o.Summary != nil && utf8.RuneCountInString(*o.Summary) > MaxOutput {
			bad("output.summary", "summary is too long (maximum is 65535 characters)")
		}
		if o.Text != nil && utf8.RuneCountInString(*o.Text) > MaxOutput {
			bad("output.text", "text is too long (maximum is 65535 characters)")
		}
		if len(o.Annotations) > 50 {
			bad("output.annotations", "Only 50 annotations can be sent per request")
		}
		for _, a := range o.Annotations {
			if a.Path == "" || a.StartLine < 1 || a.EndLine < a.StartLine || a.Message == "" ||
				!slices.Contains([]string{"notice", "warning", "failure"}, a.AnnotationLevel) {
				bad("output.annotations", "path, start_line, end_line >= start_line, annotation_level (notice, warning, failure) and message are required")
			}
			if (a.StartColumn != nil || a.EndColumn != nil) && a.StartLine != a.EndLine {
				bad("output.annotations", "start_column and end_column may only be given when start_line equals end_line")
			}
		}
	}
	return errs
}

func (c *CheckRun) apply(in *checkRunInput) {
	setIf(&c.Name, in.Name)
	setIf(&c.ExternalID, in.ExternalID)
	setIf(&c.DetailsURL, in.DetailsURL)
	if in.Status != nil {
		c.Status = *in.Status
		if c.Status == "in_progress" && c.StartedAt.IsZero() {
			c.StartedAt = time.Now()
		}
	}
	if in.Conclusion != nil {
		// As on GitHub, a conclusion completes the run.
		c.Conclusion = *in.Conclusion
		c.Status = "completed"
		c.CompletedAt = time.Now()
	}
	if in.Actions != nil {
		c.Actions = in.Actions
	}
	if o := in.Output; o != nil {
		setIf(&c.Title, o.Title)
		setIf(&c.Summary, o.Summary)
		setIf(&c.Text, o.Text)
		// GitHub appends the annotations of each update.
		c.Annotations = append(c.Annotations, o.Annotations...)
	}
}

func (s *Server) checkRunJSON(c *CheckRun) map[string]any {
	var started, completed any
	if !c.StartedAt.IsZero() {
		started = c.StartedAt.UTC().Format(time.RFC3339)
	}
	if !c.CompletedAt.IsZero() {
		completed = c.CompletedAt.UTC().Format(time.RFC3339)
	}
	var conclusion any
	if c.Conclusion != "" {
		conclusion = c.Conclusion
	}
	return map[string]any{
		"id": c.ID, "name": c.Name, "head_sha": c.HeadSHA, "external_id": c.ExternalID,
		"status": c.Status, "conclusion": conclusion, "details_url": c.DetailsURL,
		"started_at": started, "completed_at": completed,
		"output":   map[string]any{"title": c.Title, "summary": c.Summary, "text": c.Text, "annotations_count": len(c.Annotations)},
		"app":      map[string]any{"id": s.AppID, "slug": s.AppSlug},
		"html_url": "https://github.com/" + c.Repo + "/runs/" + strconv.FormatInt(c.ID, 10),
	}
}

// commitExists asks the real git remote, when it is a local path, whether
// sha is a commit of the repository: GitHub refuses check runs for unknown
// commits.
func commitExists(repo *Repo, sha string) bool {
	if !shaRE.MatchString(sha) {
		return false
	}
	dir, ok := repo.GitDir, repo.GitDir != ""
	if !ok {
		dir, ok = localGitDir(repo.CloneURL)
	}
	if !ok {
		return true
	}
	return exec.Command("git", "--git-dir", dir, "cat-file", "-e", sha+"^{commit}").Run() == nil
}

func localGitDir(cloneURL string) (string, bool) {
	if len(cloneURL) > 7 && cloneURL[:7] == "file://" {
		return cloneURL[7:], true
	}
	if len(cloneURL) > 0 && cloneURL[0] == '/' {
		return cloneURL, true
	}
	return "", false
}

func (s *Server) createCheckRun(w http.ResponseWriter, r *http.Request, repo *Repo, in *checkRunInput) {
	if errs := in.validate(true); len(errs) > 0 {
		writeValidation(w, errs...)
		return
	}
	if !commitExists(repo, *in.HeadSHA) {
		writeError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+*in.HeadSHA)
		return
	}
	c := &CheckRun{ID: s.id(), Repo: repo.fullName(), HeadSHA: *in.HeadSHA, Status: "queued"}
	c.apply(in)
	s.checkRuns[c.ID] = c
	writeJSON(w, http.StatusCreated, s.checkRunJSON(c))
}

func (s *Server) findRun(w http.ResponseWriter, r *http.Request, repo *Repo) *CheckRun {
	return byID(w, r, repo, s.checkRuns, func(c *CheckRun) string { return c.Repo })
}

func (s *Server) updateCheckRun(w http.ResponseWriter, r *http.Request, repo *Repo, in *checkRunInput) {
	c := s.findRun(w, r, repo)
	if c == nil {
		return
	}
	if errs := in.validate(false); len(errs) > 0 {
		writeValidation(w, errs...)
		return
	}
	c.apply(in)
	c.Updates++
	writeJSON(w, http.StatusOK, s.checkRunJSON(c))
}

func (s *Server) getCheckRun(w http.ResponseWriter, r *http.Request, repo *Repo) {
	if c := s.findRun(w, r, repo); c != nil {
		writeJSON(w, http.StatusOK, s.checkRunJSON(c))
	}
}

func (s *Server) listAnnotations(w http.ResponseWriter, r *http.Request, repo *Repo) {
	if c := s.findRun(w, r, repo); c != nil {
		writeJSON(w, http.StatusOK, c.Annotations)
	}
}

func (s *Server) listCheckRuns(w http.ResponseWriter, r *http.Request, repo *Repo) {
	ref := r.PathValue("ref")
	if sha, ok := repo.Branches[ref]; ok {
		ref = sha
	}
	name := r.URL.Query().Get("check_name")
	status := r.URL.Query().Get("status")
	var ids []int64
	for id, c := range s.checkRuns {
		if c.Repo == repo.fullName() && c.HeadSHA == ref && (name == "" || c.Name == name) && (status == "" || c.Status == status) {
			ids = append(ids, id)
		}
	}
	// Newest first, as GitHub lists them; with the default filter=latest
	// only the newest run of each name.
	slices.Sort(ids)
	slices.Reverse(ids)
	runs := []map[string]any{}
	seen := map[string]bool{}
	for _, id := range ids {
		c := s.checkRuns[id]
		if r.URL.Query().Get("filter") != "all" && seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		runs = append(runs, s.checkRunJSON(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"total_count": len(runs), "check_runs": runs})
}

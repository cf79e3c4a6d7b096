package githubfake

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Comment is an issue or pull request comment.
type Comment struct {
	ID        int64
	Repo      string
	Issue     int
	User      string
	Body      string
	CreatedAt time.Time
}

// Reaction on a comment.
type Reaction struct {
	User    string
	Content string
}

var reactionContents = []string{"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}

// AddComment stores a comment by login as if a person had written it, and
// returns it (its ID and CreatedAt go into the webhook payload).
func (s *Server) AddComment(repo string, issue int, login, body string) Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &Comment{ID: s.id(), Repo: repo, Issue: issue, User: login, Body: body, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	s.comments[c.ID] = c
	return *c
}

// Comments returns the comments on an issue or PR, oldest first.
func (s *Server) Comments(repo string, issue int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, c := range s.comments {
		if c.Repo == repo && c.Issue == issue {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b Comment) int { return int(a.ID - b.ID) })
	return out
}

// Reactions returns the reactions on a comment.
func (s *Server) Reactions(commentID int64) []Reaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reactions[commentID])
}

func (s *Server) botLogin() string { return s.AppSlug + "[bot]" }

func (s *Server) commentJSON(c *Comment) map[string]any {
	return map[string]any{
		"id": c.ID, "body": c.Body, "user": userJSON(c.User),
		"created_at": c.CreatedAt.Format(time.RFC3339), "updated_at": c.CreatedAt.Format(time.RFC3339),
		"html_url": "https://github.com/" + c.Repo + "/pull/" + strconv.Itoa(c.Issue) + "#issuecomment-" + strconv.FormatInt(c.ID, 10),
	}
}

func (s *Server) createComment(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Body *string `json:"body"`
	}
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	repo := s.repo(w, r)
	if repo == nil {
		return
	}
	n, _ := strconv.Atoi(r.PathValue("number"))
	if !repo.issues[n] {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	if in.Body == nil || strings.TrimSpace(*in.Body) == "" {
		writeValidation(w, ValidationError{Resource: "IssueComment", Code: "missing_field", Field: "body"})
		return
	}
	if utf8.RuneCountInString(*in.Body) > 65536 {
		writeValidation(w, ValidationError{Resource: "IssueComment", Code: "custom", Field: "body", Message: "body is too long (maximum is 65536 characters)"})
		return
	}
	c := &Comment{ID: s.id(), Repo: repo.Owner + "/" + repo.Name, Issue: n, User: s.botLogin(), Body: *in.Body, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	s.comments[c.ID] = c
	writeJSON(w, http.StatusCreated, s.commentJSON(c))
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	repo := s.repo(w, r)
	if repo == nil {
		return
	}
	n, _ := strconv.Atoi(r.PathValue("number"))
	if !repo.issues[n] {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	full := repo.Owner + "/" + repo.Name
	var ids []int64
	for id, c := range s.comments {
		if c.Repo == full && c.Issue == n {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	// Pagination as GitHub does it (page, per_page up to 100).
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 || per > 100 {
		per = 30
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page <= 0 {
		page = 1
	}
	lo, hi := min((page-1)*per, len(ids)), min(page*per, len(ids))
	if hi < len(ids) {
		w.Header().Set("Link", "<"+s.URL+r.URL.Path+"?per_page="+strconv.Itoa(per)+"&page="+strconv.Itoa(page+1)+`>; rel="next"`)
	}
	out := []map[string]any{}
	for _, id := range ids[lo:hi] {
		out = append(out, s.commentJSON(s.comments[id]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createReaction(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Content string `json:"content"`
	}
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	repo := s.repo(w, r)
	if repo == nil {
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	c, ok := s.comments[id]
	if !ok || c.Repo != repo.Owner+"/"+repo.Name {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	if !slices.Contains(reactionContents, in.Content) {
		writeValidation(w, ValidationError{Resource: "Reaction", Code: "invalid", Field: "content"})
		return
	}
	rj := map[string]any{"id": id*10 + int64(slices.Index(reactionContents, in.Content)), "content": in.Content, "user": userJSON(s.botLogin())}
	// GitHub answers 200 with the existing reaction when it is already there.
	for _, x := range s.reactions[id] {
		if x.Content == in.Content && x.User == s.botLogin() {
			writeJSON(w, http.StatusOK, rj)
			return
		}
	}
	s.reactions[id] = append(s.reactions[id], Reaction{User: s.botLogin(), Content: in.Content})
	writeJSON(w, http.StatusCreated, rj)
}

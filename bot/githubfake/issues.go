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
	return copies(s.comments, func(c *Comment) bool { return c.Repo == repo && c.Issue == issue }, func(c *Comment) Comment { return *c })
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

type commentInput struct {
	Body *string `json:"body"`
}

func (s *Server) createComment(w http.ResponseWriter, r *http.Request, repo *Repo, in *commentInput) {
	n, ok := issue(w, r, repo)
	if !ok {
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
	c := &Comment{ID: s.id(), Repo: repo.fullName(), Issue: n, User: s.botLogin(), Body: *in.Body, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	s.comments[c.ID] = c
	writeJSON(w, http.StatusCreated, s.commentJSON(c))
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request, repo *Repo) {
	n, ok := issue(w, r, repo)
	if !ok {
		return
	}
	var ids []int64
	for id, c := range s.comments {
		if c.Repo == repo.fullName() && c.Issue == n {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	lo, hi := s.page(w, r, len(ids))
	writeList(w, ids[lo:hi], func(id int64) map[string]any { return s.commentJSON(s.comments[id]) })
}

type reactionInput struct {
	Content string `json:"content"`
}

func (s *Server) createReaction(w http.ResponseWriter, r *http.Request, repo *Repo, in *reactionInput) {
	c := byID(w, r, repo, s.comments, func(c *Comment) string { return c.Repo })
	if c == nil {
		return
	}
	if !slices.Contains(reactionContents, in.Content) {
		writeValidation(w, ValidationError{Resource: "Reaction", Code: "invalid", Field: "content"})
		return
	}
	rj := map[string]any{"id": c.ID*10 + int64(slices.Index(reactionContents, in.Content)), "content": in.Content, "user": userJSON(s.botLogin())}
	// GitHub answers 200 with the existing reaction when it is already there.
	for _, x := range s.reactions[c.ID] {
		if x.Content == in.Content && x.User == s.botLogin() {
			writeJSON(w, http.StatusOK, rj)
			return
		}
	}
	s.reactions[c.ID] = append(s.reactions[c.ID], Reaction{User: s.botLogin(), Content: in.Content})
	writeJSON(w, http.StatusCreated, rj)
}

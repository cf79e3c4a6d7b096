package githubfake

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
)

// This file holds what every route shares: reading the request (JSON body,
// repository, objects by id or number) and answering in GitHub's shapes, so
// that each handler holds only its route's own rules.

// ValidationError is one entry of a 422's "errors".
type ValidationError struct {
	Resource string `json:"resource"`
	Code     string `json:"code"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers GitHub's plain error body: a message and the docs link.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg, "documentation_url": DocsURL})
}

func notFound(w http.ResponseWriter) { writeError(w, http.StatusNotFound, "Not Found") }

// writeValidation answers GitHub's 422 "Validation Failed" with its errors.
func writeValidation(w http.ResponseWriter, errs ...ValidationError) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed", "errors": errs, "documentation_url": DocsURL})
}

// writeList answers a JSON array of items as f renders them; an empty list
// is [] as on GitHub, never null.
func writeList[T any](w http.ResponseWriter, items []T, f func(T) map[string]any) {
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		out = append(out, f(it))
	}
	writeJSON(w, http.StatusOK, out)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON")
		return false
	}
	return true
}

// locked runs h with the fake's state locked.
func (s *Server) locked(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		h(w, r)
	}
}

// repoHandler serves a route under /repos/{owner}/{repo}, with the state
// locked and the repository visible to the caller.
type repoHandler func(w http.ResponseWriter, r *http.Request, repo *Repo)

func (s *Server) inRepo(h repoHandler) http.HandlerFunc {
	return s.locked(func(w http.ResponseWriter, r *http.Request) {
		if repo := s.repo(w, r); repo != nil {
			h(w, r, repo)
		}
	})
}

// withBody is inRepo for routes that take a JSON body. The body is decoded
// first: GitHub answers 400 for bad JSON before it looks at the path.
func withBody[T any](s *Server, h func(w http.ResponseWriter, r *http.Request, repo *Repo, in *T)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in T
		if !decode(w, r, &in) {
			return
		}
		s.inRepo(func(w http.ResponseWriter, r *http.Request, repo *Repo) { h(w, r, repo, &in) })(w, r)
	}
}

// byID finds the object named by the path's {id} among objs; one of another
// repository is 404, as GitHub hides it.
func byID[T any](w http.ResponseWriter, r *http.Request, repo *Repo, objs map[int64]*T, repoOf func(*T) string) *T {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	o, ok := objs[id]
	if !ok || repoOf(o) != repo.fullName() {
		notFound(w)
		return nil
	}
	return o
}

// issue is the path's {number} when the repository has that issue or PR.
func issue(w http.ResponseWriter, r *http.Request, repo *Repo) (int, bool) {
	n, _ := strconv.Atoi(r.PathValue("number"))
	if !repo.issues[n] {
		notFound(w)
		return 0, false
	}
	return n, true
}

// page cuts a list of n items as GitHub paginates (page, per_page up to
// 100, default 30) and sets the Link header to the next page if there is
// one; the page is items[lo:hi].
func (s *Server) page(w http.ResponseWriter, r *http.Request, n int) (lo, hi int) {
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 || per > 100 {
		per = 30
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page <= 0 {
		page = 1
	}
	lo, hi = min((page-1)*per, n), min(page*per, n)
	if hi < n {
		w.Header().Set("Link", "<"+s.URL+r.URL.Path+"?per_page="+strconv.Itoa(per)+"&page="+strconv.Itoa(page+1)+`>; rel="next"`)
	}
	return lo, hi
}

// setIf sets *dst from an optional input field that was given.
func setIf[T any](dst, src *T) {
	if src != nil {
		*dst = *src
	}
}

// copies returns what tests may keep of the objects in m that keep selects:
// copies made by cp, oldest (lowest id) first, so that a test never shares
// state with the handlers.
func copies[T any](m map[int64]*T, keep func(*T) bool, cp func(*T) T) []T {
	var ids []int64
	for id, o := range m {
		if keep(o) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var out []T
	for _, id := range ids {
		out = append(out, cp(m[id]))
	}
	return out
}

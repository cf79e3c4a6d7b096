package githubfake

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"
)

type file struct {
	content []byte
	sha     string // git blob SHA, as GitHub reports
}

// FileCommit is a commit made through the contents API.
type FileCommit struct {
	SHA, Branch, Path, Message string
	Content                    []byte
}

func blobSHA(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// SetFile puts a file on a branch of the repository (for the contents API).
func (s *Server) SetFile(repo, branch, p string, content []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repo]
	if r.files[branch] == nil {
		r.files[branch] = map[string]*file{}
	}
	r.files[branch][p] = &file{content: content, sha: blobSHA(content)}
}

// File returns a file's content on a branch and whether it exists.
func (s *Server) File(repo, branch, p string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.repos[repo].files[branch][p]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), f.content...), true
}

// FileCommits lists the commits made through the contents API, oldest first.
func (s *Server) FileCommits(repo string) []FileCommit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]FileCommit(nil), s.repos[repo].fcommits...)
}

func (r *Repo) branchFiles(branch string) (map[string]*file, bool) {
	if branch == "" {
		branch = r.DefaultBranch
	}
	fs, ok := r.files[branch]
	if !ok {
		if _, known := r.Branches[branch]; known || branch == r.DefaultBranch {
			fs = map[string]*file{}
			r.files[branch] = fs
			ok = true
		}
	}
	return fs, ok
}

func (s *Server) fileJSON(repo *Repo, p string, f *file) map[string]any {
	enc := base64.StdEncoding.EncodeToString(f.content)
	// GitHub wraps the base64 content at 60 characters.
	var b strings.Builder
	for len(enc) > 60 {
		b.WriteString(enc[:60] + "\n")
		enc = enc[60:]
	}
	b.WriteString(enc + "\n")
	return map[string]any{
		"type": "file", "encoding": "base64", "size": len(f.content), "name": path.Base(p), "path": p,
		"content": b.String(), "sha": f.sha,
		"url": s.URL + "/repos/" + repo.fullName() + "/contents/" + p,
	}
}

func (s *Server) getContents(w http.ResponseWriter, r *http.Request, repo *Repo) {
	files, ok := repo.branchFiles(r.URL.Query().Get("ref"))
	if !ok {
		writeError(w, http.StatusNotFound, "No commit found for the ref "+r.URL.Query().Get("ref"))
		return
	}
	p := r.PathValue("path")
	f, ok := files[p]
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.fileJSON(repo, p, f))
}

type contentsInput struct {
	Message *string `json:"message"`
	Content *string `json:"content"`
	SHA     *string `json:"sha"`
	Branch  string  `json:"branch"`
}

// putContents creates or updates a file with GitHub's optimistic
// concurrency: updating an existing file needs its current blob sha (422
// without it, 409 when it is stale).
func (s *Server) putContents(w http.ResponseWriter, r *http.Request, repo *Repo, in *contentsInput) {
	if in.Message == nil || in.Content == nil {
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"message\" and \"content\" are required.")
		return
	}
	content, err := base64.StdEncoding.DecodeString(*in.Content)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "content is not valid Base64")
		return
	}
	branch := in.Branch
	if branch == "" {
		branch = repo.DefaultBranch
	}
	files, ok := repo.branchFiles(branch)
	if !ok {
		writeError(w, http.StatusNotFound, "Branch "+branch+" not found")
		return
	}
	p := r.PathValue("path")
	old, exists := files[p]
	switch {
	case exists && (in.SHA == nil || *in.SHA == ""):
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"sha\" wasn't supplied.")
		return
	case exists && *in.SHA != old.sha, !exists && in.SHA != nil && *in.SHA != "":
		writeError(w, http.StatusConflict, p+" does not match "+*in.SHA)
		return
	}
	f := &file{content: content, sha: blobSHA(content)}
	files[p] = f
	commit := randHex(20)
	repo.fcommits = append(repo.fcommits, FileCommit{SHA: commit, Branch: branch, Path: p, Message: *in.Message, Content: content})
	repo.Branches[branch] = commit
	status := http.StatusOK
	if !exists {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{
		"content": s.fileJSON(repo, p, f),
		"commit":  map[string]any{"sha": commit, "message": *in.Message, "author": map[string]any{"name": s.botLogin(), "date": time.Now().UTC().Format(time.RFC3339)}},
	})
}

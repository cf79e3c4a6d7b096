package githubfake

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Repo is a repository the fake knows.
type Repo struct {
	Owner, Name   string
	ID            int64
	Installation  int64 // the App installation that can see it
	DefaultBranch string
	CloneURL      string // a real git remote
	// GitDir, when set, is the remote's bare repository on disk: check runs
	// for commits it lacks are refused with 422, as GitHub does.
	GitDir   string
	Branches map[string]string // branch -> head SHA, for refs given to deployments
	Private  bool

	roles    map[string]string // login -> role_name
	pulls    map[int]*Pull
	issues   map[int]bool
	files    map[string]map[string]*file // branch -> path -> file
	fcommits []FileCommit
}

// Pull is a pull request.
type Pull struct {
	Number  int
	Title   string
	Author  string
	HeadRef string
	HeadSHA string
	BaseRef string
	BaseSHA string
	State   string // "open" or "closed"
	Merged  bool
	Draft   bool
	// Set by Merge: the commit the merge made on the base branch (the
	// squash commit, the last rebased commit or the merge commit) and who
	// merged.
	MergeCommitSHA string
	MergedBy       string
}

type instKey struct{}

func withInstallation(ctx context.Context, id int64) context.Context {
	return context.WithValue(ctx, instKey{}, id)
}

// AddRepo registers owner/name, visible to installation.
func (s *Server) AddRepo(owner, name string, installation int64, cloneURL string) *Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Repo{Owner: owner, Name: name, ID: s.id(), Installation: installation, DefaultBranch: "main", CloneURL: cloneURL,
		Branches: map[string]string{}, roles: map[string]string{}, pulls: map[int]*Pull{}, issues: map[int]bool{}, files: map[string]map[string]*file{}}
	s.repos[owner+"/"+name] = r
	s.users[owner] = true
	return r
}

// AddUser makes login an existing GitHub account (with no access).
func (s *Server) AddUser(login string) {
	s.mu.Lock()
	s.users[strings.ToLower(login)] = true
	s.mu.Unlock()
}

// SetRole gives login a role on the repository: read, triage, write,
// maintain or admin ("" removes it).
func (s *Server) SetRole(repo, login, role string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[strings.ToLower(login)] = true
	r := s.repos[repo]
	if role == "" {
		delete(r.roles, strings.ToLower(login))
	} else {
		r.roles[strings.ToLower(login)] = role
	}
}

// AddTeamMember puts login in org/slug with state "active" or "pending".
func (s *Server) AddTeamMember(orgSlug, login, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[strings.ToLower(login)] = true
	if s.teams[orgSlug] == nil {
		s.teams[orgSlug] = map[string]string{}
	}
	s.teams[orgSlug][strings.ToLower(login)] = state
}

// SetPull adds or replaces a pull request (a new head SHA is a push).
func (s *Server) SetPull(repo string, p Pull) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.State == "" {
		p.State = "open"
	}
	cp := p
	s.repos[repo].pulls[p.Number] = &cp
	s.repos[repo].issues[p.Number] = true
	s.users[strings.ToLower(p.Author)] = true
}

// Pull returns a copy of the pull request.
func (s *Server) Pull(repo string, n int) Pull {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.repos[repo].pulls[n]
}

// repo looks up the path's repository as the caller's token sees it: a repo
// outside the token's installation is 404, as on GitHub.
func (s *Server) repo(w http.ResponseWriter, r *http.Request) *Repo {
	repo, ok := s.repos[r.PathValue("owner")+"/"+r.PathValue("repo")]
	inst, _ := r.Context().Value(instKey{}).(int64)
	if !ok || (inst != 0 && repo.Installation != inst) {
		notFound(w)
		return nil
	}
	return repo
}

func (r *Repo) fullName() string { return r.Owner + "/" + r.Name }

func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	found := false
	for _, repo := range s.repos {
		if repo.Installation == id {
			found = true
		}
	}
	if err != nil || !found {
		notFound(w)
		return
	}
	t := "ghs_" + randHex(18)
	exp := time.Now().Add(time.Hour)
	s.tokens[t] = token{installation: id, expires: exp}
	writeJSON(w, http.StatusCreated, map[string]any{
		"token": t, "expires_at": exp.UTC().Format(time.RFC3339),
		"permissions":          map[string]string{"checks": "write", "contents": "read", "issues": "write", "pull_requests": "write", "metadata": "read", "deployments": "write"},
		"repository_selection": "all",
	})
}

func (s *Server) repoJSON(r *Repo) map[string]any {
	return map[string]any{
		"id": r.ID, "name": r.Name, "full_name": r.fullName(), "private": r.Private,
		"owner":          map[string]any{"login": r.Owner, "type": "Organization"},
		"default_branch": r.DefaultBranch, "clone_url": r.CloneURL,
		"html_url": "https://github.com/" + r.fullName(),
	}
}

func (s *Server) getRepo(w http.ResponseWriter, r *http.Request, repo *Repo) {
	writeJSON(w, http.StatusOK, s.repoJSON(repo))
}

func userJSON(login string) map[string]any {
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	return map[string]any{"login": login, "type": typ}
}

func (s *Server) getPull(w http.ResponseWriter, r *http.Request, repo *Repo) {
	n, _ := strconv.Atoi(r.PathValue("number"))
	p, ok := repo.pulls[n]
	if !ok {
		notFound(w)
		return
	}
	rj := s.repoJSON(repo)
	writeJSON(w, http.StatusOK, map[string]any{
		"number": p.Number, "state": p.State, "title": p.Title, "user": userJSON(p.Author),
		"draft": p.Draft, "merged": p.Merged, "merge_commit_sha": p.MergeCommitSHA, "merged_by": mergedBy(p),
		"html_url": "https://github.com/" + repo.fullName() + "/pull/" + strconv.Itoa(p.Number),
		"head":     map[string]any{"ref": p.HeadRef, "sha": p.HeadSHA, "repo": rj},
		"base":     map[string]any{"ref": p.BaseRef, "sha": p.BaseSHA, "repo": rj},
	})
}

// permissionOf maps a role to the legacy permission field.
func permissionOf(role string) string {
	switch role {
	case "admin":
		return "admin"
	case "maintain", "write":
		return "write"
	case "triage", "read":
		return "read"
	}
	return "none"
}

func (s *Server) getPermission(w http.ResponseWriter, r *http.Request, repo *Repo) {
	login := strings.ToLower(r.PathValue("user"))
	if !s.users[login] {
		notFound(w)
		return
	}
	role := repo.roles[login]
	rn := role
	if rn == "" {
		rn = "none"
	}
	writeJSON(w, http.StatusOK, map[string]any{"permission": permissionOf(role), "role_name": rn, "user": userJSON(r.PathValue("user"))})
}

func (s *Server) getMembership(w http.ResponseWriter, r *http.Request) {
	team, ok := s.teams[r.PathValue("org")+"/"+r.PathValue("slug")]
	state := team[strings.ToLower(r.PathValue("user"))]
	if !ok || state == "" {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"role": "member", "state": state})
}

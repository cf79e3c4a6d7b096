package githubfake

import (
	"net/http"
	"strconv"
	"strings"
)

// This file is GitHub's installation lookup: GET /repos/{owner}/{repo}/
// installation, authenticated with the App's JWT (an installation or
// personal token gets 401, as on GitHub), answering the installation that
// can see the repository or 404 when the App is not installed there.

// appJWTRoutes are routes outside /app/ that GitHub authenticates with the
// App's JWT rather than a token.
var appJWTRoutes = map[string]bool{
	"GET /repos/{owner}/{repo}/installation": true,
}

func needsJWT(path, route string) bool {
	return strings.HasPrefix(path, "/app/") || appJWTRoutes[route]
}

// noAuth are the routes GitHub answers without credentials.
var noAuth = map[string]bool{
	"POST /settings/apps/new":                     true,
	"POST /organizations/{org}/settings/apps/new": true,
	"POST /app-manifests/{code}/conversions":      true,
}

func (s *Server) getRepoInstallation(w http.ResponseWriter, r *http.Request) {
	repo, ok := s.repos[r.PathValue("owner")+"/"+r.PathValue("repo")]
	if !ok || repo.Installation == 0 {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.installationJSON(repo.Installation, repo.Owner))
}

func (s *Server) installationJSON(id int64, owner string) map[string]any {
	return map[string]any{
		"id": id, "app_id": s.AppID, "app_slug": s.AppSlug, "target_type": "Organization",
		"account":              map[string]any{"login": owner, "type": "Organization"},
		"repository_selection": "selected",
		"access_tokens_url":    s.URL + "/app/installations/" + itoa(id) + "/access_tokens",
		"permissions":          map[string]string{"checks": "write", "contents": "write", "issues": "write", "pull_requests": "write", "metadata": "read", "deployments": "write"},
		"events":               []string{"pull_request", "issue_comment", "check_run", "check_suite"},
	}
}

// SetInstallation moves repo to another installation (0: the App is not
// installed there), as when an organisation installs the App anew.
func (s *Server) SetInstallation(repo string, installation int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.repos[repo]; ok {
		r.Installation = installation
	}
}
func itoa(n int64) string { return strconv.FormatInt(n, 10) }

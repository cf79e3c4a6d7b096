package githubfake

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// This file is GitHub's App manifest flow: the web page a browser posts
// the manifest to (POST /settings/apps/new, or
// /organizations/{org}/settings/apps/new), which registers the App and
// redirects to the manifest's redirect_url with a one-time code and the
// state, and the API conversion of that code (POST
// /app-manifests/{code}/conversions, no authentication), which answers the
// App's id, slug, private key and webhook secret once; a code is good for
// an hour.

// ManifestApp is an App registered through the manifest flow.
type ManifestApp struct {
	ID            int64
	Slug, Owner   string
	Manifest      map[string]any
	WebhookSecret string
	code          string
	expires       time.Time
	converted     bool
}

// ManifestApps returns the Apps registered through the manifest flow.
func (s *Server) ManifestApps() []ManifestApp {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ManifestApp
	for _, a := range s.manifestApps {
		out = append(out, *a)
	}
	return out
}

func (s *Server) newAppFromManifest(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.PostForm.Get("manifest")), &m); err != nil {
		http.Error(w, "Invalid GitHub App configuration: the manifest is not JSON", http.StatusUnprocessableEntity)
		return
	}
	// GitHub's required fields: url; hook_attributes.url when a webhook
	// is wanted (it is here); a redirect_url to come back to.
	hook, _ := m["hook_attributes"].(map[string]any)
	redirect, _ := m["redirect_url"].(string)
	appURL, _ := m["url"].(string)
	if appURL == "" || hook == nil || hook["url"] == "" || redirect == "" {
		http.Error(w, "Invalid GitHub App configuration: url, hook_attributes.url and redirect_url are required", http.StatusUnprocessableEntity)
		return
	}
	name, _ := m["name"].(string)
	owner := r.PathValue("org")
	if owner == "" {
		owner = "operator" // the signed-in user
	}
	a := &ManifestApp{ID: s.id(), Slug: strings.ToLower(strings.ReplaceAll(name, " ", "-")), Owner: owner, Manifest: m,
		WebhookSecret: randHex(20), code: "v1." + randHex(20), expires: time.Now().Add(time.Hour)}
	s.manifestApps = append(s.manifestApps, a)
	u, err := url.Parse(redirect)
	if err != nil {
		http.Error(w, "bad redirect_url", http.StatusUnprocessableEntity)
		return
	}
	q := u.Query()
	q.Set("code", a.code)
	if st := r.URL.Query().Get("state"); st != "" {
		q.Set("state", st)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *Server) convertManifest(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	for _, a := range s.manifestApps {
		if a.code != code {
			continue
		}
		if a.converted || time.Now().After(a.expires) {
			notFound(w) // a code is good once, for an hour
			return
		}
		a.converted = true
		hook, _ := a.Manifest["hook_attributes"].(map[string]any)
		writeJSON(w, http.StatusCreated, map[string]any{
			"id": a.ID, "slug": a.Slug, "node_id": "A_" + randHex(6), "name": a.Manifest["name"],
			"owner":           map[string]any{"login": a.Owner},
			"html_url":        s.URL + "/apps/" + a.Slug,
			"external_url":    a.Manifest["url"],
			"client_id":       "Iv1." + randHex(8),
			"client_secret":   randHex(20),
			"webhook_secret":  a.WebhookSecret,
			"pem":             string(keyPEM),
			"hook_attributes": hook,
			"permissions":     a.Manifest["default_permissions"],
			"events":          a.Manifest["default_events"],
		})
		return
	}
	notFound(w)
}

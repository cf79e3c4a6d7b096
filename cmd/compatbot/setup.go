package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/compatbot/compatbot/bot/config"
	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/internal/atomicfile"
	"gopkg.in/yaml.v3"
)

func init() {
	register(command{Name: "setup", Summary: "register the GitHub App from a manifest and write its id, key and webhook secret into the config", Run: setupCmd})
}

const setupUsage = `Usage:
  compatbot setup --config FILE --public-url URL [--org ORG] [--name NAME]
                  [--github-url URL] [--api-url URL] [--listen ADDR] [--force]

Registers compatbot's GitHub App with GitHub's App manifest flow: it serves
a page on --listen (default 127.0.0.1:8089) to open in a browser signed in
to GitHub; the page posts the App's manifest (name, webhook URL
<public-url>/webhook, the permissions and events compatbot needs) to
GitHub, you confirm there, and GitHub sends the browser back with a code
that compatbot exchanges for the App's id, private key and webhook secret.
The key and the secret are written beside FILE (mode 0600) and FILE gets
github.app_id, github.private_key_file, github.webhook_secret_file and
github.api_url (FILE is created if missing; its other settings are kept).
Then install the App on the compat-layer repository (the link is printed).

--org registers the App under an organisation; --github-url is the web
address of GitHub Enterprise Server (https://HOST; the API is then
https://HOST/api/v3/ unless --api-url says otherwise). --force replaces an
App already configured in FILE.

Exit status: 0 registered, 1 failed, 2 usage errors.
`

// appManifest is what compatbot asks GitHub to register: the permissions
// and events of "Registering the GitHub App" in the README.
func appManifest(name, publicURL, redirect string) map[string]any {
	return map[string]any{
		"name": name, "url": publicURL, "public": false,
		"hook_attributes": map[string]any{"url": publicURL + "/webhook", "active": true},
		"redirect_url":    redirect,
		"default_permissions": map[string]string{"checks": "write", "contents": "write", "deployments": "write",
			"pull_requests": "write", "issues": "write", "metadata": "read"},
		"default_events": []string{"pull_request", "issue_comment", "check_run", "check_suite"},
	}
}

func setupCmd(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return setupMain(ctx, args, stdout, stderr, nil)
}

// setupMain is setup; ready, if set, is told the page's address once it
// listens (tests play the browser).
func setupMain(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(addr string)) int {
	fl := newFlags("setup", setupUsage, stdout, stderr)
	cfgPath := fl.String("config", "", "the configuration `FILE` to write (created if missing)")
	publicURL := fl.String("public-url", "", "where GitHub reaches compatbot (`URL`; the webhook is URL/webhook); default the config's public_url")
	org := fl.String("org", "", "register the App under this organisation (default: your user)")
	name := fl.String("name", "", "the App's name (default compatbot-<host of public-url>)")
	webURL := fl.String("github-url", "https://github.com", "GitHub's web `URL` (GitHub Enterprise Server: https://HOST)")
	apiURL := fl.String("api-url", "", "GitHub's REST API `URL` (default https://api.github.com/, or <github-url>/api/v3/)")
	listen := fl.String("listen", "127.0.0.1:8089", "`ADDR` of the page to open in the browser")
	timeout := fl.Duration("timeout", 30*time.Minute, "give up after this long without GitHub's answer")
	force := fl.Bool("force", false, "replace the App already configured in FILE")
	if code, done := parseFlags(fl, args, stdout); done {
		return code
	}
	if *cfgPath == "" {
		fmt.Fprint(stderr, setupUsage)
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "compatbot setup: "+format+"\n", a...)
		return code
	}
	doc, err := readConfigNode(*cfgPath)
	if err != nil {
		return fail(2, "%v", err)
	}
	if id := nodeGet(doc, "github", "app_id"); id != "" && !*force {
		return fail(2, "%s already configures App %s (github.app_id); --force registers a new one in its place", *cfgPath, id)
	}
	if *publicURL == "" {
		*publicURL = nodeGet(doc, "public_url")
	}
	pu, err := url.Parse(*publicURL)
	if *publicURL == "" || err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
		return fail(2, "--public-url must be the absolute http(s) URL GitHub reaches compatbot at (got %q)", *publicURL)
	}
	*publicURL = strings.TrimSuffix(*publicURL, "/")
	web, err := url.Parse(strings.TrimSuffix(*webURL, "/"))
	if err != nil || web.Scheme == "" || web.Host == "" {
		return fail(2, "--github-url %q is not an absolute URL", *webURL)
	}
	if *apiURL == "" {
		if web.Host == "github.com" {
			*apiURL = ghclient.DefaultAPIURL
		} else {
			*apiURL = web.String() + "/api/v3/"
		}
	}
	if *name == "" {
		*name = "compatbot-" + pu.Hostname()
	}
	if *org != "" && strings.ContainsAny(*org, "/?#") {
		return fail(2, "--org %q is not an organisation name", *org)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail(1, "listen: %v", err)
	}
	defer ln.Close()
	base := "http://" + ln.Addr().String()
	stateB := make([]byte, 16)
	rand.Read(stateB)
	state := hex.EncodeToString(stateB)
	action := web.String() + "/settings/apps/new"
	if *org != "" {
		action = web.String() + "/organizations/" + url.PathEscape(*org) + "/settings/apps/new"
	}
	manifest, _ := json.Marshal(appManifest(*name, *publicURL, base+"/callback"))

	type result struct {
		msg string
		err error
	}
	done := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		setupPage.Execute(w, map[string]string{"Action": action + "?state=" + state, "Manifest": string(manifest), "Name": *name})
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		// The state proves the answer is to this run's form, not a page
		// someone else made the browser load.
		if r.URL.Query().Get("state") != state {
			http.Error(w, "state does not match this compatbot setup; start again", http.StatusBadRequest)
			return
		}
		code := r.URL.Query().Get("code")
		if code == "" || strings.ContainsAny(code, "/?#") {
			http.Error(w, "no code from GitHub", http.StatusBadRequest)
			return
		}
		msg, err := convertManifest(r.Context(), *apiURL, code, *cfgPath, doc, *publicURL)
		if err != nil {
			http.Error(w, "compatbot setup failed: "+err.Error(), http.StatusBadGateway)
		} else {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintln(w, msg)
		}
		select {
		case done <- result{msg, err}:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer func() {
		// Graceful: the callback's answer to the browser is still being
		// written when it reports the result.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Fprintf(stdout, "Open %s in a browser signed in to %s, and confirm the App there.\n", base, web.String())
	if ready != nil {
		ready(ln.Addr().String())
	}
	tm := time.NewTimer(*timeout)
	defer tm.Stop()
	select {
	case res := <-done:
		if res.err != nil {
			return fail(1, "%v", res.err)
		}
		fmt.Fprintln(stdout, res.msg)
		return 0
	case <-tm.C:
		return fail(1, "no answer from GitHub within %s", *timeout)
	case <-ctx.Done():
		return fail(1, "interrupted")
	}
}

var setupPage = template.Must(template.New("setup").Parse(`<!doctype html>
<title>compatbot setup</title>
<h1>Register {{.Name}} on GitHub</h1>
<p>This sends compatbot's App manifest to GitHub; confirm the App there, and GitHub brings you back here.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="manifest" value="{{.Manifest}}">
<button type="submit">Create the GitHub App</button>
</form>
`))

// appConversion is GitHub's answer to a manifest code.
type appConversion struct {
	ID            int64  `json:"id"`
	Slug          string `json:"slug"`
	HTMLURL       string `json:"html_url"`
	PEM           string `json:"pem"`
	WebhookSecret string `json:"webhook_secret"`
}

// convertManifest exchanges code for the App's credentials and writes them
// and the config.
func convertManifest(ctx context.Context, apiURL, code, cfgPath string, doc *yaml.Node, publicURL string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(apiURL, "/")+"/app-manifests/"+url.PathEscape(code)+"/conversions", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("User-Agent", ghclient.UserAgent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("GitHub: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("GitHub answered %s to the manifest code (a code is good once, for an hour): %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var app appConversion
	if err := json.Unmarshal(body, &app); err != nil || app.ID == 0 || app.PEM == "" || app.WebhookSecret == "" {
		return "", errors.New("GitHub's answer lacks the App's id, key or webhook secret")
	}
	dir := filepath.Dir(cfgPath)
	keyName := fmt.Sprintf("compatbot-app-%d.private-key.pem", app.ID)
	secretName := fmt.Sprintf("compatbot-app-%d.webhook-secret", app.ID)
	if err := atomicfile.WriteFile(filepath.Join(dir, keyName), []byte(app.PEM), 0o600); err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, secretName), []byte(app.WebhookSecret+"\n"), 0o600); err != nil {
		return "", err
	}
	nodeSet(doc, strconv.FormatInt(app.ID, 10), "github", "app_id")
	nodeSet(doc, keyName, "github", "private_key_file")
	nodeSet(doc, secretName, "github", "webhook_secret_file")
	nodeSet(doc, apiURL, "github", "api_url")
	// The secret now lives in its file; an inline one would be a second,
	// stale secret.
	nodeDelete(doc, "github", "webhook_secret")
	if nodeGet(doc, "public_url") == "" {
		nodeSet(doc, publicURL, "public_url")
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(cfgPath, out, 0o600); err != nil {
		return "", err
	}
	if _, err := config.Load(cfgPath); err != nil {
		return "", fmt.Errorf("the written config does not load: %w", err)
	}
	note := ""
	if nodeGet(doc, "github", "token") != "" || nodeGet(doc, "github", "token_file") != "" {
		note = "\nNote: github.token/token_file is still set and takes precedence; remove it to act as the App."
	}
	return fmt.Sprintf("Registered GitHub App %s (id %d); %s now has its id, key (%s) and webhook secret (%s).\nInstall it on the compat-layer repository: %s/installations/new%s",
		app.Slug, app.ID, cfgPath, keyName, secretName, strings.TrimSuffix(app.HTMLURL, "/"), note), nil
}

// readConfigNode reads the YAML document at path, or an empty mapping when
// there is no file yet.
func readConfigNode(path string) (*yaml.Node, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
	}
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Kind == 0 {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a YAML mapping", path)
	}
	return doc.Content[0], nil
}

// nodeChild is the value of key in mapping m (nil if absent).
func nodeChild(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func nodeGet(m *yaml.Node, path ...string) string {
	for _, k := range path {
		m = nodeChild(m, k)
	}
	if m == nil || m.Kind != yaml.ScalarNode {
		return ""
	}
	return m.Value
}

// nodeSet sets the scalar at path, making the mappings on the way; the
// rest of the document (comments included) stays as it was.
func nodeSet(m *yaml.Node, value string, path ...string) {
	for i, k := range path {
		c := nodeChild(m, k)
		last := i == len(path)-1
		if c == nil || (!last && c.Kind != yaml.MappingNode) {
			c = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			if last {
				c = &yaml.Node{Kind: yaml.ScalarNode}
			}
			if old := nodeChild(m, k); old != nil {
				*old = *c
				c = old
			} else {
				m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, c)
			}
		}
		if last {
			c.Kind, c.Tag, c.Value, c.Style = yaml.ScalarNode, "", value, 0
			return
		}
		m = c
	}
}

func nodeDelete(m *yaml.Node, path ...string) {
	for _, k := range path[:len(path)-1] {
		m = nodeChild(m, k)
	}
	if m == nil || m.Kind != yaml.MappingNode {
		return
	}
	key := path[len(path)-1]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

package main

import (
	"bytes"
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/bot/config"
	"github.com/compatbot/compatbot/bot/githubfake"
)

var (
	formAction   = regexp.MustCompile(`action="([^"]+)"`)
	formManifest = regexp.MustCompile(`name="manifest" value="([^"]*)"`)
)

// browser plays the operator's browser: it opens setup's page and submits
// its form to GitHub, which sends it back to setup's callback.
func browser(t *testing.T, page string, logs ...*bytes.Buffer) (int, string) {
	t.Helper()
	resp, err := http.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	a, m := formAction.FindSubmatch(b), formManifest.FindSubmatch(b)
	if a == nil || m == nil {
		t.Fatalf("setup page has no manifest form:\n%s", b)
	}
	resp, err = http.PostForm(html.UnescapeString(string(a[1])), url.Values{"manifest": {html.UnescapeString(string(m[1]))}})
	if err != nil {
		for _, l := range logs {
			t.Log(l.String())
		}
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestSetupManifestFlow runs `compatbot setup` against the GitHub double's
// manifest flow, as on github.com (user App) and GitHub Enterprise Server
// (an organisation's App, API under /api/v3/): the App is registered with
// compatbot's webhook, permissions and events, and the config then loads
// with its id, key and secret, keeping what it had.
func TestSetupManifestFlow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		existing string // config before; "" = no file
		args     []string
		owner    string
		force    bool
	}{
		{name: "github.com, new config", owner: "operator", args: []string{"--public-url", "https://compatbot.example.org/"}},
		{name: "enterprise organisation, existing config kept", owner: "eessi", args: []string{"--org", "eessi"},
			existing: "# compatbot for software.eessi.io\npublic_url: https://bot.eessi.example\nlisten: 127.0.0.1:9000\ngithub:\n  webhook_secret: old-inline\n"},
		{name: "replacing an App with --force", owner: "operator", args: []string{"--force", "--public-url", "https://x.example"},
			existing: "github:\n  app_id: 7\n  private_key_file: old.pem\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh, _ := githubfake.New(1)
			defer gh.Close()
			cfgPath := filepath.Join(t.TempDir(), "compatbot.yml")
			if tc.existing != "" {
				os.WriteFile(cfgPath, []byte(tc.existing), 0o600)
			}
			args := append([]string{"--config", cfgPath, "--github-url", gh.URL, "--api-url", gh.APIURL(), "--listen", "127.0.0.1:0"}, tc.args...)
			addrc, done := make(chan string, 1), make(chan int, 1)
			var out, errb bytes.Buffer
			go func() { done <- setupMain(context.Background(), args, &out, &errb, func(a string) { addrc <- a }) }()
			var addr string
			select {
			case addr = <-addrc:
			case code := <-done:
				t.Fatalf("setup exited %d: %s", code, errb.String())
			}
			status, body := browser(t, "http://"+addr+"/", &errb)
			if status != 200 || !strings.Contains(body, "Registered GitHub App") {
				t.Fatalf("browser got %d:\n%s", status, body)
			}
			if code := <-done; code != 0 {
				t.Fatalf("setup exit %d: %s", code, errb.String())
			}
			apps := gh.ManifestApps()
			if len(apps) != 1 || apps[0].Owner != tc.owner {
				t.Fatalf("registered apps %+v, want one owned by %s", apps, tc.owner)
			}
			m := apps[0].Manifest
			hook := m["hook_attributes"].(map[string]any)["url"].(string)
			if !strings.HasSuffix(hook, "/webhook") || m["default_permissions"].(map[string]any)["checks"] != "write" || len(m["default_events"].([]any)) != 4 {
				t.Errorf("manifest %v", m)
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				t.Fatalf("the written config does not load: %v", err)
			}
			if cfg.GitHub.AppID != apps[0].ID || len(cfg.GitHub.PrivateKey) == 0 || cfg.GitHub.APIURL != gh.APIURL() ||
				len(cfg.GitHub.WebhookSecret) != 1 || cfg.GitHub.WebhookSecret[0] != apps[0].WebhookSecret {
				t.Errorf("config github = %+v, want app %d with its key and secret", cfg.GitHub, apps[0].ID)
			}
			if !strings.HasPrefix(hook, cfg.PublicURL) {
				t.Errorf("webhook %s is not under public_url %s", hook, cfg.PublicURL)
			}
			written, _ := os.ReadFile(cfgPath)
			if tc.existing != "" && strings.Contains(tc.existing, "listen:") && (!strings.Contains(string(written), "listen: 127.0.0.1:9000") || !strings.Contains(string(written), "# compatbot for software.eessi.io")) {
				t.Errorf("setup lost the existing settings:\n%s", written)
			}
			for _, f := range []string{cfg.GitHub.PrivateKeyFile, cfg.GitHub.WebhookSecretFile} {
				f = filepath.Join(filepath.Dir(cfgPath), f)
				if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
					t.Errorf("%s: %v, mode %v; want 0600", f, err, st)
				}
			}
			if n := gh.CallCount("POST /app-manifests/{code}/conversions"); n != 1 {
				t.Errorf("%d conversions, want 1", n)
			}
		})
	}
}

func TestSetupRefusals(t *testing.T) {
	dir := t.TempDir()
	configured := filepath.Join(dir, "configured.yml")
	os.WriteFile(configured, []byte("github:\n  app_id: 7\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no config", []string{"--public-url", "https://x"}, "Usage:"},
		{"App already configured", []string{"--config", configured, "--public-url", "https://x"}, "already configures App 7"},
		{"no public URL", []string{"--config", filepath.Join(dir, "new.yml")}, "--public-url must be"},
		{"relative public URL", []string{"--config", filepath.Join(dir, "new.yml"), "--public-url", "compatbot.example"}, "--public-url must be"},
		{"bad organisation", []string{"--config", filepath.Join(dir, "new.yml"), "--public-url", "https://x", "--org", "a/b"}, "is not an organisation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := setupMain(context.Background(), tc.args, &out, &errb, nil); code != 2 || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errb.String(), tc.want)
			}
		})
	}
}

// The callback refuses an answer to another form (wrong state), and a
// code GitHub already converted is refused by GitHub, said as such.
func TestSetupCallbackChecks(t *testing.T) {
	gh, _ := githubfake.New(1)
	defer gh.Close()
	cfgPath := filepath.Join(t.TempDir(), "compatbot.yml")
	addrc, done := make(chan string, 1), make(chan int, 1)
	var out, errb bytes.Buffer
	go func() {
		done <- setupMain(context.Background(), []string{"--config", cfgPath, "--github-url", gh.URL, "--api-url", gh.APIURL(),
			"--listen", "127.0.0.1:0", "--public-url", "https://x.example"}, &out, &errb, func(a string) { addrc <- a })
	}()
	addr := <-addrc
	resp, err := http.Get("http://" + addr + "/callback?code=v1.abc&state=not-this-one")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("callback with a foreign state: %d, want 400", resp.StatusCode)
	}
	// A real round, then the same code again through a second setup.
	if status, body := browser(t, "http://"+addr+"/"); status != 200 {
		t.Fatalf("browser: %d %s", status, body)
	}
	<-done
	if _, err := convertManifest(context.Background(), gh.APIURL(), "v1.unknown", cfgPath, nil, "https://x.example"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("an unknown code: %v, want GitHub's 404", err)
	}
}

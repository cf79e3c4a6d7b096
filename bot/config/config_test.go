package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/publish"
	"github.com/google/go-cmp/cmp"
)

// otherArch is an arch this machine is not.
var otherArch = map[bool]string{true: "aarch64", false: "x86_64"}[build.HostArch() != "aarch64"]

func TestLoadFull(t *testing.T) {
	clearEnv(t)
	c, err := Load("testdata/full.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen:    "0.0.0.0:9000",
		PublicURL: "https://bot.example.org",
		DataDir:   "/srv/compatbot",
		Log:       Log{Format: "json", Level: "info"},
		GitHub: GitHub{
			APIURL: "https://ghe.example.org/api/v3/", AppID: 12345, PrivateKeyFile: "app.pem",
			WebhookSecret: Secrets{"new-secret", "old-secret"},
		},
		Intake: Intake{Workers: 8, MaxAttempts: 5, MaxBodyBytes: 1 << 20, UnverifiedBytes: 32 << 20, UnverifiedRequests: 256, MinFreeBytes: 256 << 20, BackoffBase: Duration(500 * time.Millisecond), BackoffMax: Duration(10 * time.Minute), Retention: Duration(720 * time.Hour), ProcessTimeout: Duration(30 * time.Minute)},
		Build: Build{
			Command: []string{"/opt/bootstrap/build.sh", "{{.Set}}", "{{.Prefix}}"},
			Timeout: Duration(6 * time.Hour), Env: map[string]string{"MAKEOPTS": "-j8"}, Sandbox: true,
			Runners: map[string]Runner{
				"x86_64": {Slurm: &SlurmRunner{Partition: "zen4", SharedDir: "/shared/compatbot", TimeLimit: "4:00:00"}},
				"aarch64": {Slurm: &SlurmRunner{Partition: "grace", Constraint: "sve", Account: "eessi", TimeLimit: "1-00:00",
					SharedDir: "/shared/compatbot", NodeSharedDir: "/mnt/shared/compatbot", ScratchDir: "/local/scratch",
					Compatbot: "/mnt/shared/bin/compatbot", BinDir: "/opt/slurm/bin", SlurmConf: "/etc/slurm/grace.conf", Poll: Duration(10 * time.Second)}},
			},
		},
		SetsLimits: SetsLimits{Files: 64, FileBytes: 1 << 20, LineBytes: 4096, Entries: 2000},
		Targets: Targets{
			Test: Target{Backend: "cvmfs", Repository: "software.test.eessi.io", CvmfsServer: "cvmfs_server", PublisherHost: "stratum0.example.org", Layout: "testing/{{.Version}}/compat/{{.OS}}/{{.Arch}}"},
			Prod: Target{Backend: "local", Repository: "software.eessi.io", BaseDir: filepath.Join("testdata", "repos"), Layout: publish.DefaultLayout},
		},
		Mirror:    Mirror{Dir: "/srv/mirror"},
		Changelog: Changelog{Branch: "deploy-log"},
		Path:      "testdata/full.yml",
	}
	if !strings.Contains(string(c.GitHub.PrivateKey), "BEGIN RSA PRIVATE KEY") {
		t.Errorf("private key not read from the file next to the config: %q", c.GitHub.PrivateKey)
	}
	c.GitHub.PrivateKey = nil
	if d := cmp.Diff(want, c); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	path := write(t, "github:\n  token: dev-token\n  webhook_secret: s\n")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	checks := map[string][2]any{
		"listen":          {c.Listen, "127.0.0.1:8080"},
		"public_url":      {c.PublicURL, "http://127.0.0.1:8080"},
		"data_dir":        {c.DataDir, filepath.Join(dir, "var")},
		"api_url":         {c.GitHub.APIURL, "https://api.github.com/"},
		"workers":         {c.Intake.Workers, 4},
		"max_attempts":    {c.Intake.MaxAttempts, 8},
		"max_body_bytes":  {c.Intake.MaxBodyBytes, int64(25 << 20)},
		"build.timeout":   {c.Build.Timeout.D(), 4 * time.Hour},
		"targets.backend": {c.Targets.Test.Backend, "local"},
		"targets.base":    {c.Targets.Prod.BaseDir, filepath.Join(dir, "var", "repos")},
		"targets.layout":  {c.Targets.Test.Layout, "versions/{{.Version}}/compat/{{.OS}}/{{.Arch}}"},
		"mirror.dir":      {c.Mirror.Dir, filepath.Join(dir, "var", "mirror")},
		"changelog":       {c.Changelog.Branch, "main"},
		"log.format":      {c.Log.Format, "text"},
	}
	for k, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %v, want %v", k, v[0], v[1])
		}
	}
}

func TestErrorsNameKeyAndLine(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "listen: x\nlistne: y\n", ":2: listne: unknown key"},
		{"unknown nested key names the path", "github:\n  token: t\n  webhook_secret: s\ntargets:\n  test:\n    backend: local\n    repo: x\n", ":7: targets.test.repo: unknown key (did you mean \"repository\"?)"},
		{"unknown key inside a map value", "github: {token: t, webhook_secret: s}\nbuild:\n  env: {A: b}\n  runners:\n    aarch64: {slurm: {time-limit: 4:00:00}}\n", ":5: build.runners.aarch64.slurm.time-limit: unknown key (did you mean \"time_limit\"?)"},
		{"bad value after a map", "github: {token: t, webhook_secret: s}\nbuild:\n  env: {A: b}\n  runners:\n    x86_64: {local: {}}\n  timeout: soon\n", ":6: build.timeout: \"soon\" is not a duration"},
		{"build.hosts is refused", "github: {token: t, webhook_secret: s}\nbuild:\n  hosts: {aarch64: builder@arm1}\n", ":3: build.hosts: no longer read: it never chose a build host"},
		{"local for another arch", "github: {token: t, webhook_secret: s}\nbuild:\n  runners:\n    " + otherArch + ": {local: {}}\n", ":4: build.runners." + otherArch + ".local: this machine builds " + build.HostArch() + " only"},
		{"local and slurm", "github: {token: t, webhook_secret: s}\nbuild:\n  runners:\n    aarch64:\n      local: {}\n      slurm: {shared_dir: /s}\n", ":4: build.runners.aarch64: want exactly one of local: {} or slurm: {...}"},
		{"neither", "github: {token: t, webhook_secret: s}\nbuild:\n  runners:\n    aarch64: {}\n", ":4: build.runners.aarch64: want exactly one"},
		{"bad arch", "github: {token: t, webhook_secret: s}\nbuild:\n  runners:\n    ../arm: {slurm: {shared_dir: /s}}\n", ":4: build.runners.../arm: \"../arm\" is not an arch name"},
		{"no shared dir", "github: {token: t, webhook_secret: s}\nbuild:\n  runners:\n    aarch64:\n      slurm: {partition: grace}\n", ":5: build.runners.aarch64.slurm.shared_dir: required"},
		{"relative shared dir", "github: {token: t, webhook_secret: s}\nbuild:\n  runners:\n    aarch64:\n      slurm:\n        shared_dir: shared\n", ":6: build.runners.aarch64.slurm.shared_dir: \"shared\": want a clean absolute path"},
		{"script path", "github: {token: t, webhook_secret: s}\nbuild:\n  runners:\n    aarch64:\n      slurm:\n        shared_dir: /s\n        compatbot: /opt/compat bot\n", ":7: build.runners.aarch64.slurm.compatbot: \"/opt/compat bot\": a batch script names it"},
		{"option as partition", "github: {token: t, webhook_secret: s}\nbuild:\n  runners:\n    aarch64:\n      slurm: {shared_dir: /s, partition: --wrap=x}\n", ":5: build.runners.aarch64.slurm.partition: \"--wrap=x\": want a Slurm name"},
		{"time limit", "github: {token: t, webhook_secret: s}\nbuild:\n  runners:\n    aarch64:\n      slurm:\n        shared_dir: /s\n        time_limit: 4h\n", ":7: build.runners.aarch64.slurm.time_limit: \"4h\": want sbatch's -t format"},
		{"secret missing: points at the section", "listen: x\ngithub:\n  token: t\n", ":2: github.webhook_secret: required"},
		{"no credentials", "github:\n  webhook_secret: s\n", ":1: github.app_id: required"},
		{"app id without key", "github:\n  webhook_secret: s\n  app_id: 3\n", "github.private_key_file: required"},
		{"missing key file", "github:\n  webhook_secret: s\n  app_id: 3\n  private_key_file: nope.pem\n", "github.private_key_file: open"},
		{"bad backend", "github: {token: t, webhook_secret: s}\ntargets:\n  prod: {backend: s3}\n", ":3: targets.prod.backend: \"s3\": want local or cvmfs"},
		{"layout without the arch", "github: {token: t, webhook_secret: s}\ntargets:\n  test:\n    backend: local\n    layout: \"versions/{{.Version}}/compat/{{.OS}}\"\n",
			`:5: targets.test.layout: layout "versions/{{.Version}}/compat/{{.OS}}": must use {{.Arch}}, or two targets would share one tree`},
		{"absolute layout", "github: {token: t, webhook_secret: s}\ntargets:\n  prod:\n    layout: /cvmfs/software.eessi.io/versions/{{.Version}}/compat/{{.OS}}/{{.Arch}}\n",
			`:4: targets.prod.layout: layout "/cvmfs/software.eessi.io/versions/{{.Version}}/compat/{{.OS}}/{{.Arch}}" gives "/cvmfs/software.eessi.io/versions/2025.06/compat/linux/x86_64" for 2025.06 linux-x86_64: must be a path relative to the repository root`},
		{"layout leaving the repository", "github: {token: t, webhook_secret: s}\ntargets:\n  prod:\n    layout: ../{{.Version}}/{{.OS}}/{{.Arch}}\n",
			`:4: targets.prod.layout: layout "../{{.Version}}/{{.OS}}/{{.Arch}}" gives "../2025.06/linux/x86_64" for 2025.06 linux-x86_64: must not contain ".."`},
		{"layout with an unknown field", "github: {token: t, webhook_secret: s}\ntargets:\n  prod:\n    layout: \"{{.Version}}/{{.OS}}/{{.Arch}}/{{.Site}}\"\n",
			`:4: targets.prod.layout: layout "{{.Version}}/{{.OS}}/{{.Arch}}/{{.Site}}": template: layout:1:`},
		{"short retention", "github: {token: t, webhook_secret: s}\nintake:\n  retention: 24h\n", ":3: intake.retention: 24h0m0s: want at least 72h"},
		{"bad workers", "github: {token: t, webhook_secret: s}\nintake: {workers: -1}\n", ":2: intake.workers: -1: want 1 to 256"},
		{"body cap over GitHub's", "github: {token: t, webhook_secret: s}\nintake: {max_body_bytes: 104857600}\n", ":2: intake.max_body_bytes: 104857600: want at most 26214400"},
		{"unverified budget under the body cap", "github: {token: t, webhook_secret: s}\nintake: {unverified_bytes: 2048}\n", ":2: intake.unverified_bytes: 2048: want at least max_body_bytes"},
		{"zero sets limit", "github: {token: t, webhook_secret: s}\nsets_limits: {entries: -1}\n", ":2: sets_limits.entries: -1: want at least 1"},
		{"wrong shape", "github: [1, 2]\n", ":1: github: want a mapping"},
		{"not yaml", "listen: [\n", "compatbot.yml"},
		{"secret list with a map", "github:\n  token: t\n  webhook_secret: {a: b}\n", ":3: github.webhook_secret: want a string or a list"},
		{"int where string list", "github: {token: t, webhook_secret: s}\nbuild:\n  command: {a: 1}\n", ":3: build.command: cannot unmarshal !!map into []string"},
		{"string where int", "github: {token: t, webhook_secret: s}\nintake:\n  workers: many\n", ":3: intake.workers: cannot unmarshal !!str `many` into int"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := write(t, tc.yaml)
			_, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), path) {
				t.Errorf("error %q: want it to start with the file and contain %q", err, tc.want)
			}
		})
	}
}

func TestSecretsFromEnvAndFiles(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secrets"), []byte("one\n\ntwo\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "token"), []byte("tok-from-file\n"), 0o600)
	path := filepath.Join(dir, "c.yml")
	os.WriteFile(path, []byte("github:\n  webhook_secret_file: secrets\n  token_file: token\n"), 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Secrets{"one", "two"}, c.GitHub.WebhookSecret); d != "" || c.GitHub.Token != "tok-from-file" {
		t.Errorf("from files: secrets %v token %q", c.GitHub.WebhookSecret, c.GitHub.Token)
	}

	t.Setenv(EnvWebhookSecret, "env-new, env-old")
	t.Setenv(EnvGitHubToken, "env-token")
	t.Setenv(EnvPrivateKey, "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
	c, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Secrets{"env-new", "env-old"}, c.GitHub.WebhookSecret); d != "" {
		t.Errorf("env secrets (-want +got):\n%s", d)
	}
	if c.GitHub.Token != "env-token" || !strings.HasPrefix(string(c.GitHub.PrivateKey), "-----BEGIN PRIVATE KEY") {
		t.Errorf("env token %q key %q", c.GitHub.Token, c.GitHub.PrivateKey)
	}

	// An App configured only through the environment.
	path2 := write(t, "github:\n  app_id: 99\n")
	t.Setenv(EnvGitHubToken, "")
	if _, err := Load(path2); err != nil {
		t.Errorf("app id in YAML, key and secret from env: %v", err)
	}
	t.Setenv(EnvPrivateKey, "garbage")
	if _, err := Load(path2); err == nil || !strings.Contains(err.Error(), "not a PEM") {
		t.Errorf("garbage key: err = %v, want a PEM complaint", err)
	}
}

func TestLoadLocalNeedsNoCredentials(t *testing.T) {
	clearEnv(t)
	path := write(t, "data_dir: /tmp/x\n")
	if _, err := Load(path); err == nil {
		t.Fatal("Load without credentials succeeded")
	}
	c, err := LoadLocal(path)
	if err != nil || c.DataDir != "/tmp/x" {
		t.Fatalf("LoadLocal = %+v, %v", c, err)
	}
}

func clearEnv(t *testing.T) {
	for _, k := range []string{EnvPrivateKey, EnvWebhookSecret, EnvGitHubToken} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func write(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "compatbot.yml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Secrets handed over by systemd's LoadCredential= are read from
// $CREDENTIALS_DIRECTORY, named in the config as such.
func TestSecretsFromSystemdCredentials(t *testing.T) {
	clearEnv(t)
	creds := t.TempDir()
	os.WriteFile(filepath.Join(creds, "webhook-secret"), []byte("from-systemd\n"), 0o600)
	os.WriteFile(filepath.Join(creds, "app.pem"), []byte("-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n"), 0o600)
	for _, form := range []string{"$CREDENTIALS_DIRECTORY", "${CREDENTIALS_DIRECTORY}"} {
		path := write(t, "github:\n  app_id: 5\n  webhook_secret_file: "+form+"/webhook-secret\n  private_key_file: "+form+"/app.pem\n")
		t.Setenv("CREDENTIALS_DIRECTORY", creds)
		c, err := Load(path)
		if err != nil {
			t.Fatalf("%s: %v", form, err)
		}
		if len(c.GitHub.WebhookSecret) != 1 || c.GitHub.WebhookSecret[0] != "from-systemd" || !strings.Contains(string(c.GitHub.PrivateKey), "BEGIN RSA") {
			t.Errorf("%s: secret %v key %q", form, c.GitHub.WebhookSecret, c.GitHub.PrivateKey)
		}
		t.Setenv("CREDENTIALS_DIRECTORY", "")
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "CREDENTIALS_DIRECTORY") {
			t.Errorf("%s unset: %v, want an error naming it", form, err)
		}
	}
}

// The EESSI-shaped configuration of the README's operating section loads
// as written (with its credentials in place), so the documented example
// stays one compatbot accepts.
func TestREADMEEESSIConfigLoads(t *testing.T) {
	clearEnv(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "### An EESSI-shaped configuration")
	if !ok {
		t.Fatal("README lacks the EESSI-shaped configuration")
	}
	_, rest, _ = strings.Cut(rest, "```yaml\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("no yaml block in the EESSI section")
	}
	creds := t.TempDir()
	os.WriteFile(filepath.Join(creds, "app.pem"), []byte("-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n"), 0o600)
	os.WriteFile(filepath.Join(creds, "webhook-secret"), []byte("s\n"), 0o600)
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	c, err := Load(write(t, block))
	if err != nil {
		t.Fatalf("README's EESSI config: %v", err)
	}
	if c.Targets.Prod.PublisherHost != "cvmfs@stratum0.eessi.example.org" || c.Targets.Prod.SSHConfig != "/etc/compatbot/ssh_config" ||
		c.Targets.Test.URL == "" || c.GitHub.RedeliverInterval.D() != 10*time.Minute || c.Targets.Prod.Layout != publish.DefaultLayout {
		t.Errorf("targets %+v, github %+v", c.Targets, c.GitHub)
	}
}

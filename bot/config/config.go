// Package config loads compatbot's server configuration: one YAML file, with
// every secret also accepted from an environment variable or a file so it
// need not sit in the YAML. Unknown keys and missing required ones are
// errors that name the key and where it is.
package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/publish"
	"gopkg.in/yaml.v3"
)

// Environment variables that override or supply secrets.
const (
	EnvPrivateKey    = "COMPATBOT_PRIVATE_KEY"    // PEM content of the App's private key
	EnvWebhookSecret = "COMPATBOT_WEBHOOK_SECRET" // comma-separated; several for rotation
	EnvGitHubToken   = "COMPATBOT_GITHUB_TOKEN"   // instead of an App, for development
)

// Config is the whole file. Field docs give the YAML key and its default.
type Config struct {
	Listen    string    `yaml:"listen"`     // default 127.0.0.1:8080
	PublicURL string    `yaml:"public_url"` // default http://<listen>
	DataDir   string    `yaml:"data_dir"`   // default ./var, relative to the config file's directory
	Log       Log       `yaml:"log"`
	GitHub    GitHub    `yaml:"github"`
	Intake    Intake    `yaml:"intake"`
	Build     Build     `yaml:"build"`
	Targets   Targets   `yaml:"targets"`
	Mirror    Mirror    `yaml:"mirror"`
	Changelog Changelog `yaml:"changelog"`
	// SetsLimits bound the set files of a pull request (sets.Limits);
	// beyond them a file is a lint error and is not read.
	SetsLimits SetsLimits `yaml:"sets_limits"`

	// Path is the file the configuration was read from ("" for defaults).
	Path string `yaml:"-"`
}

// SetsLimits are sets.Limits as configured; defaults sets.DefaultLimits.
type SetsLimits struct {
	Files     int   `yaml:"files"`      // set files per revision (default 256)
	FileBytes int64 `yaml:"file_bytes"` // bytes per set file (default 1 MiB)
	LineBytes int   `yaml:"line_bytes"` // bytes per line (default 4096)
	Entries   int   `yaml:"entries"`    // entries per set (default 10000)
}

// Limits is l as sets.Limits.
func (l SetsLimits) Limits() sets.Limits {
	return sets.Limits{Files: l.Files, FileBytes: l.FileBytes, LineBytes: l.LineBytes, Entries: l.Entries}
}

// Log selects the server's log output.
type Log struct {
	Format string `yaml:"format"` // text (default) or json
	Level  string `yaml:"level"`  // debug, info (default), warn, error
}

// GitHub is how compatbot talks to GitHub. Either AppID with a private key
// (GitHub App, the normal case) or Token (development) is required.
type GitHub struct {
	APIURL            string  `yaml:"api_url"` // default https://api.github.com/
	AppID             int64   `yaml:"app_id"`
	PrivateKeyFile    string  `yaml:"private_key_file"`
	WebhookSecret     Secrets `yaml:"webhook_secret"`
	WebhookSecretFile string  `yaml:"webhook_secret_file"` // one secret per line
	Token             string  `yaml:"token"`
	TokenFile         string  `yaml:"token_file"`
	// RedeliverInterval is how often the App's delivery log is read back
	// for deliveries compatbot never stored (also once at start); default
	// 10m, "-1s" turns it off. Needs app_id and a private key.
	RedeliverInterval Duration `yaml:"redeliver_interval"`

	// PrivateKey is the PEM read from PrivateKeyFile or COMPATBOT_PRIVATE_KEY.
	PrivateKey []byte `yaml:"-"`
}

// Secrets is one secret or a list of them; YAML accepts either form.
type Secrets []string

// UnmarshalYAML accepts a scalar or a sequence of scalars.
func (s *Secrets) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*s = Secrets{n.Value}
		return nil
	case yaml.SequenceNode:
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		*s = list
		return nil
	}
	return fmt.Errorf("line %d: want a string or a list of strings", n.Line)
}

// Bytes returns the secrets as HMAC keys.
func (s Secrets) Bytes() [][]byte {
	out := make([][]byte, 0, len(s))
	for _, v := range s {
		out = append(out, []byte(v))
	}
	return out
}

// Intake tunes webhook intake and processing.
type Intake struct {
	Workers      int   `yaml:"workers"`        // default 4
	MaxAttempts  int   `yaml:"max_attempts"`   // default 8
	MaxBodyBytes int64 `yaml:"max_body_bytes"` // default and most 25 MiB, GitHub's own cap
	// UnverifiedBytes bounds the memory held at once by request bodies
	// whose signature is not yet checked (default 32 MiB, at least
	// max_body_bytes); UnverifiedRequests how many such requests may read
	// or wait at once (default 256). Beyond either: 503.
	UnverifiedBytes    int64 `yaml:"unverified_bytes"`
	UnverifiedRequests int   `yaml:"unverified_requests"`
	// MinFreeBytes: below this much free space on data_dir's filesystem
	// /readyz fails and deliveries get 503 (default 256 MiB; -1: never).
	MinFreeBytes int64    `yaml:"min_free_bytes"`
	BackoffBase  Duration `yaml:"backoff_base"` // default 2s; doubles per attempt
	BackoffMax   Duration `yaml:"backoff_max"`  // default 10m
	// Retention is how long done and ignored deliveries are kept (default
	// 720h = 30 days); at least 72h, GitHub's redelivery window.
	Retention Duration `yaml:"retention"`
	// ProcessTimeout bounds one processing attempt (default 30m).
	ProcessTimeout Duration `yaml:"process_timeout"`
}

// Build configures how a proposed set is built.
type Build struct {
	Command []string          `yaml:"command"` // argv with templates ({{.Set}}, {{.Prefix}}, ...)
	Timeout Duration          `yaml:"timeout"` // default 4h
	Env     map[string]string `yaml:"env"`
	Sandbox bool              `yaml:"sandbox"`
	// Real emerge instead of Command, the keys of "compatbot build":
	// a Portage release (tarball or tree; "" = the Prefix's emerge), the
	// ebuild repositories (the first is the main one), the profile ("" =
	// the first stable one), where sources enter the mirror from, and the
	// EPREFIX template ("" = EESSI's /cvmfs/software.eessi.io/versions/...).
	Portage     string   `yaml:"portage"`
	EbuildRepos []string `yaml:"ebuild_repos"`
	Profile     string   `yaml:"profile"`
	Distfiles   string   `yaml:"distfiles"`
	EPrefix     string   `yaml:"eprefix"`
	// Runners says where each arch is built (see Runner). This machine's
	// own arch is built here unless it has a runner; an arch with none
	// gets a skipped check run, "no build host".
	Runners map[string]Runner `yaml:"runners"`
	// Hosts was an arch's ssh build host. It was never used (every build
	// ran here) and is refused with a pointer to runners.
	Hosts map[string]string `yaml:"hosts"`
}

// Runner is where one arch is built: exactly one of local (this machine,
// for its own arch only) or slurm (batch jobs on a cluster's nodes of
// that arch).
type Runner struct {
	Local *LocalRunner `yaml:"local"`
	Slurm *SlurmRunner `yaml:"slurm"`
}

// LocalRunner builds on the service's own machine; it has no settings.
type LocalRunner struct{}

// SlurmRunner builds each target as one Slurm batch job that runs
// compatbot's job mode on a compute node (workflow/cluster).
type SlurmRunner struct {
	Partition  string `yaml:"partition"`  // sbatch -p
	Constraint string `yaml:"constraint"` // sbatch -C (node features)
	Account    string `yaml:"account"`    // sbatch -A
	// TimeLimit is sbatch -t: "minutes", "minutes:seconds",
	// "hours:minutes:seconds", "days-hours", "days-hours:minutes" or
	// "days-hours:minutes:seconds".
	TimeLimit string `yaml:"time_limit"`
	// SharedDir is storage shared with the compute nodes, as the service
	// mounts it (required, absolute): the runs' job files, checkouts,
	// logs, results and artifacts on their way back.
	SharedDir string `yaml:"shared_dir"`
	// NodeSharedDir is the same storage as the nodes mount it (default
	// shared_dir).
	NodeSharedDir string `yaml:"node_shared_dir"`
	// ScratchDir is a directory on each node's local disk for the overlay
	// (default the node's temporary directory).
	ScratchDir string `yaml:"scratch_dir"`
	// Compatbot is the compatbot executable on the nodes (default the
	// service's own path: install it at the same path, or on the shared
	// storage).
	Compatbot string `yaml:"compatbot"`
	// BinDir holds sbatch, squeue, scontrol and scancel on the service
	// (default: PATH).
	BinDir string `yaml:"bin_dir"`
	// SlurmConf is the cluster's slurm.conf for those commands (SLURM_CONF;
	// default Slurm's own, or its configless DNS lookup).
	SlurmConf string `yaml:"slurm_conf"`
	// Poll is how often a job's state is read (default 2s).
	Poll Duration `yaml:"poll"`
}

// Targets are the two publishing destinations.
type Targets struct {
	Test Target `yaml:"test"`
	Prod Target `yaml:"prod"`
}

// Target is one publishing destination (mirrors workflow/publish's
// TargetConfig, plus its Layout).
type Target struct {
	Backend       string `yaml:"backend"` // local (default) or cvmfs
	Repository    string `yaml:"repository"`
	BaseDir       string `yaml:"base_dir"`       // local backend: where repositories live; default <data_dir>/repos
	CvmfsServer   string `yaml:"cvmfs_server"`   // cvmfs backend: path to cvmfs_server; default cvmfs_server
	PublisherHost string `yaml:"publisher_host"` // cvmfs backend: run cvmfs_server over ssh on this host
	SSHConfig     string `yaml:"ssh_config"`     // cvmfs backend with publisher_host: ssh_config file (ssh -F)
	CvmfsMount    string `yaml:"cvmfs_mount"`    // cvmfs backend: where repositories are mounted; default /cvmfs
	URL           string `yaml:"url"`            // environment_url of the GitHub Deployments of this target (optional)
	// Layout is where the repository keeps a version/os-arch's tree: a Go
	// text/template of {{.Version}}, {{.OS}} and {{.Arch}}, like
	// build.eprefix; default EESSI's versions/{{.Version}}/compat/{{.OS}}/{{.Arch}}
	// (publish.DefaultLayout). Checked at load: all three fields, relative,
	// no "..".
	Layout string `yaml:"layout"`
}

// Mirror is the source (distfiles) mirror.
type Mirror struct {
	Dir string `yaml:"dir"` // default <data_dir>/mirror
}

// Changelog is where deploy history is committed.
type Changelog struct {
	Branch string `yaml:"branch"` // default main
}

// Duration is a time.Duration written as "4h", "90s".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 90s or 4h", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration such as 90s or 4h", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Error is a problem in the configuration, located when it can be.
type Error struct {
	File string
	Line int // 0 when the problem is the absence of a key
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	loc := e.File
	if loc == "" {
		loc = "config"
	}
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", loc, e.Line)
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Key, e.Msg)
	}
	return loc + ": " + e.Msg
}

// Load reads, checks and completes the configuration at path, including the
// credentials `compatbot serve` needs.
func Load(path string) (*Config, error) { return load(path, true) }

// LoadLocal is Load without requiring GitHub credentials, for maintenance
// commands that only touch the local database (deliveries list|retry).
func LoadLocal(path string) (*Config, error) { return load(path, false) }

func load(path string, needCredentials bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, lines, err := parse(path, data)
	if err != nil {
		return nil, err
	}
	if err := c.complete(needCredentials, lines); err != nil {
		return nil, err
	}
	return c, nil
}

// parse also returns the line of every dotted key present in the file, so
// value errors and missing keys can point into it.
func parse(path string, data []byte) (*Config, map[string]int, error) {
	c := &Config{Path: path}
	lines := map[string]int{}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, yamlError(path, err)
	}
	if len(root.Content) == 0 {
		return c, lines, nil
	}
	doc := root.Content[0]
	if err := checkKeys(path, doc, reflect.TypeOf(*c), "", lines); err != nil {
		return nil, nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, nil, yamlError(path, err)
	}
	return c, lines, nil
}

// yamlError turns an error of package yaml into an Error at the line it
// names.
func yamlError(path string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: path, Line: line, Msg: msg[len(m[0]):]}
	}
	return &Error{File: path, Msg: msg}
}

var lineRE = regexp.MustCompile(`^line (\d+): `)

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// checkKeys walks the document against the Go types so an unknown key is
// reported with its full dotted name and line, which yaml's KnownFields
// does not give ("field x not found in type config.Target").
func checkKeys(file string, n *yaml.Node, t reflect.Type, prefix string, lines map[string]int) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	key := strings.TrimSuffix(prefix, ".")
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		// Decode the value alone so a bad one is reported with its key.
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			return &Error{File: file, Line: n.Line, Key: key, Msg: lineRE.ReplaceAllString(err.Error(), "")}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return nil
			}
			return &Error{File: file, Line: n.Line, Key: key, Msg: "want a mapping of keys"}
		}
		fields := map[string]reflect.StructField{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				return &Error{File: file, Line: k.Line, Key: prefix + k.Value, Msg: "unknown key" + suggest(k.Value, fields)}
			}
			lines[prefix+k.Value] = k.Line
			if err := checkKeys(file, v, f.Type, prefix+k.Value+".", lines); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			if n.Tag == "!!null" {
				return nil
			}
			return &Error{File: file, Line: n.Line, Key: key, Msg: "want a mapping"}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			lines[prefix+n.Content[i].Value] = n.Content[i].Line
			if err := checkKeys(file, n.Content[i+1], t.Elem(), prefix+n.Content[i].Value+".", lines); err != nil {
				return err
			}
		}
	default:
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  ")
			return &Error{File: file, Line: n.Line, Key: key, Msg: lineRE.ReplaceAllString(msg, "")}
		}
	}
	return nil
}

func suggest(key string, fields map[string]reflect.StructField) string {
	var names []string
	for name := range fields {
		if strings.Contains(name, key) || strings.Contains(key, name) || strings.ReplaceAll(name, "_", "") == strings.ReplaceAll(strings.ReplaceAll(key, "-", ""), "_", "") {
			names = append(names, name)
		}
	}
	if len(names) == 1 {
		return fmt.Sprintf(" (did you mean %q?)", names[0])
	}
	return ""
}

// Default returns the configuration an empty file gives (without
// credentials), rooted at dir.
func Default(dir string) *Config {
	c := &Config{Path: filepath.Join(dir, "compatbot.yml")}
	c.defaults()
	return c
}

// rel resolves p, when relative, against the config file's directory.
// secretPath is a secret file's path: $CREDENTIALS_DIRECTORY (or
// ${CREDENTIALS_DIRECTORY}) is replaced by that variable, where systemd's
// LoadCredential= puts the unit's secrets (readable by the service alone,
// never in its environment); the rest is as rel. A path naming it while
// it is unset is an error the caller reports (the file is not found).
func (c *Config) secretPath(p string) string {
	for _, v := range []string{"${CREDENTIALS_DIRECTORY}", "$CREDENTIALS_DIRECTORY"} {
		if rest, ok := strings.CutPrefix(p, v); ok {
			if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
				return filepath.Join(dir, rest)
			}
			return p
		}
	}
	return c.rel(p)
}

func (c *Config) rel(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Listen
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	if c.DataDir == "" {
		c.DataDir = "./var"
	}
	c.DataDir = c.rel(c.DataDir)
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.GitHub.APIURL == "" {
		c.GitHub.APIURL = "https://api.github.com/"
	}
	if !strings.HasSuffix(c.GitHub.APIURL, "/") {
		c.GitHub.APIURL += "/"
	}
	if c.Intake.Workers == 0 {
		c.Intake.Workers = 4
	}
	if c.Intake.MaxAttempts == 0 {
		c.Intake.MaxAttempts = 8
	}
	if c.Intake.MaxBodyBytes == 0 {
		c.Intake.MaxBodyBytes = 25 << 20
	}
	if c.SetsLimits.Files == 0 {
		c.SetsLimits.Files = sets.DefaultLimits.Files
	}
	if c.SetsLimits.FileBytes == 0 {
		c.SetsLimits.FileBytes = sets.DefaultLimits.FileBytes
	}
	if c.SetsLimits.LineBytes == 0 {
		c.SetsLimits.LineBytes = sets.DefaultLimits.LineBytes
	}
	if c.SetsLimits.Entries == 0 {
		c.SetsLimits.Entries = sets.DefaultLimits.Entries
	}
	if c.Intake.MinFreeBytes == 0 {
		c.Intake.MinFreeBytes = 256 << 20
	}
	if c.Intake.UnverifiedBytes == 0 {
		c.Intake.UnverifiedBytes = 32 << 20
	}
	if c.Intake.UnverifiedRequests == 0 {
		c.Intake.UnverifiedRequests = 256
	}
	if c.Intake.BackoffBase == 0 {
		c.Intake.BackoffBase = Duration(2 * time.Second)
	}
	if c.Intake.BackoffMax == 0 {
		c.Intake.BackoffMax = Duration(10 * time.Minute)
	}
	if c.Intake.ProcessTimeout == 0 {
		c.Intake.ProcessTimeout = Duration(30 * time.Minute)
	}
	if c.Intake.Retention == 0 {
		c.Intake.Retention = Duration(30 * 24 * time.Hour)
	}
	if c.Build.Timeout == 0 {
		c.Build.Timeout = Duration(4 * time.Hour)
	}
	for _, t := range []*Target{&c.Targets.Test, &c.Targets.Prod} {
		if t.Backend == "" {
			t.Backend = "local"
		}
		if t.Backend == "local" && t.BaseDir == "" {
			t.BaseDir = filepath.Join(c.DataDir, "repos")
		}
		if t.Backend == "cvmfs" && t.CvmfsServer == "" {
			t.CvmfsServer = "cvmfs_server"
		}
		if t.Layout == "" {
			t.Layout = publish.DefaultLayout
		}
		t.BaseDir = c.rel(t.BaseDir)
		if t.SSHConfig != "" {
			t.SSHConfig = c.rel(t.SSHConfig)
		}
	}
	if c.Mirror.Dir == "" {
		c.Mirror.Dir = filepath.Join(c.DataDir, "mirror")
	} else {
		c.Mirror.Dir = c.rel(c.Mirror.Dir)
	}
	if c.Changelog.Branch == "" {
		c.Changelog.Branch = "main"
	}
}

// errf reports a problem with key at its line, or for a missing key at the
// line of its nearest enclosing section.
func (c *Config) errf(lines map[string]int, key, format string, args ...any) error {
	line := 0
	for k := key; k != "" && line == 0; {
		line = lines[k]
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return &Error{File: c.Path, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// complete applies defaults, reads secrets from the environment and files,
// and checks values.
func (c *Config) complete(needCredentials bool, lines map[string]int) error {
	c.defaults()
	errf := func(key, format string, args ...any) error { return c.errf(lines, key, format, args...) }
	gh := &c.GitHub
	if v, ok := os.LookupEnv(EnvWebhookSecret); ok && v != "" {
		gh.WebhookSecret = nil
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				gh.WebhookSecret = append(gh.WebhookSecret, s)
			}
		}
	} else if gh.WebhookSecretFile != "" {
		data, err := os.ReadFile(c.secretPath(gh.WebhookSecretFile))
		if err != nil {
			return errf("github.webhook_secret_file", "%v", err)
		}
		for _, s := range strings.Split(string(data), "\n") {
			if s = strings.TrimSpace(s); s != "" {
				gh.WebhookSecret = append(gh.WebhookSecret, s)
			}
		}
	}
	for i, s := range gh.WebhookSecret {
		if s == "" {
			return errf("github.webhook_secret", "secret %d is empty", i+1)
		}
	}
	if v := os.Getenv(EnvGitHubToken); v != "" {
		gh.Token = strings.TrimSpace(v)
	} else if gh.TokenFile != "" {
		data, err := os.ReadFile(c.secretPath(gh.TokenFile))
		if err != nil {
			return errf("github.token_file", "%v", err)
		}
		gh.Token = strings.TrimSpace(string(data))
	}
	if v := os.Getenv(EnvPrivateKey); v != "" {
		gh.PrivateKey = []byte(v)
	} else if gh.PrivateKeyFile != "" {
		data, err := os.ReadFile(c.secretPath(gh.PrivateKeyFile))
		if err != nil {
			return errf("github.private_key_file", "%v", err)
		}
		gh.PrivateKey = data
	}
	if len(gh.PrivateKey) > 0 && !bytes.Contains(gh.PrivateKey, []byte("-----BEGIN")) {
		return errf("github.private_key_file", "not a PEM private key (no -----BEGIN line)")
	}
	if needCredentials {
		switch {
		case len(gh.WebhookSecret) == 0:
			return errf("github.webhook_secret", "required (or %s, or github.webhook_secret_file)", EnvWebhookSecret)
		case gh.Token != "":
		case gh.AppID == 0 && len(gh.PrivateKey) == 0:
			return errf("github.app_id", "required with github.private_key_file (or github.token / %s for development)", EnvGitHubToken)
		case gh.AppID == 0:
			return errf("github.app_id", "required with the private key")
		case len(gh.PrivateKey) == 0:
			return errf("github.private_key_file", "required with github.app_id (or %s)", EnvPrivateKey)
		}
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return errf("log.format", "%q: want text or json", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return errf("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Intake.Workers < 1 || c.Intake.Workers > 256 {
		return errf("intake.workers", "%d: want 1 to 256", c.Intake.Workers)
	}
	if c.Intake.MaxAttempts < 1 {
		return errf("intake.max_attempts", "%d: want at least 1", c.Intake.MaxAttempts)
	}
	if c.Intake.MaxBodyBytes < 1024 {
		return errf("intake.max_body_bytes", "%d: want at least 1024", c.Intake.MaxBodyBytes)
	}
	if c.Intake.MaxBodyBytes > 25<<20 {
		return errf("intake.max_body_bytes", "%d: want at most 26214400 (25 MiB): GitHub sends nothing larger, so a larger cap only lets others cost more", c.Intake.MaxBodyBytes)
	}
	if c.Intake.UnverifiedBytes < c.Intake.MaxBodyBytes {
		return errf("intake.unverified_bytes", "%d: want at least max_body_bytes (%d), or the largest delivery could never be read", c.Intake.UnverifiedBytes, c.Intake.MaxBodyBytes)
	}
	for _, l := range []struct {
		key string
		v   int64
	}{{"sets_limits.files", int64(c.SetsLimits.Files)}, {"sets_limits.file_bytes", c.SetsLimits.FileBytes},
		{"sets_limits.line_bytes", int64(c.SetsLimits.LineBytes)}, {"sets_limits.entries", int64(c.SetsLimits.Entries)}} {
		if l.v < 1 {
			return errf(l.key, "%d: want at least 1", l.v)
		}
	}
	if c.Intake.UnverifiedRequests < 1 {
		return errf("intake.unverified_requests", "%d: want at least 1", c.Intake.UnverifiedRequests)
	}
	if c.Intake.Retention.D() < 72*time.Hour {
		return errf("intake.retention", "%v: want at least 72h (GitHub redelivers up to 3 days later; a pruned delivery would be processed again)", c.Intake.Retention.D())
	}
	for _, tg := range []struct {
		name string
		t    Target
	}{{"targets.test", c.Targets.Test}, {"targets.prod", c.Targets.Prod}} {
		if tg.t.Backend != "local" && tg.t.Backend != "cvmfs" {
			return errf(tg.name+".backend", "%q: want local or cvmfs", tg.t.Backend)
		}
		if _, err := publish.ParseLayout(tg.t.Layout); err != nil {
			return errf(tg.name+".layout", "%v", err)
		}
	}
	if !strings.HasPrefix(c.GitHub.APIURL, "http://") && !strings.HasPrefix(c.GitHub.APIURL, "https://") {
		return errf("github.api_url", "%q: want an http(s) URL", c.GitHub.APIURL)
	}
	if len(c.Build.Hosts) > 0 {
		return errf("build.hosts", "no longer read: it never chose a build host (every build ran on this machine). Say where each arch is built with build.runners, e.g. runners: {aarch64: {slurm: {partition: grace, shared_dir: /shared/compatbot}}}")
	}
	return c.checkRunners(errf)
}

// scriptPath is what a path written into a batch script may contain.
var scriptPath = regexp.MustCompile(`^/[A-Za-z0-9_./+-]*$`)

// slurmTime is a value of sbatch -t.
var slurmTime = regexp.MustCompile(`^(\d+|\d+:\d+|\d+:\d+:\d+|\d+-\d+|\d+-\d+:\d+|\d+-\d+:\d+:\d+|UNLIMITED|INFINITE)$`)

// archName is what an arch key may be: it names paths and check runs.
var archName = regexp.MustCompile(`^[a-z0-9_]+$`)

func (c *Config) checkRunners(errf func(key, format string, args ...any) error) error {
	host := build.HostArch()
	for arch, r := range c.Build.Runners {
		key := "build.runners." + arch
		if !archName.MatchString(arch) {
			return errf(key, "%q is not an arch name (x86_64, aarch64, ppc64le, riscv64, ...)", arch)
		}
		switch {
		case (r.Local == nil) == (r.Slurm == nil):
			return errf(key, "want exactly one of local: {} or slurm: {...}")
		case r.Local != nil && arch != host:
			return errf(key+".local", "this machine builds %s only; %s needs a slurm runner on nodes of that arch", host, arch)
		case r.Local != nil:
			continue
		}
		s := r.Slurm
		key += ".slurm"
		if s.SharedDir == "" {
			return errf(key+".shared_dir", "required: the storage shared with the compute nodes, as this machine mounts it")
		}
		for _, p := range []struct{ key, v string }{{"shared_dir", s.SharedDir}, {"node_shared_dir", s.NodeSharedDir}, {"scratch_dir", s.ScratchDir},
			{"compatbot", s.Compatbot}, {"bin_dir", s.BinDir}, {"slurm_conf", s.SlurmConf}} {
			if p.v != "" && (!filepath.IsAbs(p.v) || filepath.Clean(p.v) != p.v) {
				return errf(key+"."+p.key, "%q: want a clean absolute path", p.v)
			}
		}
		// These two are written into the batch script.
		for _, p := range []struct{ key, v string }{{"node_shared_dir", s.NodeSharedDir}, {"compatbot", s.Compatbot}} {
			if p.v != "" && !scriptPath.MatchString(p.v) {
				return errf(key+"."+p.key, "%q: a batch script names it: want letters, digits and _./+- only", p.v)
			}
		}
		if s.NodeSharedDir == "" && !scriptPath.MatchString(s.SharedDir) {
			return errf(key+".shared_dir", "%q: a batch script names it: want letters, digits and _./+- only (or set node_shared_dir)", s.SharedDir)
		}
		for _, o := range []struct{ key, v string }{{"partition", s.Partition}, {"constraint", s.Constraint}, {"account", s.Account}} {
			if strings.HasPrefix(o.v, "-") || strings.ContainsFunc(o.v, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				return errf(key+"."+o.key, "%q: want a Slurm name without spaces, not starting with -", o.v)
			}
		}
		if s.TimeLimit != "" && !slurmTime.MatchString(s.TimeLimit) {
			return errf(key+".time_limit", "%q: want sbatch's -t format: minutes, hours:minutes:seconds or days-hours[:minutes[:seconds]]", s.TimeLimit)
		}
	}
	return nil
}

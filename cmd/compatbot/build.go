package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/compattest"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/mirror"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/portage"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/setscheck"
	"github.com/compatbot/compatbot/workflow/vdb"
)

func init() {
	register(command{Name: "build", Summary: "build and test one set file locally in an overlay", Run: buildCmd})
}

// localCheckBuild is "check --build" (a checkBuild). It builds the changed
// targets with defaultLocalBuildOptions (data in ./var/build, the fake
// installer of the compatbot checkout in the current directory or
// $COMPATBOT_FAKEEMERGE, the base published locally first).
func localCheckBuild(ctx context.Context, gitDir string, rev *setscheck.Revisions, stdout, stderr io.Writer) ([]report.Check, error) {
	opts, err := defaultLocalBuildOptions()
	if err != nil {
		return nil, err
	}
	builds, err := runLocalBuild(ctx, opts, gitDir, rev, stderr)
	if err != nil {
		return nil, err
	}
	checks := make([]report.Check, len(builds))
	for i, b := range builds {
		checks[i] = b.Check
	}
	return checks, nil
}

const buildUsage = `Usage:
  compatbot build --set FILE [--target VERSION/OS-ARCH] [--data-dir DIR]
                  --ebuild-repo REPO [--ebuild-repo REPO2]... [--portage PATH]
                  [--distfiles SRC] [--profile DIR] [--eprefix TEMPLATE]
                  [--tools a,b] [--env NAME=VALUE]... [--timeout 4h]
                  [--sandbox] [--allow-libc-update] [--keep-scratch]
  compatbot build --set FILE [--command ARGV] ...   (any installer)

Builds one set file the way the bot builds a pull request's target: the
published tree DIR/published/<version>/<os>-<arch> is the read-only lower
layer of a real overlay, the build installs into it, the compat tests run on
the result, and the upper layer is stored as an artifact under
DIR/artifacts. Prints the check run's Markdown. Needs root (kernel overlayfs
and a private mount namespace) or fuse-overlayfs.

With --ebuild-repo, Gentoo's real emerge builds the set:
  --portage PATH       a Portage release, tarball or unpacked tree (unpacked
                       once into DIR/portage/); without it, the emerge
                       installed in the Prefix
  --ebuild-repo REPO   an ebuild repository (named by its profiles/repo_name;
                       the first is the main one); repeatable
  --profile DIR        the profile; default: the first stable one of the main
                       repository's profiles/profiles.desc for the arch
  --distfiles SRC      where sources come from, a directory or an http(s)
                       URL; they enter compatbot's mirror DIR/mirror/distfiles
                       first, verified against the repositories' Manifests
                       (BLAKE2B, SHA512), and emerge fetches only from there
  --eprefix TEMPLATE   the EPREFIX: the path the target is published at, where
                       the build sees the overlay (private mount namespace);
                       default ` + portage.DefaultEPrefix + `
  --tools a,b          the tools the tools check requires (default: bash,
                       python3, lmod, gcc, g++, ld, make, patch, emerge)
The set becomes the Portage user set etc/portage/sets/<name> (the set file's
name) and is built with emerge --update --deep --newuse @<name>, then
emerge --depclean. The JSON results (results.json, build-info.json) state
the EPREFIX used.

--target defaults to what the set's path says (sets/<version>/<os>-<arch>).
Without --ebuild-repo, --command is the argv, as a JSON array or space-separated words (no shell,
no quoting); each word may use {{.Set}}, {{.Version}}, {{.OS}}, {{.Arch}},
{{.Prefix}}, {{.SetFile}}, {{.DistDir}}. The default is the fake installer
testdata/fakeemerge/fakeemerge of a compatbot checkout in the current
directory, $COMPATBOT_FAKEEMERGE, or else the copy embedded in compatbot;
real builds pass emerge, e.g.
  --command '["startprefix", "emerge", "--update", "--deep", "@{{.Set}}"]'
The command sees only PATH, HOME, LANG, the COMPAT_* variables and --env.

Exit status: 0 built and tested, 1 the build or a test failed (or timed
out), 2 usage or setup errors.

Examples:
  compatbot build --set sets/2026.06/linux-x86_64
  compatbot build --set my.set --target 2026.06/linux-x86_64 --env FAKEEMERGE_FAIL=sys-devel/gcc
`

// localBuildOptions configure local builds: "compatbot build" and
// "compatbot check --build".
type localBuildOptions struct {
	// DataDir holds published/ (lower layers), runs/ and artifacts/.
	DataDir string
	Command []string
	Env     map[string]string
	Timeout time.Duration
	Sandbox bool
	// AllowLibcUpdate is the local stand-in for the PR saying
	// "compat: allow-libc-update".
	AllowLibcUpdate bool
	KeepScratch     bool
	// SeedFromBase builds the base revision's set into an empty published
	// tree first (check --build), so the changes shown are the PR's and not
	// "everything added".
	SeedFromBase bool
	// Lower serves the published trees builds start from; nil means plain
	// directories under DataDir/published (pipeline.DirLower).
	Lower pipeline.Lower
	// Portage builds with real emerge instead of Command; nil for Command.
	Portage *realPortage
	// Tools the tools check requires; nil means compattest.DefaultTools().
	Tools []compattest.Tool
}

// realPortage is "compatbot build --ebuild-repo ...": real emerge from a
// Portage release, the repositories' profile, sources through the mirror,
// at the target's published path.
type realPortage struct {
	Config portage.Config
	// Distfiles is where sources missing from the mirror come from.
	Distfiles string
	// EPrefix is the EPREFIX template (portage.DefaultEPrefix when "").
	EPrefix string
}

func (o localBuildOptions) lower() pipeline.Lower {
	if o.Lower != nil {
		return o.Lower
	}
	return pipeline.DirLower{Root: filepath.Join(o.DataDir, "published")}
}

// localBuild is one changed target's local build: its check run and,
// when it was built, the pipeline's outcome and the lineage of the tree it
// was built on (what a deploy to production compares).
type localBuild struct {
	Target      sets.Target
	Check       report.Check
	Outcome     *pipeline.Outcome
	BaseLineage string
	// Changes are the set's package changes (for the changelog).
	Changes []sets.Change
}

// defaultLocalBuildOptions are what "check --build" uses: DataDir
// var/build, the fake installer, a one-hour limit.
func defaultLocalBuildOptions() (localBuildOptions, error) {
	dd, err := filepath.Abs(filepath.Join("var", "build"))
	if err != nil {
		return localBuildOptions{}, err
	}
	fe, err := findFakeEmerge()
	if err != nil {
		return localBuildOptions{}, err
	}
	return localBuildOptions{
		DataDir: dd, Command: []string{fe, "--update", "--deep", "@{{.Set}}"},
		Env: map[string]string{}, Timeout: time.Hour, SeedFromBase: true,
	}, nil
}

// findFakeEmerge locates the fake installer: $COMPATBOT_FAKEEMERGE, else
// testdata/fakeemerge/fakeemerge under the current directory.
func findFakeEmerge() (string, error) {
	p := os.Getenv("COMPATBOT_FAKEEMERGE")
	if p == "" {
		p = filepath.Join("testdata", "fakeemerge", "fakeemerge")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(abs); err != nil || st.Mode()&0o111 == 0 {
		if os.Getenv("COMPATBOT_FAKEEMERGE") == "" {
			return embeddedFakeEmerge() // outside a checkout: the copy in the binary (fakeemerge.go)
		}
		return "", fmt.Errorf("no build command: the fake installer %s is not here (run from a compatbot checkout, set COMPATBOT_FAKEEMERGE, or use 'compatbot build --command')", p)
	}
	return abs, nil
}

var (
	runSeq    atomic.Int64
	unsafeRun = regexp.MustCompile(`[^A-Za-z0-9._+-]`)
)

// runID names a run uniquely and safely for a directory name.
func runID(t sets.Target, sha string) string {
	s := fmt.Sprintf("%s-%s-%s-%s-%d-%d", t.Version, t.OS, t.Arch, shortSHA(sha), time.Now().Unix(), runSeq.Add(1))
	return unsafeRun.ReplaceAllString(s, "_")
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	if s == "" {
		return "local"
	}
	return s
}

// runLocalBuild builds and tests, on this machine, every target whose set
// the head changes against the base (rev from setscheck.CheckRefs on
// gitDir), and returns one completed check per target, as the bot would
// report them. Targets of another arch get a skipped check: the local
// runner builds only this machine's arch. Progress goes to progress (one
// line per step, with the log path). The error is for setup problems (the
// head tree cannot be read, the data dir cannot be made); a failed build is
// a check with conclusion failure.
//
// "compatbot check --build" calls it as its checkBuild with
// defaultLocalBuildOptions; the local cycle (cycle.go) with the test
// target's published tree as opts.Lower.
func runLocalBuild(ctx context.Context, opts localBuildOptions, gitDir string, rev *setscheck.Revisions, progress io.Writer) ([]localBuild, error) {
	if rev == nil || rev.Head == nil || rev.Base == nil {
		return nil, errors.New("no revisions to build")
	}
	diffs := sets.Diff(rev.Base, rev.Head)
	if len(diffs) == 0 {
		fmt.Fprintln(progress, "compatbot: no set changed; nothing to build")
		return nil, nil
	}
	work := filepath.Join(opts.DataDir, "checkouts", shortSHA(rev.HeadSHA))
	if err := gitrepo.ExportTree(ctx, gitDir, rev.HeadSHA, work); err != nil {
		return nil, fmt.Errorf("checking out head %s: %w", shortSHA(rev.HeadSHA), err)
	}
	var builds []localBuild
	for _, d := range diffs {
		t := d.Target
		if t.Arch != build.HostArch() {
			builds = append(builds, localBuild{Target: t, Check: report.Check{Name: pipeline.CheckName(t), Conclusion: report.Skipped,
				Title:   fmt.Sprintf("No build host for %s-%s here", t.OS, t.Arch),
				Summary: fmt.Sprintf("The local runner builds %s only; the bot builds %s on a build host of that arch.", build.HostArch(), t)}})
			continue
		}
		sf := rev.Head.Set(t)
		if sf == nil {
			builds = append(builds, localBuild{Target: t, Check: report.Check{Name: pipeline.CheckName(t), Conclusion: report.Neutral,
				Title: "Set removed", Summary: "The PR removes this target's set; there is nothing to build."}})
			continue
		}
		lowerRoot := filepath.Join(opts.DataDir, "published")
		if base := rev.Base.Set(t); opts.SeedFromBase && base != nil {
			if err := seed(ctx, opts, gitDir, rev.BaseSHA, base, lowerRoot, t, progress); err != nil {
				return nil, err
			}
		}
		lowerDir, _, err := opts.lower().Current(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("%s: published tree: %w", t, err)
		}
		lineage, err := deploy.ReadLineage(lowerDir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		out, err := buildOne(ctx, opts, rev.Head.Config, t, sf.Name, filepath.Join(work, filepath.FromSlash(sf.Path)), sf.Path, work, rev.HeadSHA, progress)
		if err != nil {
			return nil, err
		}
		builds = append(builds, localBuild{Target: t, Check: out.Check, Outcome: &out, BaseLineage: lineage, Changes: d.Changes})
	}
	return builds, nil
}

// buildOne runs the pipeline for one target. cfg is the repository's
// config (nil for a set file alone): its package.mask/unmask/use lines for
// t reach Portage, and its tools list is the tools check's unless
// opts.Tools names one.
func buildOne(ctx context.Context, opts localBuildOptions, cfg *sets.Config, t sets.Target, setName, setFile, setPath, work, headSHA string, progress io.Writer) (pipeline.Outcome, error) {
	id := runID(t, headSHA)
	p := pipeline.Params{
		ID: id, DataDir: opts.DataDir, Target: t,
		SetName: setName, SetFile: setFile, SetPath: setPath, WorkDir: work, HeadSHA: headSHA,
		Build: pipeline.BuildConfig{Command: opts.Command, Env: opts.Env, Timeout: opts.Timeout, Sandbox: opts.Sandbox,
			DistDir: filepath.Join(opts.DataDir, "distfiles")},
		Tests:       pipeline.TestConfig{AllowLibcUpdate: opts.AllowLibcUpdate},
		Runner:      &build.LocalRunner{},
		Lower:       opts.lower(),
		Store:       &artifact.Store{Dir: filepath.Join(opts.DataDir, "artifacts")},
		LogURL:      filepath.Join(opts.DataDir, "runs", id, "build.log"),
		KeepScratch: opts.KeepScratch,
	}
	p.Tests.Tools = opts.Tools
	if p.Tests.Tools == nil && cfg != nil && len(cfg.Tools) > 0 {
		p.Tests.Tools = compattest.ToolsNamed(cfg.Tools)
	}
	pc := cfg.PortageFor(t)
	p.Mask, p.Unmask, p.Use = pc.Mask, pc.Unmask, pc.Use
	if rp := opts.Portage; rp != nil {
		mountAt, err := portage.ExpandEPrefix(rp.EPrefix, t)
		if err != nil {
			return pipeline.Outcome{}, err
		}
		p.Runner = rp.runner(filepath.Join(opts.DataDir, "mirror"))
		p.Build.Command = rp.Config.DefaultCommand()
		p.Build.DistDir = "" // Portage's own, in the run's work dir
		p.Build.MountAt = rp.eprefix()
		p.Build.KeepOut = portage.KeptOut
		fmt.Fprintf(progress, "compatbot: %s: real emerge at EPREFIX %s\n", pipeline.CheckName(t), mountAt)
	} else if err := os.MkdirAll(p.Build.DistDir, 0o755); err != nil {
		return pipeline.Outcome{}, err
	}
	p.Progress = func(c report.Check) {
		fmt.Fprintf(progress, "compatbot: %s: %s\n", c.Name, c.Title)
	}
	fmt.Fprintf(progress, "compatbot: %s: log at %s\n", pipeline.CheckName(t), p.LogURL)
	out, err := pipeline.Run(ctx, p)
	if err != nil {
		return pipeline.Outcome{}, err
	}
	fmt.Fprintf(progress, "compatbot: %s: %s (%s)\n", out.Check.Name, out.Check.Conclusion, out.Check.Title)
	return out, nil
}

// seed builds the base set into the published tree of t when that tree
// has no package database yet, standing in for the deploy that published
// the base. It runs the build command directly, without an overlay.
func seed(ctx context.Context, opts localBuildOptions, gitDir, baseSHA string, sf *sets.SetFile, lowerRoot string, t sets.Target, progress io.Writer) error {
	dir, _, err := pipeline.DirLower{Root: lowerRoot}.Current(ctx, t)
	if err != nil {
		return err
	}
	if inst, err := vdb.Read(dir); err == nil && len(inst) > 0 {
		return nil
	}
	baseWork := filepath.Join(opts.DataDir, "checkouts", shortSHA(baseSHA))
	if err := gitrepo.ExportTree(ctx, gitDir, baseSHA, baseWork); err != nil {
		return fmt.Errorf("checking out base %s: %w", shortSHA(baseSHA), err)
	}
	logPath := filepath.Join(opts.DataDir, "runs", "seed-"+runID(t, baseSHA), "build.log")
	fmt.Fprintf(progress, "compatbot: %s: publishing the base %s locally first (log at %s)\n", pipeline.CheckName(t), shortSHA(baseSHA), logPath)
	res, err := (&build.LocalRunner{}).Run(ctx, build.Job{
		Target: t, SetName: sf.Name, SetFile: filepath.Join(baseWork, filepath.FromSlash(sf.Path)),
		Command: opts.Command, Env: opts.Env, WorkDir: baseWork, Prefix: dir,
		DistDir: filepath.Join(opts.DataDir, "distfiles"), Timeout: opts.Timeout, LogPath: logPath,
	})
	if err != nil {
		return err
	}
	if !res.OK() {
		return fmt.Errorf("building the base set of %s failed (exit %d); see %s", t, res.ExitCode, logPath)
	}
	if err := os.MkdirAll(filepath.Join(dir, ".compatbot"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ".compatbot", "revision"), []byte(baseSHA+"\n"), 0o644)
}

// parseCommand reads --command: a JSON array, or words split on spaces.
func parseCommand(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var argv []string
		if err := json.Unmarshal([]byte(s), &argv); err != nil {
			return nil, fmt.Errorf("--command: not a JSON array of strings: %v", err)
		}
		return argv, nil
	}
	return strings.Fields(s), nil
}

type envFlag map[string]string

func (e envFlag) String() string { return "" }
func (e envFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", s)
	}
	e[k] = v
	return nil
}

// targetFromPath reads sets/<version>/<os>-<arch> (the tree layout).
func targetFromPath(p string) (sets.Target, bool) {
	p = filepath.ToSlash(p)
	osArch := path.Base(p)
	version := path.Base(path.Dir(p))
	o, a, ok := strings.Cut(osArch, "-")
	if !ok || version == "." || version == "/" {
		return sets.Target{}, false
	}
	return sets.Target{Version: version, OS: o, Arch: a}, true
}

func buildCmd(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("build", buildUsage, stdout, stderr)
	setFile := fl.String("set", "", "the set `FILE` to build (required)")
	targetS := fl.String("target", "", "`VERSION/OS-ARCH` (default: from the set's path)")
	dataDir := fl.String("data-dir", filepath.Join("var", "build"), "`DIR` for published trees, runs and artifacts")
	command := fl.String("command", "", "build command `ARGV` (JSON array or words; default: the fake installer)")
	env := envFlag{}
	fl.Var(env, "env", "extra `NAME=VALUE` for the build command (repeatable)")
	timeout := fl.Duration("timeout", 4*time.Hour, "time limit of the build")
	sandbox := fl.Bool("sandbox", false, "run the build under bubblewrap with no network")
	allowLibc := fl.Bool("allow-libc-update", false, "accept a changed glibc version (what a PR says with compat: allow-libc-update)")
	keep := fl.Bool("keep-scratch", false, "keep the overlay's upper/work directories after the run")
	portagePath := fl.String("portage", "", "Portage release `PATH` (tarball or unpacked tree; default: the Prefix's emerge)")
	var repos listFlag
	fl.Var(&repos, "ebuild-repo", "ebuild repository `REPO` (repeatable; the first is the main one)")
	profile := fl.String("profile", "", "profile `DIR` (default: the first stable one in the main repository's profiles.desc)")
	distfiles := fl.String("distfiles", "", "where sources come from: a directory or an http(s) URL (`SRC`)")
	eprefix := fl.String("eprefix", portage.DefaultEPrefix, "EPREFIX `TEMPLATE`: where the target is published")
	toolsFlag := fl.String("tools", "", "required tools `a,b` (default: the built-in list)")
	if code, done := parseFlags(fl, args, stdout); done {
		return code
	}
	if *setFile == "" {
		fmt.Fprintln(stderr, "compatbot build: --set is required\nRun 'compatbot build --help' for usage.")
		return 2
	}
	if _, err := os.Stat(*setFile); err != nil {
		fmt.Fprintf(stderr, "compatbot build: --set: %v\n", err)
		return 2
	}
	var t sets.Target
	if *targetS != "" {
		v, oa, ok1 := strings.Cut(*targetS, "/")
		o, a, ok2 := strings.Cut(oa, "-")
		if !ok1 || !ok2 || v == "" || o == "" || a == "" {
			fmt.Fprintf(stderr, "compatbot build: --target %q: want VERSION/OS-ARCH, e.g. 2026.06/linux-x86_64\n", *targetS)
			return 2
		}
		t = sets.Target{Version: v, OS: o, Arch: a}
	} else {
		var ok bool
		if t, ok = targetFromPath(*setFile); !ok {
			fmt.Fprintf(stderr, "compatbot build: cannot tell the target from %s; give --target VERSION/OS-ARCH\n", *setFile)
			return 2
		}
	}
	opts := localBuildOptions{Env: env, Timeout: *timeout, Sandbox: *sandbox, AllowLibcUpdate: *allowLibc, KeepScratch: *keep}
	var err error
	if opts.DataDir, err = filepath.Abs(*dataDir); err != nil {
		fmt.Fprintf(stderr, "compatbot build: %v\n", err)
		return 2
	}
	if *toolsFlag != "" {
		var names []string
		for _, n := range strings.Split(*toolsFlag, ",") {
			if n = strings.TrimSpace(n); n == "" || !build.SafeName(n) {
				fmt.Fprintf(stderr, "compatbot build: --tools %q: %q is not a tool name\n", *toolsFlag, n)
				return 2
			}
			names = append(names, n)
		}
		// lmod keeps its built-in definition (not in a bin dir), as in
		// the repo config's tools list.
		opts.Tools = compattest.ToolsNamed(names)
	}
	if len(repos) > 0 {
		if *command != "" {
			fmt.Fprintln(stderr, "compatbot build: --command and --ebuild-repo exclude each other (with --ebuild-repo, emerge is the command)")
			return 2
		}
		rp, err := realPortageOptions(opts.DataDir, *portagePath, repos, *profile, *distfiles, *eprefix, t)
		if err != nil {
			fmt.Fprintf(stderr, "compatbot build: %v\n", err)
			return 2
		}
		opts.Portage = rp
	} else if *portagePath != "" || *distfiles != "" || *profile != "" {
		fmt.Fprintln(stderr, "compatbot build: --portage, --distfiles and --profile need --ebuild-repo")
		return 2
	} else if *command != "" {
		if opts.Command, err = parseCommand(*command); err != nil || len(opts.Command) == 0 {
			fmt.Fprintf(stderr, "compatbot build: --command %q: %v\n", *command, orEmpty(err))
			return 2
		}
	} else {
		fe, err := findFakeEmerge()
		if err != nil {
			fmt.Fprintf(stderr, "compatbot build: %v\n", err)
			return 2
		}
		opts.Command = []string{fe, "--update", "--deep", "@{{.Set}}"}
	}
	abs, err := filepath.Abs(*setFile)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot build: %v\n", err)
		return 2
	}
	work, _ := os.Getwd()
	out, err := buildOne(context.Background(), opts, nil, t, filepath.Base(abs), abs, filepath.ToSlash(*setFile), work, headOf(work), stderr)
	c := out.Check
	if err != nil {
		fmt.Fprintf(stderr, "compatbot build: %v\n", err)
		return 2
	}
	fmt.Fprint(stdout, c.Markdown())
	if c.Conclusion != report.Success {
		return 1
	}
	return 0
}

func orEmpty(err error) error {
	if err == nil {
		return errors.New("empty command")
	}
	return err
}

// headOf is the commit of a work tree, for the reproducibility record; ""
// outside a git repository.
func headOf(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--verify", "-q", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func (rp *realPortage) eprefix() string {
	if rp.EPrefix == "" {
		return portage.DefaultEPrefix
	}
	return rp.EPrefix
}

// runner is the build runner for real emerge with sources through the
// mirror at mirrorDir.
func (rp *realPortage) runner(mirrorDir string) *portage.Runner {
	return &portage.Runner{Inner: &build.LocalRunner{}, Config: rp.Config,
		Mirror: &mirror.Mirror{Dir: mirrorDir}, Distfiles: rp.Distfiles}
}

// portageBuild configures the bot (serve) for real emerge from the build:
// section's portage keys: the runner and the pipeline's build config. ok
// is false when the config names no ebuild repository (build.command is
// used as before).
func portageBuild(dataDir, mirrorDir string, bc pipeline.BuildConfig, c portageConfig) (build.Runner, pipeline.BuildConfig, bool, error) {
	if len(c.EbuildRepos) == 0 {
		return nil, bc, false, nil
	}
	if len(bc.Command) > 0 {
		return nil, bc, false, fmt.Errorf("build: command and ebuild_repos exclude each other (with ebuild_repos, emerge is the command)")
	}
	rp, err := realPortageOptions(dataDir, c.Portage, c.EbuildRepos, c.Profile, c.Distfiles, c.EPrefix, sets.Target{Version: "0", OS: "linux", Arch: build.HostArch()})
	if err != nil {
		return nil, bc, false, fmt.Errorf("build: %v", err)
	}
	if mirrorDir == "" {
		mirrorDir = filepath.Join(dataDir, "mirror")
	}
	bc.Command = rp.Config.DefaultCommand()
	bc.DistDir = ""
	bc.MountAt = rp.eprefix()
	bc.KeepOut = portage.KeptOut
	return rp.runner(mirrorDir), bc, true, nil
}

// portageConfig are the build: keys of the server config that select real
// emerge, the same as compatbot build's flags.
type portageConfig struct {
	Portage     string
	EbuildRepos []string
	Profile     string
	Distfiles   string
	EPrefix     string
}

// realPortageOptions checks the real-emerge flags and unpacks Portage.
func realPortageOptions(dataDir, portagePath string, repoDirs []string, profile, distfiles, eprefix string, t sets.Target) (*realPortage, error) {
	rel, err := portage.Unpack(context.Background(), portagePath, dataDir)
	if err != nil {
		return nil, fmt.Errorf("--portage: %v", err)
	}
	c := portage.Config{Release: rel}
	for _, d := range repoDirs {
		r, err := portage.OpenRepo(d)
		if err != nil {
			return nil, fmt.Errorf("--ebuild-repo: %v", err)
		}
		c.Repos = append(c.Repos, r)
	}
	if profile != "" {
		if c.Profile, err = filepath.Abs(profile); err != nil {
			return nil, err
		}
		if st, err := os.Stat(c.Profile); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("--profile %s: not a directory", profile)
		}
	} else if c.Profile, err = c.Repos[0].StableProfile(portage.KeywordArch(t.Arch)); err != nil {
		return nil, err
	}
	if distfiles != "" && !strings.HasPrefix(distfiles, "http://") && !strings.HasPrefix(distfiles, "https://") {
		if distfiles, err = filepath.Abs(distfiles); err != nil {
			return nil, err
		}
		if st, err := os.Stat(distfiles); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("--distfiles %s: not a directory or an http(s) URL", distfiles)
		}
	}
	if _, err := portage.ExpandEPrefix(eprefix, t); err != nil {
		return nil, fmt.Errorf("--eprefix: %v", err)
	}
	return &realPortage{Config: c, Distfiles: distfiles, EPrefix: eprefix}, nil
}

package prflow

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/compatbot/compatbot/internal/testgit"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/mirror"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/publish"
	"github.com/compatbot/compatbot/workflow/state"
)

const (
	appID      = 4242
	inst       = 31
	repoName   = "eessi/compat-layer"
	fakeEmerge = "../../testdata/fakeemerge/fakeemerge"
)

var (
	x86_2026 = sets.Target{Version: "2026.06", OS: "linux", Arch: "x86_64"}
	x86_2025 = sets.Target{Version: "2025.06", OS: "linux", Arch: "x86_64"}
	arm_2026 = sets.Target{Version: "2026.06", OS: "linux", Arch: "aarch64"}
)

// env is a test's world: portsDouble in GitHub's place, a real SQLite file,
// a real git repository, the real local publish backend as the lower
// layer, the real artifact store, and fakeemerge (Gentoo's emerge cannot
// run here) wrapped in a script that also leaves a source file in DISTDIR
// (or, when fetching is off as in a production-base rebuild, requires it),
// can be held while a file exists, and sleeps when the set says "# slow".
type env struct {
	t       testing.TB
	ports   *portsDouble
	db      *state.DB
	dbPath  string
	git     string // the repository (work tree with .git)
	baseSHA string
	headSHA string
	dataDir string
	hold    string // the build waits while this file exists
	store   *artifact.Store
	testPub publish.Publisher
	prodPub publish.Publisher
	mirror  *mirror.Mirror
	command []string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t}
	fe, err := filepath.Abs(fakeEmerge)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fe); err != nil {
		t.Fatalf("the fake installer is missing: %v", err)
	}
	root := t.TempDir()
	e.dataDir = filepath.Join(root, "data")
	e.hold = filepath.Join(root, "hold")
	script := filepath.Join(root, "build.sh")
	// A test configuration, not PR content: the set file's path is only
	// read, never evaluated.
	if err := os.WriteFile(script, []byte(`#!/bin/sh
set -e
src="$COMPAT_DISTDIR/$COMPAT_SET-$COMPAT_VERSION.tar.gz"
if [ "$FETCHCOMMAND" = false ]; then
	# A rebuild on the production base may not fetch: its sources must be
	# in DISTDIR already, from the mirror, with the tested content.
	grep -qx "sources of $COMPAT_SET" "$src" || { echo "no mirrored source $src" >&2; exit 3; }
else
	printf 'sources of %s\n' "$COMPAT_SET" > "$src"
fi
while [ -e "`+e.hold+`" ]; do sleep 0.05; done
if grep -q '# slow' "$COMPAT_SET_FILE"; then sleep 30; fi
exec "`+fe+`" "$@"
`), 0o755); err != nil {
		t.Fatal(err)
	}
	e.command = []string{script, "--update", "--deep", "@{{.Set}}"}

	// The example PR passes the sets lint, so its builds run.
	e.git = testgit.ExampleRepo(t)
	e.baseSHA = e.rev("main")
	e.headSHA = e.rev("pr")

	e.ports = newPortsDouble()
	if err := e.ports.CommitFile(context.Background(), repoName, "main", "changelog/README.md", []byte("# Changelog\n"), "init"); err != nil {
		t.Fatal(err)
	}
	e.dbPath = filepath.Join(root, "compatbot.db")
	e.openDB()
	e.store = &artifact.Store{Dir: filepath.Join(e.dataDir, "artifacts")}
	if e.testPub, err = publish.Open(publish.TargetConfig{Backend: "local", Repository: "test.example.org", BaseDir: filepath.Join(root, "targets")}); err != nil {
		t.Fatal(err)
	}
	if e.prodPub, err = publish.Open(publish.TargetConfig{Backend: "local", Repository: "prod.example.org", BaseDir: filepath.Join(root, "targets")}); err != nil {
		t.Fatal(err)
	}
	e.mirror = &mirror.Mirror{Dir: filepath.Join(root, "mirror")}
	return e
}

func (e *env) openDB() {
	e.t.Helper()
	db, err := state.Open(e.dbPath)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	e.db = db
}

func (e *env) rev(ref string) string {
	e.t.Helper()
	return testgit.Git(e.t, e.git, "rev-parse", ref)
}

// commit makes a child of parent with files replaced and returns its SHA.
func (e *env) commit(parent string, files map[string]string) string {
	e.t.Helper()
	return testgit.Commit(e.t, e.git, parent, files, "change")
}

func (e *env) file(ref, path string) string {
	e.t.Helper()
	out, err := exec.Command("git", "-C", e.git, "show", ref+":"+path).CombinedOutput()
	if err != nil {
		e.t.Fatalf("git show: %v\n%s", err, out)
	}
	return string(out)
}

// startSlowBuild builds x86_2026 at a child of the head whose set makes
// the build sleep ("# slow"), waits until that build runs, and returns
// the child's SHA.
func (e *env) startSlowBuild(b *Builder) string {
	e.t.Helper()
	const setPath = "sets/2026.06/linux-x86_64"
	slow := e.commit(e.headSHA, map[string]string{setPath: e.file(e.headSHA, setPath) + "# slow\n"})
	if err := b.Build(context.Background(), e.request(slow, x86_2026)); err != nil {
		e.t.Fatal(err)
	}
	e.waitRun(slow, pipeline.CheckName(x86_2026), "in_progress")
	return slow
}

func (e *env) builder(configure ...func(*Options)) *Builder {
	e.t.Helper()
	opts := Options{
		DB: e.db, DataDir: e.dataDir,
		Build:    pipeline.BuildConfig{Command: e.command, Env: map[string]string{}, Timeout: time.Minute},
		Lower:    publish.Lower{P: e.testPub, Empty: filepath.Join(e.dataDir, "empty")},
		Store:    e.store,
		Reporter: e.ports,
		Mirror:   e.mirror, MaxConcurrent: 2,
		LogURL: func(id string) string { return "https://compatbot.example/builds/" + id + "/log" },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, c := range configure {
		c(&opts)
	}
	b, err := New(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(b.Close)
	return b
}

func (e *env) request(sha string, targets ...sets.Target) BuildRequest {
	return BuildRequest{Repo: repoName, Installation: inst, PR: 7, BaseRef: "main", BaseSHA: e.baseSHA, HeadSHA: sha,
		GitDir: e.git, Targets: targets}
}

// runsFor lists the check runs of sha by name.
func (e *env) runsFor(sha string) map[string][]checkRun {
	out := map[string][]checkRun{}
	for _, r := range e.ports.CheckRuns() {
		if r.HeadSHA == sha {
			out[r.Name] = append(out[r.Name], r)
		}
	}
	return out
}

// waitRun polls until the run of name for sha has status st.
func (e *env) waitRun(sha, name, st string) checkRun {
	e.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range e.runsFor(sha)[name] {
			if r.Status == st {
				return r
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("check run %q of %s never reached %s; runs: %+v", name, sha[:7], st, e.runsFor(sha))
	return checkRun{}
}

func (e *env) String() string { return fmt.Sprintf("env(%s)", e.dataDir) }

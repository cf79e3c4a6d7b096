package pipeline

// These tests mount real overlays (they run as root, as CI does), run the
// real build runner and compat tests, and store real artifacts. Only emerge
// is a test double: testdata/fakeemerge (see its README).

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/report"
)

var target = sets.Target{Version: "2026.06", OS: "linux", Arch: build.HostArch()}

const baseSet = `# Lmod provides the module command
=sys-cluster/lmod-8.7.53::eessi
dev-lua/luaposix # Lmod's Lua needs POSIX bindings
=sys-devel/binutils-2.44
=sys-devel/gcc-14.2.1_p20250301
=dev-lang/python-3.12.10 # EasyBuild runs on Python 3
sys-process/numactl # MPI binds to NUMA nodes
`

// headSet upgrades python, adds zstd and drops numactl.
var headSet = strings.Replace(strings.Replace(baseSet, "python-3.12.10", "python-3.12.11", 1), "sys-process/numactl # MPI binds to NUMA nodes\n", "", 1) +
	"app-arch/zstd # compressed tarballs\n"

func fakeEmerge(t *testing.T) string {
	p, err := filepath.Abs("../../testdata/fakeemerge/fakeemerge")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

type env struct {
	params    Params
	published string // the lower layer's directory
	progress  []report.Check
	mu        sync.Mutex
}

// setup publishes baseSet (built with the fake installer into a plain
// directory, as a previous deploy would have) and prepares a run of head.
func setup(t *testing.T, head string, dataDir string) *env {
	t.Helper()
	root := t.TempDir()
	if dataDir == "" {
		dataDir = filepath.Join(root, "data")
	}
	e := &env{published: filepath.Join(root, "published", target.Version, target.OS+"-"+target.Arch)}
	if err := os.MkdirAll(filepath.Join(e.published, ".compatbot"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.published, ".compatbot", "revision"), []byte("r41\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(root, "checkout")
	setPath := "sets/2026.06/linux-" + target.Arch
	for dir, set := range map[string]string{filepath.Join(root, "base"): baseSet, work: head} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(setPath)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, setPath), []byte(set), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(fakeEmerge(t))
	cmd.Env = []string{"COMPAT_PREFIX=" + e.published, "COMPAT_SET_FILE=" + filepath.Join(root, "base", setPath), "PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("publishing the base: %v\n%s", err, out)
	}
	e.params = Params{
		ID: "pr7-abc123-" + target.Arch, DataDir: dataDir, Target: target,
		SetName: "linux-" + target.Arch, SetFile: filepath.Join(work, setPath), SetPath: setPath,
		WorkDir: work, HeadSHA: "abc123",
		Build: BuildConfig{
			Command: []string{fakeEmerge(t), "--update", "--deep", "@{{.Set}}"},
			Env:     map[string]string{},
			Timeout: time.Minute,
		},
		Tests:  TestConfig{Timeout: 10 * time.Second},
		Runner: &build.LocalRunner{Grace: 500 * time.Millisecond},
		Lower:  DirLower{Root: filepath.Join(root, "published")},
		Store:  &artifact.Store{Dir: filepath.Join(root, "store")},
		LogURL: "https://compatbot.example/runs/pr7-abc123/log",
	}
	e.params.Progress = func(c report.Check) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.progress = append(e.progress, c)
	}
	return e
}

func (e *env) run(t *testing.T, ctx context.Context) Outcome {
	t.Helper()
	out, err := Run(ctx, e.params)
	if err != nil {
		t.Fatal(err)
	}
	if out.Check.Name != "compat 2026.06 linux-"+target.Arch {
		t.Errorf("check name %q", out.Check.Name)
	}
	// Whatever happened, the overlay is gone and its scratch cleaned.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), out.RunDir) {
		t.Errorf("an overlay under %s is still mounted", out.RunDir)
	}
	if _, err := os.Stat(filepath.Join(out.RunDir, "overlay")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("scratch overlay dir left behind: %v", err)
	}
	return out
}

func TestSuccess(t *testing.T) {
	e := setup(t, headSet, "")
	out := e.run(t, context.Background())
	c := out.Check
	if c.Conclusion != report.Success {
		t.Fatalf("conclusion %s: %s\n%s\n%s", c.Conclusion, c.Title, c.Summary, c.Text)
	}
	if !strings.HasPrefix(c.Title, "Built and tested: 3 package changes, artifact ") {
		t.Errorf("title %q", c.Title)
	}
	if len(e.progress) != 2 || e.progress[0].Title != "Queued" || e.progress[1].DetailsURL != e.params.LogURL ||
		e.progress[1].Conclusion != "" || !strings.Contains(e.progress[1].Summary, "[Live log]("+e.params.LogURL+")") {
		t.Errorf("progress %+v", e.progress)
	}
	art := out.Artifact
	if art == nil || !strings.HasPrefix(art.Digest, "sha256:") || art.Size == 0 {
		t.Fatalf("artifact %+v", art)
	}
	for _, w := range []string{art.Digest, "| dev-lang/python | upgraded | 3.12.10:3.12::gentoo | 3.12.11:3.12::gentoo |",
		"| sys-process/numactl | removed |", "| app-arch/zstd | added |", "| tools | ✅ pass |", "revision `r41`"} {
		if !strings.Contains(c.Summary, w) {
			t.Errorf("summary lacks %q:\n%s", w, c.Summary)
		}
	}
	// Upgrading and removing left whiteouts; the manifest lists them.
	del := strings.Join(art.Manifest.Deleted(), "\n")
	for _, w := range []string{"var/db/pkg/dev-lang/python-3.12.10", "usr/bin/numactl", "var/db/pkg/sys-process"} {
		if !strings.Contains(del+"\n", w+"\n") {
			t.Errorf("manifest deletions lack %s:\n%s", w, del)
		}
	}
	// The published tree is untouched.
	if _, err := os.Stat(filepath.Join(e.published, "usr/bin/numactl")); err != nil {
		t.Errorf("the lower layer lost a file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.published, "usr/bin/zstd")); err == nil {
		t.Error("the build wrote into the lower layer")
	}
	// The reproducibility record is inside the artifact.
	info := readInfo(t, art.TarPath())
	if info.HeadSHA != "abc123" || info.BaseRevision != "r41" || info.Target != target || info.Host == "" ||
		info.Command[0] != fakeEmerge(t) || info.Command[3] != "@linux-"+target.Arch || !info.Finished.After(info.Started) {
		t.Errorf("build info %+v", info)
	}
	if !contains(info.Installed, "dev-lang/python-3.12.11::gentoo") || !contains(info.Installed, "sys-cluster/lmod-8.7.53::eessi") || contains(info.Installed, "sys-process/numactl-1.0::gentoo") {
		t.Errorf("installed %v", info.Installed)
	}
	for _, f := range []string{"build.log", "results.json", "results.md"} {
		if _, err := os.Stat(filepath.Join(out.RunDir, f)); err != nil {
			t.Error(err)
		}
	}
	if err := e.params.Store.(*artifact.Store).Verify(art.Digest); err != nil {
		t.Error(err)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func readInfo(t *testing.T, tarPath string) BuildInfo {
	t.Helper()
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("%s not in the artifact", BuildInfoPath)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "./") == BuildInfoPath {
			var info BuildInfo
			if err := json.NewDecoder(tr).Decode(&info); err != nil {
				t.Fatal(err)
			}
			return info
		}
	}
}

// The sandbox (bubblewrap, CI installs it) must work with the overlay
// mount as the Prefix.
func TestSandboxedBuild(t *testing.T) {
	e := setup(t, headSet, "")
	e.params.Build.Sandbox = true
	out := e.run(t, context.Background())
	if out.Check.Conclusion != report.Success {
		t.Fatalf("%s: %q\n%s", out.Check.Conclusion, out.Check.Title, out.Check.Text)
	}
	// The success above would not show a Sandbox flag the pipeline drops:
	// with no bubblewrap to be found, the sandboxed build must not start.
	e.params.Runner = &build.LocalRunner{Grace: 500 * time.Millisecond, Bwrap: "/nonexistent/bwrap"}
	out = e.run(t, context.Background())
	if out.Check.Conclusion != report.Failure || !strings.Contains(out.Check.Summary, "sandbox") {
		t.Errorf("build with a missing bwrap: %s: %q\n%s", out.Check.Conclusion, out.Check.Title, out.Check.Summary)
	}
}

func TestBuildFailure(t *testing.T) {
	e := setup(t, headSet, "")
	e.params.Build.Env["FAKEEMERGE_FAIL"] = "app-arch/zstd"
	out := e.run(t, context.Background())
	c := out.Check
	if c.Conclusion != report.Failure || c.Title != "Build failed: app-arch/zstd-1.5.7 did not build (compile phase)" {
		t.Fatalf("%s: %q", c.Conclusion, c.Title)
	}
	if out.Artifact != nil || out.Tests != nil {
		t.Error("a failed build produced tests or an artifact")
	}
	if !strings.Contains(c.Text, "* ERROR: app-arch/zstd-1.5.7::gentoo failed (compile phase)") {
		t.Errorf("text lacks the log tail:\n%s", c.Text)
	}
}

func TestTestsFail(t *testing.T) {
	head := headSet + "<dev-util/patchelf-0.5 # no catalogue version: the fake installer takes 0.5, which < does not allow\n"
	e := setup(t, head, "")
	out := e.run(t, context.Background())
	c := out.Check
	if c.Conclusion != report.Failure || c.Title != "Tests failed: atoms-satisfied" || out.Artifact != nil {
		t.Fatalf("%s: %q", c.Conclusion, c.Title)
	}
	if len(c.Annotations) != 1 || c.Annotations[0].Path != e.params.SetPath || c.Annotations[0].StartLine != 8 {
		t.Errorf("annotations %+v", c.Annotations)
	}
}

func TestTimeout(t *testing.T) {
	e := setup(t, headSet, "")
	e.params.Build.Env["FAKEEMERGE_SLEEP"] = "30"
	e.params.Build.Timeout = 500 * time.Millisecond
	start := time.Now()
	out := e.run(t, context.Background())
	if out.Check.Conclusion != report.TimedOut || out.Check.Title != "Build timed out after 500ms" {
		t.Fatalf("%s: %q", out.Check.Conclusion, out.Check.Title)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("a 500ms limit took %s", d)
	}
}

func TestCancelledByNewPush(t *testing.T) {
	e := setup(t, headSet, "")
	e.params.Build.Env["FAKEEMERGE_SLEEP"] = "30"
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	log := filepath.Join(e.params.DataDir, "runs", e.params.ID, "build.log")
	go func() {
		// Cancel once fakeemerge really runs, as a new push would.
		for i := 0; i < 1000; i++ {
			if b, _ := os.ReadFile(log); strings.Contains(string(b), "sleeping") {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel(errors.New("new push def456"))
	}()
	out := e.run(t, ctx)
	if out.Check.Conclusion != report.Cancelled || out.Check.Title != "Cancelled: new push def456" {
		t.Fatalf("%s: %q\n%s", out.Check.Conclusion, out.Check.Title, out.Check.Text)
	}
	if out.Artifact != nil {
		t.Error("a cancelled run produced an artifact")
	}
}

func TestCancelledWhileQueued(t *testing.T) {
	e := setup(t, headSet, "")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("new push 0ff1ce"))
	out := e.run(t, ctx)
	if out.Check.Conclusion != report.Cancelled || out.Check.Title != "Cancelled: new push 0ff1ce" || out.Artifact != nil {
		t.Fatalf("%s: %q", out.Check.Conclusion, out.Check.Title)
	}
}

func TestDiskFull(t *testing.T) {
	// DataDir on a 2 MB tmpfs: the upper layer fills up.
	data := t.TempDir()
	if err := syscall.Mount("tmpfs", data, "tmpfs", 0, "size=2m"); err != nil {
		t.Fatalf("mounting a tmpfs (tests run as root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(data, syscall.MNT_DETACH) })
	e := setup(t, headSet, data)
	e.params.Build.Env["FAKEEMERGE_FILL"] = "4000000"
	out := e.run(t, context.Background())
	c := out.Check
	if c.Conclusion != report.Failure || c.Title != "Build failed: disk full (ENOSPC) in the upper layer" {
		t.Fatalf("%s: %q\n%s", c.Conclusion, c.Title, c.Text)
	}
	if !strings.Contains(c.Text, "No space left on device") {
		t.Errorf("text:\n%s", c.Text)
	}
}

func TestInvalidParams(t *testing.T) {
	e := setup(t, headSet, "")
	p := e.params
	p.Runner = nil
	if _, err := Run(context.Background(), p); err == nil {
		t.Error("no runner accepted")
	}
	p = e.params
	p.ID = "../escape"
	if _, err := Run(context.Background(), p); err == nil || !strings.Contains(err.Error(), "invalid run id") {
		t.Errorf("err = %v", err)
	}
	// A job the runner refuses (another arch) is a failed check, not a crash.
	p = e.params
	p.Target.Arch = "riscv64"
	if build.HostArch() == "riscv64" {
		p.Target.Arch = "x86_64"
	}
	out, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if out.Check.Conclusion != report.Failure || out.Check.Title != "The build could not start" || !strings.Contains(out.Check.Summary, "needs a build host for") {
		t.Errorf("%+v", out.Check)
	}
}

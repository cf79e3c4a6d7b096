package cluster

// These tests submit real batch jobs to a real single-node Slurm (Debian's
// slurm-wlm and munge, started once for this package by testslurm); the
// jobs re-execute this test binary in compatbot's job mode, as a compute
// node runs compatbot, and the node mounts real overlays (root, as CI).
// Only emerge is a test double (testdata/fakeemerge). Missing binaries
// fail the tests.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compatbot/compatbot/internal/testslurm"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/report"
)

func TestMain(m *testing.M) { testslurm.Main(m, RunJobFile) }

func slurmCluster(t testing.TB) *testslurm.Cluster { return testslurm.Shared(t) }

var target = sets.Target{Version: "2026.06", OS: "linux", Arch: build.HostArch()}

const baseSet = `=sys-cluster/lmod-8.7.53::eessi # Lmod provides the module command
dev-lua/luaposix # Lmod's Lua needs POSIX bindings
=sys-devel/binutils-2.44
=sys-devel/gcc-14.2.1_p20250301
=dev-lang/python-3.12.10 # EasyBuild runs on Python 3
`

// headSet upgrades python and adds zstd.
var headSet = strings.Replace(baseSet, "python-3.12.10", "python-3.12.11", 1) + "app-arch/zstd # compressed tarballs\n"

// world is a run on the cluster: a published tree of baseSet (built with
// the fake installer, as a deploy would have left it), the shared storage
// with the checkout of headSet, and the service's own artifact store.
type world struct {
	root, shared, nodeView, published string
	store                             *artifact.Store
	slurm                             *Slurm
	params                            pipeline.Params
	mu                                sync.Mutex
	progress                          []report.Check
}

func newWorld(t testing.TB, head string) *world {
	t.Helper()
	c := slurmCluster(t)
	fe, err := filepath.Abs("../../testdata/fakeemerge/fakeemerge")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	w := &world{root: root, shared: filepath.Join(root, "shared"), nodeView: filepath.Join(root, "node-view"),
		published: filepath.Join(root, "published", target.Version, target.OS+"-"+target.Arch)}
	// The nodes mount the shared storage elsewhere than the service.
	for _, d := range []string{w.shared, w.published} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(w.shared, w.nodeView); err != nil {
		t.Fatal(err)
	}
	setPath := "sets/2026.06/linux-" + target.Arch
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := filepath.Join(root, "base", setPath)
	write(base, baseSet)
	cmd := exec.Command(fe)
	cmd.Env = []string{"COMPAT_PREFIX=" + w.published, "COMPAT_SET_FILE=" + base, "PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("publishing the base: %v\n%s", err, out)
	}
	work := filepath.Join(w.shared, "checkouts", "run1")
	write(filepath.Join(work, setPath), head)
	w.store = &artifact.Store{Dir: filepath.Join(root, "service-store")}
	w.slurm = &Slurm{
		Slurm:     build.Slurm{JobArgv: []string{os.Args[0], "build-job"}, Partition: "zen4", TimeLimit: "10", Env: c.Env, Poll: 50 * time.Millisecond},
		SharedDir: w.shared, NodeSharedDir: w.nodeView, ScratchDir: filepath.Join(root, "node-scratch"),
	}
	id := "pr7-" + strings.ReplaceAll(t.Name(), "/", "-")
	w.params = pipeline.Params{
		ID: id, DataDir: w.shared, Target: target,
		SetName: "linux-" + target.Arch, SetFile: filepath.Join(work, setPath), SetPath: setPath,
		WorkDir: work, HeadSHA: "0123456789abcdef0123",
		Build: pipeline.BuildConfig{Command: []string{fe, "--update", "--deep", "@{{.Set}}"}, Env: map[string]string{},
			Timeout: time.Minute, DistDir: filepath.Join(w.shared, "distfiles")},
		Tests: pipeline.TestConfig{Timeout: 10 * time.Second},
		Lower: pipeline.DirLower{Root: filepath.Join(root, "published")},
		Store: w.store, LogURL: "https://compatbot.example/builds/" + id + "/log",
		Progress: func(c report.Check) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.progress = append(w.progress, c)
		},
	}
	return w
}

func (w *world) runDir() string { return filepath.Join(w.shared, "runs", w.params.ID) }

// TestSlurmPipelineRunsOnTheNode: the whole run is one batch job; the
// node stages the overlay in its own scratch, builds, tests and packs the
// artifact onto the shared storage; the service reports the job's states
// and takes the artifact in by digest, verified.
func TestSlurmPipelineRunsOnTheNode(t *testing.T) {
	w := newWorld(t, headSet)
	out, err := w.slurm.Execute(context.Background(), w.params)
	if err != nil {
		t.Fatal(err)
	}
	c := out.Check
	if c.Conclusion != report.Success || c.Name != pipeline.CheckName(target) {
		t.Fatalf("%s %s: %s\n%s\n%s\nslurmd.log:\n%s", c.Name, c.Conclusion, c.Title, c.Summary, c.Text, slurmCluster(t).Log("slurmd"))
	}
	id := readFile(t, filepath.Join(w.runDir(), "slurm", "jobid"))
	for _, want := range []string{"revision `none`", "| app-arch/zstd | added |", "Built by Slurm job " + id + " on "} {
		if !strings.Contains(c.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, c.Summary)
		}
	}
	if out.Artifact == nil || !strings.HasPrefix(out.Artifact.Path, w.store.Dir) {
		t.Fatalf("artifact %+v is not in the service's store", out.Artifact)
	}
	if err := w.store.Verify(out.Artifact.Digest); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(w.runDir(), "artifacts")); !os.IsNotExist(err) {
		t.Errorf("the node's copy of the artifact stayed on the shared storage: %v", err)
	}
	if out.Info == nil || out.Info.Host == "" || out.Build.LogPath != filepath.Join(w.runDir(), "build.log") {
		t.Errorf("outcome %+v", out)
	}
	if log := readFile(t, out.Build.LogPath); !strings.Contains(log, "compatbot: building "+target.String()) {
		t.Errorf("the node's build log:\n%s", log)
	}
	// The overlay was the node's: under its scratch, gone after the run.
	if ents, err := os.ReadDir(w.slurm.ScratchDir); err != nil || len(ents) != 0 {
		t.Errorf("node scratch after the run: %v (%v), want it used and empty", ents, err)
	}
	// The job file holds paths relative to the shared storage; the batch
	// script names it as the nodes see it.
	job := readFile(t, filepath.Join(w.runDir(), "slurm", "job.json"))
	if strings.Contains(job, w.shared) || !strings.Contains(job, `"work_dir":"checkouts/run1"`) {
		t.Errorf("job file with paths of the service:\n%s", job)
	}
	if sh := readFile(t, filepath.Join(w.runDir(), "slurm", "job.sh")); !strings.Contains(sh, filepath.Join(w.nodeView, "runs", w.params.ID, "slurm", "job.json")) {
		t.Errorf("batch script:\n%s", sh)
	}
	st := scontrol(t, id)
	for _, want := range []string{"JobName=compat-2026.06-linux-" + target.Arch + "-0123456789ab", "Partition=zen4", "JobState=COMPLETED", "Comment=compatbot-run=" + w.params.ID} {
		if !strings.Contains(st, want) {
			t.Errorf("the Slurm job lacks %q: %s", want, st)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var titles []string
	for _, p := range w.progress {
		titles = append(titles, p.Title)
	}
	if got := strings.Join(titles, " | "); !strings.Contains(got, "Building "+target.String()) {
		t.Errorf("progress: %s", got)
	}
}

// TestSlurmPipelineFailingBuild: a failed build on the node is the check
// the node's pipeline made of it, with no artifact.
func TestSlurmPipelineFailingBuild(t *testing.T) {
	w := newWorld(t, headSet)
	w.params.Build.Env["FAKEEMERGE_FAIL"] = "app-arch/zstd"
	out, err := w.slurm.Execute(context.Background(), w.params)
	if err != nil {
		t.Fatal(err)
	}
	if out.Check.Conclusion != report.Failure || !strings.Contains(out.Check.Title, "app-arch/zstd") || out.Artifact != nil {
		t.Errorf("%s %q artifact %v\n%s", out.Check.Conclusion, out.Check.Title, out.Artifact, out.Check.Text)
	}
	if st := scontrol(t, readFile(t, filepath.Join(w.runDir(), "slurm", "jobid"))); !strings.Contains(st, "JobState=FAILED") {
		t.Errorf("Slurm's view of the failed build: %s", st)
	}
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func scontrol(t testing.TB, id string) string {
	t.Helper()
	cmd := exec.Command("scontrol", "-o", "show", "job", id)
	cmd.Env = append(os.Environ(), slurmCluster(t).Env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scontrol: %v: %s", err, out)
	}
	return string(out)
}

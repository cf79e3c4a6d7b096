package prflow

import (
	"context"
	"fmt"
	"github.com/compatbot/compatbot/internal/testgit"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/compattest"
	"github.com/compatbot/compatbot/workflow/setscheck"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/compatbot/compatbot/workflow/overlay"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/report"
)

func TestBuildPassRecordsAndIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.builder()
	ctx := context.Background()
	req := e.request(e.headSHA, x86_2026, x86_2025, arm_2026)
	if err := b.Build(ctx, req); err != nil {
		t.Fatal(err)
	}
	// Queued at once: every target has its run before any build ends.
	runs := e.runsFor(e.headSHA)
	for _, tg := range req.Targets {
		if len(runs[pipeline.CheckName(tg)]) != 1 {
			t.Fatalf("after Build, runs of %s = %+v; want one run each at once", tg, runs)
		}
	}
	b.Wait()
	arm := e.waitRun(e.headSHA, pipeline.CheckName(arm_2026), "completed")
	if arm.Conclusion != "skipped" || !strings.Contains(arm.Title, "No build host for linux-aarch64") {
		t.Errorf("aarch64 run = %s %q, want skipped with no build host", arm.Conclusion, arm.Title)
	}
	for _, name := range []string{pipeline.CheckName(x86_2026), pipeline.CheckName(x86_2025)} {
		r := e.waitRun(e.headSHA, name, "completed")
		if r.Conclusion != "success" {
			t.Fatalf("%s: %s %q\n%s\n%s", name, r.Conclusion, r.Title, r.Summary, r.Text)
		}
		if !strings.HasPrefix(r.DetailsURL, "https://compatbot.example/builds/pr7-") {
			t.Errorf("%s: details URL %q does not link the live log", name, r.DetailsURL)
		}
	}
	outs, err := b.Outcomes(ctx, repoName, 7, e.headSHA)
	if err != nil {
		t.Fatal(err)
	}
	o := outs[x86_2026]
	if o.Conclusion != report.Success || !strings.HasPrefix(o.Digest, "sha256:") || o.BaseLineage != "" || o.BaseRevision != "0" {
		t.Fatalf("outcome of %s = %+v", x86_2026, o)
	}
	if _, err := e.store.Get(o.Digest); err != nil {
		t.Errorf("recorded digest is not in the store: %v", err)
	}
	var kinds []string
	for _, c := range o.Changes {
		kinds = append(kinds, string(c.Kind)+" "+c.Package)
	}
	if got := strings.Join(kinds, ", "); !strings.Contains(got, "upgraded dev-lang/python") || !strings.Contains(got, "added app-arch/zstd") {
		t.Errorf("recorded changes = %s", got)
	}
	if outs[arm_2026].Conclusion != report.Skipped || outs[arm_2026].Digest != "" {
		t.Errorf("outcome of %s = %+v, want skipped without digest", arm_2026, outs[arm_2026])
	}
	// The build's DISTDIR went into the mirror.
	if _, err := e.mirror.Lookup("linux-x86_64-2026.06.tar.gz"); err != nil {
		ents, _ := os.ReadDir(filepath.Join(e.mirror.Dir, "files"))
		t.Errorf("mirror lacks the build's source: %v (has %v)", err, ents)
	}

	// The same request again (a retried delivery) builds nothing.
	calls := e.ports.Created()
	if err := b.Build(ctx, req); err != nil {
		t.Fatal(err)
	}
	b.Wait()
	if n := e.ports.Created(); n != calls {
		t.Errorf("a repeated Build created %d more check runs", n-calls)
	}
	var rows int
	e.db.QueryRow(`SELECT count(*) FROM prflow_builds`).Scan(&rows)
	if rows != 3 {
		t.Errorf("%d build rows, want 3", rows)
	}
	// A new Builder on the same database (a restart) does not rebuild
	// finished builds either.
	b2 := e.builder()
	if n, err := b2.Recover(ctx); err != nil || n != 0 {
		t.Errorf("Recover after finished builds restarted %d (err %v)", n, err)
	}
	if err := b2.Build(ctx, req); err != nil {
		t.Fatal(err)
	}
	b2.Wait()
	if outs2, _ := b2.Outcomes(ctx, repoName, 7, e.headSHA); outs2[x86_2026].RunID != o.RunID {
		t.Errorf("restarted Build ran %s again: run %s, was %s", x86_2026, outs2[x86_2026].RunID, o.RunID)
	}

	// The log of a run is served read-only; unknown ids are not.
	srv := httptest.NewServer(func() http.Handler {
		m := http.NewServeMux()
		m.Handle("GET /builds/{id}/log", b.LogHandler())
		return m
	}())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/builds/" + o.RunID + "/log")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("log of %s: %d %s", o.RunID, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, bad := range []string{"nope", "..%2f..%2fetc"} {
		resp, err := http.Get(srv.URL + "/builds/" + bad + "/log")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("log %q: status %d, want 404", bad, resp.StatusCode)
		}
	}
}

func TestBuildFailureIsRecordedWithoutDigest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.builder(func(o *Options) { o.Build.Env = map[string]string{"FAKEEMERGE_FAIL": "dev-util/direnv"} })
	ctx := context.Background()
	if err := b.Build(ctx, e.request(e.headSHA, x86_2026)); err != nil {
		t.Fatal(err)
	}
	b.Wait()
	r := e.waitRun(e.headSHA, pipeline.CheckName(x86_2026), "completed")
	if r.Conclusion != "failure" || !strings.Contains(r.Title, "dev-util/direnv") {
		t.Errorf("run = %s %q, want a failure naming dev-util/direnv", r.Conclusion, r.Title)
	}
	outs, err := b.Outcomes(ctx, repoName, 7, e.headSHA)
	if err != nil {
		t.Fatal(err)
	}
	if o := outs[x86_2026]; o.Conclusion != report.Failure || o.Digest != "" {
		t.Errorf("outcome = %+v, want failure without digest", o)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.mirror.Dir, "files")); len(ents) != 0 {
		t.Errorf("a failed build's sources went into the mirror: %v", ents)
	}
}

func TestNewPushCancelsOldBuild(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.builder()
	ctx := context.Background()
	slow := e.startSlowBuild(b)
	if err := b.Build(ctx, e.request(e.headSHA, x86_2026)); err != nil {
		t.Fatal(err)
	}
	old := e.waitRun(slow, pipeline.CheckName(x86_2026), "completed")
	if old.Conclusion != "cancelled" || !strings.Contains(old.Title, "superseded by "+e.headSHA[:7]) {
		t.Errorf("old run = %s %q, want cancelled, superseded by %s", old.Conclusion, old.Title, e.headSHA[:7])
	}
	b.Wait()
	if r := e.waitRun(e.headSHA, pipeline.CheckName(x86_2026), "completed"); r.Conclusion != "success" {
		t.Errorf("new run = %s %q", r.Conclusion, r.Title)
	}
	outs, _ := b.Outcomes(ctx, repoName, 7, slow)
	if o := outs[x86_2026]; o.Conclusion != report.Cancelled || o.Digest != "" {
		t.Errorf("old outcome = %+v", o)
	}
}

func TestShutdownLeavesBuildForRecover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := os.WriteFile(e.hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b := e.builder()
	ctx := context.Background()
	req := e.request(e.headSHA, x86_2026)
	if err := b.Build(ctx, req); err != nil {
		t.Fatal(err)
	}
	e.waitRun(e.headSHA, pipeline.CheckName(x86_2026), "in_progress")
	b.Close() // the server stops mid-build
	var st string
	e.db.QueryRow(`SELECT state FROM prflow_builds`).Scan(&st)
	if st != "running" {
		t.Fatalf("after shutdown the build is %q, want running (to be recovered)", st)
	}
	if r := e.runsFor(e.headSHA)[pipeline.CheckName(x86_2026)][0]; r.Status == "completed" {
		t.Fatalf("shutdown concluded the run: %s %q", r.Conclusion, r.Title)
	}
	os.Remove(e.hold)
	b2 := e.builder()
	n, err := b2.Recover(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Recover restarted %d builds (err %v), want 1", n, err)
	}
	// A retried delivery during the recovered build starts nothing more.
	if err := b2.Build(ctx, req); err != nil {
		t.Fatal(err)
	}
	b2.Wait()
	runs := e.runsFor(e.headSHA)[pipeline.CheckName(x86_2026)]
	if len(runs) != 1 || runs[0].Conclusion != "success" {
		t.Fatalf("after Recover: runs %+v, want the one run concluded success", runs)
	}
}

func TestBuildRejectsBadRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.builder()
	ctx := context.Background()
	for name, mut := range map[string]func(r *reqT){
		"repo":   func(r *reqT) { r.Repo = "no-slash" },
		"sha":    func(r *reqT) { r.HeadSHA = "HEAD; rm -rf /" },
		"target": func(r *reqT) { r.Targets[0].Version = "../../etc" },
		"gitdir": func(r *reqT) { r.GitDir = "" },
	} {
		req := e.request(e.headSHA, x86_2026)
		mut(&req)
		if err := b.Build(ctx, req); err == nil {
			t.Errorf("%s: Build accepted %+v", name, req)
		}
	}
	if n := len(e.ports.CheckRuns()); n != 0 {
		t.Errorf("bad requests created %d check runs", n)
	}
}

type reqT = BuildRequest

func TestRecoverDetachesStaleMounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	lower := t.TempDir()
	if err := os.WriteFile(filepath.Join(lower, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// What a SIGKILLed server leaves: a run's overlay, still mounted.
	m, err := overlay.Stage(context.Background(), lower, filepath.Join(e.dataDir, "runs", "crashed run", "overlay"))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Visible() {
		t.Fatalf("overlay method %s: the test needs a mount others see (root)", m.Method())
	}
	t.Cleanup(func() { m.Unmount() })
	if !mounted(t, m.Target()) {
		t.Fatalf("%s is not in mountinfo after Stage", m.Target())
	}
	b := e.builder()
	if _, err := b.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mounted(t, m.Target()) {
		t.Errorf("Recover left the stale mount %s", m.Target())
	}
}

func mounted(t *testing.T, dir string) bool {
	t.Helper()
	mps, err := overlay.MountsUnder(dir)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(mps, filepath.Clean(dir))
}

func TestRerunOfOtherHeadDoesNotCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.builder()
	ctx := context.Background()
	slow := e.startSlowBuild(b)
	rerun := e.request(e.headSHA, x86_2026)
	rerun.Trigger = "rerun:d-1"
	if err := b.Build(ctx, rerun); err != nil {
		t.Fatal(err)
	}
	if r := e.waitRun(e.headSHA, pipeline.CheckName(x86_2026), "completed"); r.Conclusion != "success" {
		t.Fatalf("re-run = %s %q", r.Conclusion, r.Title)
	}
	if r := e.runsFor(slow)[pipeline.CheckName(x86_2026)][0]; r.Status != "in_progress" {
		t.Errorf("a re-run of another head stopped the running build: %s %s %q", r.Status, r.Conclusion, r.Title)
	}
}

// TestRepoConfigActsInTheServerBuild: the default branch's `tests:` run in
// the server's builds, and the PR's allow-libc-update label reaches the
// compat tests (the PR's own config never does: see setscheck's tests).
func TestRepoConfigActsInTheServerBuild(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.builder()
	ctx := context.Background()
	cfg := e.file(e.baseSHA, ".github/compatbot.yml")
	withTests := e.commit(e.baseSHA, map[string]string{".github/compatbot.yml": cfg + "\ntests:\n  - [\"sh\", \"-c\", \"echo the site test failed; exit 3\"]\n"})
	req := e.request(e.headSHA, x86_2026)
	req.ConfigSHA, req.AllowLibcUpdate = withTests, true
	if err := b.Build(ctx, req); err != nil {
		t.Fatal(err)
	}
	b.Wait()
	r := e.waitRun(e.headSHA, pipeline.CheckName(x86_2026), "completed")
	if r.Conclusion != "failure" || !strings.Contains(r.Title+r.Summary+r.Text, "extra") {
		t.Errorf("build with a failing configured test: %s %q\n%s\n%s", r.Conclusion, r.Title, r.Summary, r.Text)
	}
	var allow bool
	if err := e.db.QueryRow(`SELECT allow_libc_update FROM prflow_builds WHERE head_sha=?`, e.headSHA).Scan(&allow); err != nil || !allow {
		t.Errorf("allow_libc_update recorded as %v (%v)", allow, err)
	}
	if tc := b.tests(nil, true); !tc.AllowLibcUpdate {
		t.Error("the label did not reach the compat tests")
	}
	if tc := b.tests(nil, false); tc.AllowLibcUpdate {
		t.Error("libc updates allowed without the label")
	}
}

// TestBuildIgnoresThePRsConfig: a PR that points sets_dir at files of its
// own is built from its real sets, read with the default branch's config.
func TestBuildIgnoresThePRsConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.builder()
	ctx := context.Background()
	cfg := e.file(e.baseSHA, ".github/compatbot.yml")
	redirect := e.commit(e.headSHA, map[string]string{
		".github/compatbot.yml":          strings.Replace(cfg, "sets_dir: sets", "sets_dir: elsewhere", 1),
		"elsewhere/2026.06/linux-x86_64": "# never judged\napp-misc/unjudged\n",
	})
	req := e.request(redirect, x86_2026)
	req.ConfigSHA = e.baseSHA
	if err := b.Build(ctx, req); err != nil {
		t.Fatal(err)
	}
	b.Wait()
	outs, err := b.Outcomes(ctx, repoName, 7, redirect)
	if err != nil {
		t.Fatal(err)
	}
	o := outs[x86_2026]
	if o.Conclusion != report.Success {
		t.Fatalf("build of the redirecting head: %+v", o)
	}
	var pkgs []string
	for _, c := range o.Changes {
		pkgs = append(pkgs, c.Package)
	}
	if slices.Contains(pkgs, "app-misc/unjudged") || !slices.Contains(pkgs, "app-arch/zstd") {
		t.Errorf("built changes %v: want the real sets' (zstd), not the PR's redirected file", pkgs)
	}
}

// TestPushReadsItsSetsOnce: the builds of a push use the sets its sets
// check read, and build exactly what reading them anew would.
func TestPushReadsItsSetsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	rev, err := setscheck.LoadPR(ctx, e.git, setscheck.PR{Config: e.baseSHA, Base: e.baseSHA, Head: e.headSHA})
	if err != nil {
		t.Fatal(err)
	}
	b := e.builder()
	req := e.request(e.headSHA, x86_2026, x86_2025)
	req.ConfigSHA, req.Revisions = e.baseSHA, rev
	if err := b.Build(ctx, req); err != nil {
		t.Fatal(err)
	}
	b.Wait()
	if n := b.revHits.Load(); n != 2 {
		t.Errorf("%d builds used the push's sets, want both", n)
	}
	outs, err := b.Outcomes(ctx, repoName, 7, e.headSHA)
	if err != nil {
		t.Fatal(err)
	}
	if o := outs[x86_2026]; o.Conclusion != report.Success || len(o.Changes) == 0 || o.SetDigest == "" {
		t.Errorf("build from the remembered sets: %+v", o)
	}
	b.mu.Lock()
	left := len(b.revs)
	b.mu.Unlock()
	if left != 0 {
		t.Errorf("%d remembered revisions after the builds ended, want none", left)
	}
}

// TestBuildEESSIRoleTarget: a target of EESSI's Ansible role is built from
// the set, masks, package sets and removals generated from its lists,
// never from the role's YAML itself.
func TestBuildEESSIRoleTarget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The role's target here has Lmod and zstd only: the tools check looks
	// for Lmod, of the default tools (bash, gcc, ... are not in this set).
	rec := &jobRecorder{inner: &build.LocalRunner{Arch: build.HostArch()}}
	b := e.builder(func(o *Options) { o.Tests.Tools, o.Runner = compattest.DefaultTools()[2:3], rec })
	ctx := context.Background()
	const role = "ansible/playbooks/roles/compatibility_layer/defaults/main.yml"
	doc := func(pkgs string) string {
		return `eessi_version: "2026.06"
eessi_host_os: linux
eessi_host_arch: ` + build.HostArch() + `
prefix_packages:
` + pkgs + `prefix_mask_packages: |
  # 3.13 breaks EasyBuild's hooks
  >=dev-lang/python-3.13
package_sets:
  - "eessi-{{ eessi_version }}-{{ eessi_host_os }}-{{ eessi_host_arch }}"
prefix_remove_packages:
  - sys-apps/man-db
`
	}
	dir := t.TempDir()
	testgit.Git(t, "", "init", "-q", "-b", "main", dir)
	root := testgit.Git(t, dir, "commit-tree", testgit.Git(t, dir, "mktree"), "-m", "root")
	base := testgit.Commit(t, dir, root, map[string]string{role: doc("  - name: app-arch/zstd\n")}, "base")
	head := testgit.Commit(t, dir, base, map[string]string{role: doc("  - name: app-arch/zstd\n  - name: sys-cluster/lmod\n")}, "add Lmod")
	tg := sets.Target{Version: "2026.06", OS: "linux", Arch: build.HostArch()}
	if err := b.Build(ctx, BuildRequest{Repo: repoName, Installation: inst, PR: 8, BaseRef: "main", BaseSHA: base, HeadSHA: head, ConfigSHA: base,
		GitDir: dir, Targets: []sets.Target{tg}}); err != nil {
		t.Fatal(err)
	}
	b.Wait()
	outs, err := b.Outcomes(ctx, repoName, 8, head)
	if err != nil {
		t.Fatal(err)
	}
	o := outs[tg]
	if o.Conclusion != report.Success {
		t.Fatalf("build of the role's target: %+v", o)
	}
	var got []string
	for _, c := range o.Changes {
		got = append(got, string(c.Kind)+" "+c.Package)
	}
	if !slices.Contains(got, "added sys-cluster/lmod") {
		t.Errorf("changes %v, want lmod added", got)
	}
	set, err := os.ReadFile(filepath.Join(e.dataDir, "runs", o.RunID, "set", "eessi-2026.06-linux-"+build.HostArch()))
	if err != nil {
		ents, _ := os.ReadDir(filepath.Join(e.dataDir, "runs", o.RunID))
		t.Fatalf("generated set: %v (run dir has %v)", err, ents)
	}
	if !strings.Contains(string(set), "sys-cluster/lmod\n") || strings.Contains(string(set), "prefix_packages") {
		t.Errorf("generated set:\n%s", set)
	}
	// The masks, package sets and removals went to the build job, for the
	// Portage runner to write into etc/portage, pass to emerge and unmerge.
	j := rec.last()
	if !slices.Equal(j.Mask[1:], []string{"# 3.13 breaks EasyBuild's hooks", ">=dev-lang/python-3.13"}) || !strings.HasPrefix(j.Mask[0], "# eessi-2026.06") ||
		!slices.Equal(j.ExtraSets, []string{"@eessi-2026.06-linux-" + build.HostArch()}) || !slices.Equal(j.Unmerge, []string{"sys-apps/man-db"}) || j.SetFile != filepath.Join(e.dataDir, "runs", o.RunID, "set", "eessi-2026.06-linux-"+build.HostArch()) {
		t.Errorf("build job: mask %q, extra sets %q, unmerge %q, set file %s", j.Mask, j.ExtraSets, j.Unmerge, j.SetFile)
	}
}

// jobRecorder is the real local runner, remembering the jobs it ran.
type jobRecorder struct {
	inner build.Runner
	mu    sync.Mutex
	jobs  []build.Job
}

func (r *jobRecorder) Run(ctx context.Context, j build.Job) (build.Result, error) {
	r.mu.Lock()
	r.jobs = append(r.jobs, j)
	r.mu.Unlock()
	return r.inner.Run(ctx, j)
}

func (r *jobRecorder) last() build.Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.jobs) == 0 {
		return build.Job{}
	}
	return r.jobs[len(r.jobs)-1]
}

// TestBuildUsesRepoConfigPortageAndTools: the default branch's repo
// config gives a build its package.mask/unmask/use lines (the version's,
// then the target's) and the tools its compat tests require, instead of
// the built-in list.
func TestBuildUsesRepoConfigPortageAndTools(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := &jobRecorder{inner: &build.LocalRunner{Arch: build.HostArch()}}
	b := e.builder(func(o *Options) { o.Runner = rec })
	ctx := context.Background()
	osArch := "linux-" + build.HostArch()
	cfg := `versions:
  2026.06: {arches: [` + osArch + `]}
targets:
  2026.06:
    package_use: ["sys-libs/glibc -multiarch"]
  2026.06/` + osArch + `:
    package_mask:
      - ">=dev-lang/python-3.13" # breaks EasyBuild's hooks
    package_unmask: ["=sys-devel/gcc-14.3.0"]
# zstd is what this layer is for; none of the built-in list but bash is in it.
tools: [zstd, bash]
`
	dir := t.TempDir()
	testgit.Git(t, "", "init", "-q", "-b", "main", dir)
	root := testgit.Git(t, dir, "commit-tree", testgit.Git(t, dir, "mktree"), "-m", "root")
	base := testgit.Commit(t, dir, root, map[string]string{".github/compatbot.yml": cfg, "sets/2026.06/" + osArch: "app-shells/bash # the shell\n"}, "base")
	head := testgit.Commit(t, dir, base, map[string]string{"sets/2026.06/" + osArch: "app-shells/bash # the shell\napp-arch/zstd # .tar.zst sources\n"}, "add zstd")
	tg := sets.Target{Version: "2026.06", OS: "linux", Arch: build.HostArch()}
	if err := b.Build(ctx, BuildRequest{Repo: repoName, Installation: inst, PR: 9, BaseRef: "main", BaseSHA: base, HeadSHA: head, ConfigSHA: base,
		GitDir: dir, Targets: []sets.Target{tg}}); err != nil {
		t.Fatal(err)
	}
	b.Wait()
	outs, err := b.Outcomes(ctx, repoName, 9, head)
	if err != nil {
		t.Fatal(err)
	}
	o := outs[tg]
	res, _ := os.ReadFile(filepath.Join(e.dataDir, "runs", o.RunID, "results.md"))
	if o.Conclusion != report.Success {
		t.Fatalf("build: %+v\n%s", o, res)
	}
	// The tools check ran the repo's list: zstd and bash, not python3,
	// gcc or Lmod (the fake installer installs none of them here).
	if !strings.Contains(string(res), "zstd") || strings.Contains(string(res), "python3") {
		t.Errorf("tools check did not use the repo config's list:\n%s", res)
	}
	j := rec.last()
	from := func(line int, key string) string {
		return fmt.Sprintf("# from .github/compatbot.yml:%d, targets.%s", line, key)
	}
	want := build.Job{
		Mask:   []string{from(6, "2026.06/"+osArch), "# breaks EasyBuild's hooks", ">=dev-lang/python-3.13"},
		Unmask: []string{from(6, "2026.06/"+osArch), "=sys-devel/gcc-14.3.0"},
		Use:    []string{from(4, "2026.06"), "sys-libs/glibc -multiarch"},
	}
	if !slices.Equal(j.Mask, want.Mask) || !slices.Equal(j.Unmask, want.Unmask) || !slices.Equal(j.Use, want.Use) {
		t.Errorf("build job: mask %q unmask %q use %q\nwant mask %q unmask %q use %q", j.Mask, j.Unmask, j.Use, want.Mask, want.Unmask, want.Use)
	}
}

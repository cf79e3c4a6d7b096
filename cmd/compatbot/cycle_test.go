package main

// The cycle tests run everything for real: overlays (as root, as CI
// does), the local publish backend, SQLite, git. Only emerge is a test
// double (testdata/fakeemerge). The example PR is PR #1 (examplePR), so its
// tags are <version>-linux-<arch>-pr1-<sha7>.

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testgit"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/changelog"
	"github.com/compatbot/compatbot/workflow/publish"
	"github.com/compatbot/compatbot/workflow/state"
	"github.com/compatbot/compatbot/workflow/vdb"
)

func otherArch() string {
	if build.HostArch() == "aarch64" {
		return "x86_64"
	}
	return "aarch64"
}

// installed lists cat/pkg-ver of the package database under a published
// target tree.
func installed(t *testing.T, dir string) []string {
	t.Helper()
	inst, err := vdb.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range inst {
		out = append(out, p.Package.Category+"/"+p.Package.Name+"-"+p.Package.Version.String())
	}
	return out
}

func cycleTags(t *testing.T, data, env string) []string {
	t.Helper()
	p, err := publish.OpenLocal(filepath.Join(data, "targets"), env)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := p.Tags(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tg := range tags {
		names = append(names, tg.Name)
	}
	return names
}

// section is the text of step i of the report (after its header, before
// the next step's).
func section(out string, i int) string {
	hdr := "# Step " + string(rune('0'+i)) + " of 6: " + cycleSteps[i-1] + "\n\n"
	_, rest, ok := strings.Cut(out, hdr)
	if !ok {
		return ""
	}
	if j := strings.Index(rest, "\n# Step "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func TestCheckExampleCycle(t *testing.T) {
	useFakeEmerge(t)
	data := filepath.Join(t.TempDir(), "var", "example")
	code, out, errs := runCmd(checkRun, "--example", "--data-dir", data)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	// Every step ran, in order, and the sets check is the report of
	// "check --repo" (golden).
	last := -1
	for i := range cycleSteps {
		at := strings.Index(out, "# Step "+string(rune('1'+i))+" of 6: "+cycleSteps[i]+"\n")
		if at <= last {
			t.Fatalf("step %d (%s) missing or out of order in:\n%s", i+1, cycleSteps[i], out)
		}
		last = at
	}
	golden(t, "check_example.md", section(out, 1))
	// The report says what built the sets: here the test double.
	if !strings.Contains(section(out, 2), "Installer: the **fake installer** `") || strings.Contains(out, "real Portage**") {
		t.Errorf("the build step does not name the fake installer:\n%s", section(out, 2))
	}
	if !strings.Contains(out, "**The cycle ran through:**") {
		t.Errorf("no final verdict:\n%s", out)
	}

	repo := filepath.Join(data, "repo")
	arch := build.HostArch()
	head := testgit.Git(t, repo, "rev-parse", "refs/heads/pr")
	user := localUser()

	// Step 2: this host's arch is built, the other has no build host.
	build2 := section(out, 2)
	for _, v := range []string{"2025.06", "2026.06"} {
		for _, want := range []string{"## compat " + v + " linux-" + arch + ": Built and tested", "## compat " + v + " linux-" + otherArch() + ": No build host"} {
			if !strings.Contains(build2, want) {
				t.Errorf("build step lacks %q:\n%s", want, build2)
			}
		}
	}
	// Step 4 says who approved the python upgrade.
	if s := section(out, 4); !strings.Contains(s, "approved by **"+user+"**") || !strings.Contains(s, "needs approval: dev-lang/python (`sets/2026.06/linux-"+arch+":9`)") {
		t.Errorf("prod step does not name the approval:\n%s", s)
	}

	// Both targets publish the built packages, tagged pr1-<sha7>, on top
	// of the base.
	wantPkgs := map[string]struct{ has, hasNot []string }{
		"2025.06": {[]string{"app-arch/xz-utils-5.8.2", "sys-cluster/lmod-8.7.37"}, []string{"app-arch/xz-utils-5.8.1"}},
		"2026.06": {[]string{"sys-cluster/lmod-8.7.60", "dev-lang/python-3.12.11", "dev-util/direnv-2.36.0", "app-arch/zstd-1.5.7", "sys-devel/gcc-14.2.1_p20250301"},
			[]string{"sys-cluster/lmod-8.7.53", "dev-lang/python-3.12.10"}},
	}
	for _, env := range []string{"test", "prod"} {
		tags := cycleTags(t, data, env)
		for v, w := range wantPkgs {
			tree := filepath.Join(data, "targets", env, "current", "versions", v, "compat", "linux", arch)
			got := installed(t, tree)
			for _, p := range w.has {
				if !slices.Contains(got, p) {
					t.Errorf("%s %s: %s not installed; have %v", env, v, p, got)
				}
			}
			for _, p := range w.hasNot {
				if slices.Contains(got, p) {
					t.Errorf("%s %s: %s still installed", env, v, p)
				}
			}
			tag := v + "-linux-" + arch + "-pr1-" + head[:7]
			if !slices.Contains(tags, tag) || !slices.Contains(tags, v+"-linux-"+arch+"-base-"+testgit.Git(t, repo, "rev-parse", "--short=7", "pr~1")) {
				t.Errorf("%s tags %v lack %s or the base's", env, tags, tag)
			}
			if !strings.Contains(section(out, 6), "| "+env+" | "+v+" linux-"+arch+" | `"+tag+"` |") {
				t.Errorf("final table lacks %s %s %s:\n%s", env, v, tag, section(out, 6))
			}
		}
		// Nothing was built for the other arch, so nothing is published.
		if _, err := os.Stat(filepath.Join(data, "targets", env, "current", "versions", "2026.06", "compat", "linux", otherArch())); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s has a tree for %s: %v", env, otherArch(), err)
		}
	}

	// The changelog: real commits on main (test entries, the merge, prod
	// entries), the work tree left on pr and clean.
	subjects := strings.Split(testgit.Git(t, repo, "log", "--format=%s", "refs/heads/pr..refs/heads/main"), "\n")
	var want []string
	for _, env := range []string{"prod", "test"} {
		for _, v := range []string{"2026.06", "2025.06"} {
			want = append(want, "changelog: "+env+" publish "+v+"-linux-"+arch+"-pr1-"+head[:7]+" (#1)")
		}
		if env == "prod" {
			want = append(want, "Merge pull request #1 ("+head[:12]+")")
		}
	}
	if !slices.Equal(subjects, want) {
		t.Errorf("main since pr:\n%s\nwant:\n%s", strings.Join(subjects, "\n"), strings.Join(want, "\n"))
	}
	if parents := strings.Fields(testgit.Git(t, repo, "log", "-1", "--format=%P", "refs/heads/main~2")); len(parents) != 2 || parents[1] != head {
		t.Errorf("main~2 is not the merge of pr: parents %v", parents)
	}
	cl := testgit.Git(t, repo, "show", "refs/heads/main:changelog/2026.06.md")
	for _, w := range []string{"· test · publish `2026.06-linux-" + arch + "-pr1-" + head[:7] + "`", "· prod · publish `2026.06-linux-" + arch + "-pr1-" + head[:7] + "`", "Approved by: @" + user, "| upgraded | `dev-lang/python` |"} {
		if !strings.Contains(cl, w) {
			t.Errorf("changelog/2026.06.md lacks %q:\n%s", w, cl)
		}
	}
	if got := testgit.Git(t, repo, "symbolic-ref", "HEAD"); got != "refs/heads/pr" {
		t.Errorf("HEAD moved to %s", got)
	}
	if st := testgit.Git(t, repo, "status", "--porcelain"); st != "" {
		t.Errorf("work tree changed:\n%s", st)
	}

	// The same history is in the database, and status/history read it
	// through the config the cycle wrote.
	db, err := state.Open(filepath.Join(data, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	hist, err := changelog.List(context.Background(), db, "")
	db.Close()
	if err != nil || len(hist) != 4 {
		t.Fatalf("history: %v, %d entries, want 4", err, len(hist))
	}
	for _, e := range hist {
		if e.PR != 1 || e.Approver != user || e.Action != changelog.Publish {
			t.Errorf("history entry %+v", e)
		}
	}
	var sout, serr strings.Builder
	if code := statusCmd([]string{"--config", filepath.Join(data, "compatbot.yml")}, &sout, &serr); code != 0 || !strings.Contains(sout.String(), "2026.06-linux-"+arch+"-pr1-"+head[:7]) {
		t.Errorf("status: exit %d\n%s%s", code, sout.String(), serr.String())
	}

	// The follow-up commands the report prints show what happened.
	for _, line := range strings.Split(section(out, 6), "\n") {
		args, ok := strings.CutPrefix(line, "compatbot ")
		if !ok {
			continue
		}
		var fout, ferr strings.Builder
		code := run(strings.Fields(args), &fout, &ferr)
		if code != 0 || fout.Len() == 0 {
			t.Errorf("%s: exit %d\n%s%s", line, code, fout.String(), ferr.String())
		}
		if strings.HasPrefix(args, "sets diff") && !strings.Contains(fout.String(), "upgraded  dev-lang/python") {
			t.Errorf("%s does not show the merged PR's changes:\n%s", line, fout.String())
		}
	}

	// A rerun starts from scratch: same tags, no "-2" redeploy suffixes,
	// one merge.
	before := cycleTags(t, data, "test")
	code2, out2, errs2 := runCmd(checkRun, "--example", "--data-dir", data)
	if code2 != 0 {
		t.Fatalf("rerun: exit %d\n%s\n%s", code2, out2, errs2)
	}
	if after := cycleTags(t, data, "test"); !slices.Equal(after, before) {
		t.Errorf("rerun tags %v, want %v (a fresh start)", after, before)
	}
	if n := strings.Count(testgit.Git(t, repo, "log", "--format=%s", "refs/heads/main"), "Merge pull request"); n != 1 {
		t.Errorf("%d merges on main after a rerun, want 1", n)
	}
}

// A build failure (of direnv, which only the PR adds, so the base still
// builds) stops the cycle at step 2 with the failing package; no
// deploy happens and main gets no changelog commit.
func TestCheckExampleCycleBuildFails(t *testing.T) {
	useFakeEmerge(t)
	data := filepath.Join(t.TempDir(), "example")
	code, out, errs := runCmd(checkRun, "--example", "--data-dir", data, "--env", "FAKEEMERGE_FAIL=dev-util/direnv")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errs)
	}
	want := "**The cycle stopped at step 2 (build):** the build failed for 2026.06 linux-" + build.HostArch() + ": Build failed: dev-util/direnv-2.36.0 did not build"
	if !strings.Contains(out, want) || !strings.Contains(errs, "the cycle stopped at step 2 (build)") {
		t.Errorf("stdout lacks %q\n%s\nstderr: %s", want, out, errs)
	}
	if strings.Contains(out, "# Step 3") {
		t.Errorf("the cycle went on after the failed build:\n%s", out)
	}
	for _, env := range []string{"test", "prod"} {
		for _, tag := range cycleTags(t, data, env) {
			if strings.Contains(tag, "-pr1-") {
				t.Errorf("%s has the PR's tag %s", env, tag)
			}
		}
	}
	repo := filepath.Join(data, "repo")
	if got := testgit.Git(t, repo, "rev-parse", "refs/heads/main"); got != testgit.Git(t, repo, "rev-parse", "refs/heads/pr~1") {
		t.Errorf("main moved to %s", got)
	}
}

// --deploy runs the cycle on a repository of one's own, which it only
// reads: main does not move, the history stays in the database.
func TestCheckDeployRepo(t *testing.T) {
	useFakeEmerge(t)
	repo := testgit.ExampleRepo(t)
	main := testgit.Git(t, repo, "rev-parse", "refs/heads/main")
	data := filepath.Join(t.TempDir(), "check")
	code, out, errs := runCmd(checkRun, "--repo", repo, "--base", "main", "--head", "pr", "--deploy", "--data-dir", data)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if got := testgit.Git(t, repo, "rev-parse", "refs/heads/main"); got != main {
		t.Errorf("--deploy wrote to the repository: main %s, was %s", got, main)
	}
	if !strings.Contains(out, "is not written to") || !strings.Contains(out, "# compatbot check: PR #1 of local/example") {
		t.Errorf("output:\n%s", out)
	}
	db, err := state.Open(filepath.Join(data, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if hist, err := changelog.List(context.Background(), db, "prod"); err != nil || len(hist) != 2 {
		t.Errorf("prod history: %v, %d entries, want 2", err, len(hist))
	}
	// A data dir compatbot did not make is never replaced.
	foreign := t.TempDir()
	os.WriteFile(filepath.Join(foreign, "keep"), []byte("x"), 0o644)
	if code, _, errs := runCmd(checkRun, "--repo", repo, "--base", "main", "--head", "pr", "--deploy", "--data-dir", foreign); code != 2 || !strings.Contains(errs, "refusing to replace") {
		t.Errorf("foreign data dir: exit %d, %s", code, errs)
	}
	// Without --deploy or --build, check only reports (as before).
	if code, out, _ := runCmd(checkRun, "--repo", repo, "--base", "main", "--head", "pr"); code != 0 || strings.Contains(out, "# Step") {
		t.Errorf("plain check: exit %d\n%s", code, out)
	}
}

func TestGitChangelog(t *testing.T) {
	ctx := context.Background()
	repo := testgit.ExampleRepo(t)
	g := gitChangelog{Dir: repo}
	if _, err := g.ReadFile(ctx, "o/r", "main", "changelog/2026.06.md"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	content := []byte("# log\n\nentry\n\n")
	if err := g.CommitFile(ctx, "o/r", "main", "changelog/2026.06.md", content, "changelog: one"); err != nil {
		t.Fatal(err)
	}
	got, err := g.ReadFile(ctx, "o/r", "main", "changelog/2026.06.md")
	if err != nil || string(got) != string(content) {
		t.Errorf("read back %q, %v; want %q", got, err, content)
	}
	if s := testgit.Git(t, repo, "log", "-1", "--format=%s|%an", "refs/heads/main"); s != "changelog: one|compatbot" {
		t.Errorf("commit %q", s)
	}
	// The commit changes only that file.
	if files := testgit.Git(t, repo, "diff", "--name-only", "refs/heads/main~1", "refs/heads/main"); files != "changelog/2026.06.md" {
		t.Errorf("commit touches %q", files)
	}
	for _, tc := range []struct{ branch, path, want string }{
		{"main", "../x", "not allowed"},
		{"main", "-x", "not allowed"},
		{"main", "a:b", "not a plain relative path"},
		{"main", "/etc/passwd", "not a plain relative path"},
		{"--upload-pack=x", "changelog/x.md", "starts with '-'"},
		{"nosuch", "changelog/x.md", "branch nosuch"},
	} {
		if err := g.CommitFile(ctx, "o/r", tc.branch, tc.path, []byte("x"), "m"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CommitFile(%q, %q): %v, want %q", tc.branch, tc.path, err, tc.want)
		}
	}
	// A merge that conflicts is refused, not resolved.
	if err := g.CommitFile(ctx, "o/r", "main", "sets/2026.06/linux-x86_64", []byte("sys-apps/other # conflict\n"), "edit"); err != nil {
		t.Fatal(err)
	}
	tip := testgit.Git(t, repo, "rev-parse", "refs/heads/main")
	if _, err := g.merge(ctx, "main", testgit.Git(t, repo, "rev-parse", "refs/heads/pr"), "me", "merge"); err == nil {
		t.Error("a conflicting merge succeeded")
	}
	if got := testgit.Git(t, repo, "rev-parse", "refs/heads/main"); got != tip {
		t.Errorf("a failed merge moved main")
	}
}

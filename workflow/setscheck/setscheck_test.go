package setscheck

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/compatbot/compatbot/internal/testgit"
	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/report"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func golden(t *testing.T, name, got string) {
	t.Helper()
	testtree.Golden(t, name, got, *update)
}

func TestCheckRefsExample(t *testing.T) {
	dir := testgit.ExampleRepo(t)
	c, rev, err := CheckRefs(context.Background(), dir, "main", "pr")
	if err != nil {
		t.Fatal(err)
	}
	// The example PR lints clean; python needs approval.
	if c.Name != CheckName || c.Conclusion != report.ActionRequired {
		t.Errorf("name %q conclusion %q, want %q action_required", c.Name, c.Conclusion, CheckName)
	}
	if want := "2 packages need approval: 10 changes"; c.Title != want {
		t.Errorf("title %q, want %q", c.Title, want)
	}
	if len(rev.BaseSHA) != 40 || len(rev.HeadSHA) != 40 || rev.BaseSHA == rev.HeadSHA {
		t.Errorf("SHAs %q %q", rev.BaseSHA, rev.HeadSHA)
	}
	golden(t, "example.md", c.Markdown())
	ann, _ := json.MarshalIndent(c.Annotations, "", "  ")
	golden(t, "example_annotations.json", string(ann)+"\n")

	// A lint error is annotated on its exact line and column.
	c, _, err = CheckRefs(context.Background(), testgit.LintErrorRepo(t), "main", "pr")
	if err != nil {
		t.Fatal(err)
	}
	if want := "1 lint error, 2 packages need approval: 10 changes"; c.Conclusion != report.Failure || c.Title != want {
		t.Errorf("without zstd's reason: %s %q, want failure %q", c.Conclusion, c.Title, want)
	}
	found := false
	for _, a := range c.Annotations {
		if a.Path == "sets/2026.06/linux-x86_64" && a.StartLine == 16 && a.StartCol == 1 && a.Level == report.Error {
			found = true
		}
	}
	if !found {
		t.Errorf("no failure annotation at sets/2026.06/linux-x86_64:16:1 in %+v", c.Annotations)
	}

	if _, _, err := CheckRefs(context.Background(), dir, "main", "nosuch"); err == nil || !strings.Contains(err.Error(), "head") {
		t.Errorf("unknown head: err = %v", err)
	}
	if _, _, err := CheckRefs(context.Background(), dir, "-x", "pr"); err == nil || !strings.Contains(err.Error(), "base") {
		t.Errorf("bad base: err = %v", err)
	}
}

func TestLoadAt(t *testing.T) {
	dir := testgit.ExampleRepo(t)
	r, err := LoadAt(context.Background(), dir, "pr")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Sets) != 4 || r.Config.VersionStatus("2025.06") != sets.StatusFrozen {
		t.Errorf("%d sets, 2025.06 %s; want 4 sets and 2025.06 frozen from the tree's config", len(r.Sets), r.Config.VersionStatus("2025.06"))
	}
}

const testConfig = `versions:
  "2025.06": {status: frozen, arches: [linux-x86_64]}
  "2026.06": {status: open, arches: [linux-x86_64]}
`

// tree builds a repository with the test config and the given set files.
func tree(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{
		".github/compatbot.yml":     {Data: []byte(testConfig)},
		"sets/2025.06/linux-x86_64": {Data: []byte(old25)},
		"sets/2026.06/linux-x86_64": {Data: []byte(old26)},
	}
	for k, v := range files {
		m[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return m
}

func load(t *testing.T, fsys fs.FS, cfg *sets.Config) *sets.Repo {
	t.Helper()
	if cfg == nil {
		var err error
		if cfg, err = sets.LoadRepoConfig(fsys); err != nil {
			t.Fatal(err)
		}
	}
	r, err := sets.LoadRepo(fsys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const (
	old25 = "=sys-libs/zlib-1.3 # compression\n=dev-lang/python-3.11.9 # EasyBuild\n"
	old26 = "=sys-libs/zlib-1.3.1 # compression\n=dev-lang/python-3.12.10 # EasyBuild\n"
)

func TestRunConclusions(t *testing.T) {
	base := tree(nil)
	tests := []struct {
		name       string
		head       map[string]string
		conclusion report.Conclusion
		title      string
		annotation string // "path:line level" expected among the annotations
	}{
		{"no change", nil, report.Success, "sets OK: 0 changes", ""},
		{"add to open version", map[string]string{"sets/2026.06/linux-x86_64": old26 + "app-shells/bash # login shell\n"},
			report.Success, "sets OK: 1 change", ""},
		{"security update in frozen version", map[string]string{"sets/2025.06/linux-x86_64": "=sys-libs/zlib-1.3.1 # compression\n=dev-lang/python-3.11.9 # EasyBuild\n"},
			report.Success, "sets OK: 1 change", ""},
		{"risky upgrade", map[string]string{"sets/2026.06/linux-x86_64": "=sys-libs/zlib-1.3.1 # compression\n=dev-lang/python-3.12.11 # EasyBuild\n"},
			report.ActionRequired, "1 package needs approval: 1 change", "sets/2026.06/linux-x86_64:2 warning"},
		{"add to frozen version", map[string]string{"sets/2025.06/linux-x86_64": old25 + "app-shells/bash # login shell\n"},
			report.Failure, "1 change refused: 1 change", "sets/2025.06/linux-x86_64:3 failure"},
		{"missing reason", map[string]string{"sets/2026.06/linux-x86_64": old26 + "\napp-shells/bash\n"},
			report.Failure, "1 lint error: 1 change", "sets/2026.06/linux-x86_64:4 failure"},
		{"invalid atom", map[string]string{"sets/2026.06/linux-x86_64": old26 + ">=app-shells/bash # no version\n"},
			report.Failure, "1 lint error: 1 change", "sets/2026.06/linux-x86_64:3 failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := load(t, base, nil)
			h := load(t, tree(tt.head), b.Config)
			c := Run(b, h, "aaaa", "bbbb")
			if c.Conclusion != tt.conclusion || c.Title != tt.title {
				t.Errorf("got %s %q, want %s %q\n%s", c.Conclusion, c.Title, tt.conclusion, tt.title, c.Markdown())
			}
			if tt.annotation != "" {
				var got []string
				for _, a := range c.Annotations {
					got = append(got, fmt.Sprintf("%s:%d %s", a.Path, a.StartLine, a.Level))
				}
				if !strings.Contains(strings.Join(got, "\n"), tt.annotation) {
					t.Errorf("annotations %q lack %q", got, tt.annotation)
				}
			} else if len(c.Annotations) != 0 {
				t.Errorf("unexpected annotations %+v", c.Annotations)
			}
		})
	}
}

// The rules come from the base: a PR that unfreezes a version or empties
// the risky list in its own config is still judged by the base's.
func TestConfigComesFromBase(t *testing.T) {
	ctx := context.Background()
	baseTree := tree(map[string]string{"sets/2025.06/linux-x86_64": old25})
	headTree := fstest.MapFS{
		".github/compatbot.yml":     {Data: []byte("versions:\n  \"2025.06\": {status: open, arches: [linux-x86_64]}\nrisky: []\n")},
		"sets/2025.06/linux-x86_64": {Data: []byte("=sys-libs/zlib-1.3 # compression\n=dev-lang/python-3.11.10 # EasyBuild\napp-shells/bash # shell\n")},
		"sets/2026.06/linux-x86_64": {Data: []byte(old26)},
	}
	dir := filepath.Join(t.TempDir(), "repo")
	if err := gitrepo.InitFromDirs(ctx, dir,
		gitrepo.CommitSpec{Branch: "main", Tree: baseTree, Message: "base"},
		gitrepo.CommitSpec{Branch: "pr", Tree: headTree, Message: "unfreeze"}); err != nil {
		t.Fatal(err)
	}
	c, _, err := CheckRefs(ctx, dir, "main", "pr")
	if err != nil {
		t.Fatal(err)
	}
	if c.Conclusion != report.Failure || c.Title != "1 change refused, 1 package needs approval: 2 changes" {
		t.Errorf("got %s %q; the head's config must not apply\n%s", c.Conclusion, c.Title, c.Markdown())
	}
}

// Reasons and tokens come from the PR: they must not inject HTML, links,
// mentions or break the tables of the report.
func TestUntrustedTextIsEscaped(t *testing.T) {
	base := tree(nil)
	evil := old26 + "app-shells/bash # <img src=x onerror=alert(1)> | col [link](http://evil) @octocat\n"
	b := load(t, base, nil)
	h := load(t, tree(map[string]string{"sets/2026.06/linux-x86_64": evil}), b.Config)
	c := Run(b, h, "a", "b")
	// Drop the escaped forms; what is left must not hold the raw syntax.
	all := strings.NewReplacer(`\<`, "", `\|`, "", `\]`, "", `\(`, "").Replace(c.Summary + c.Text)
	for _, bad := range []string{"<img", "](http", "@octocat", "| col"} {
		if strings.Contains(all, bad) {
			t.Errorf("report contains unescaped %q:\n%s", bad, all)
		}
	}
}

func TestDiagnosticsOutsideHeadSetsAreNotAnnotated(t *testing.T) {
	// The config lists an arch without a set file: lint reports it on the
	// config, which is not a head set file; it stays in the text only.
	cfg := "versions:\n  \"2026.06\": {status: open, arches: [linux-x86_64, linux-aarch64]}\n"
	fsys := fstest.MapFS{
		".github/compatbot.yml":     {Data: []byte(cfg)},
		"sets/2026.06/linux-x86_64": {Data: []byte(old26)},
	}
	r := load(t, fsys, nil)
	c := Run(r, r, "a", "a")
	if !strings.Contains(c.Text, ".github/compatbot.yml") {
		t.Fatalf("missing-set diagnostic not in the text:\n%s", c.Markdown())
	}
	for _, a := range c.Annotations {
		if a.Path == ".github/compatbot.yml" {
			t.Errorf("annotation on the config: %+v", a)
		}
	}
}

// A report longer than GitHub shows stays whole here: bot/checks cuts what
// GitHub gets and serves the rest, and `compatbot check` prints it all.
func TestLongReportIsWhole(t *testing.T) {
	var sb strings.Builder
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&sb, "dev-libs/pkg%d # reason number %d for a rather long explanation\n", i, i)
	}
	b := load(t, tree(nil), nil)
	h := load(t, tree(map[string]string{"sets/2026.06/linux-x86_64": sb.String()}), b.Config)
	c := Run(b, h, "a", "b")
	if len(c.Text)+len(c.Summary) <= 65535 {
		t.Fatalf("text %d bytes, summary %d bytes: the test wants a report longer than GitHub shows", len(c.Text), len(c.Summary))
	}
	for _, want := range []string{"dev-libs/pkg0", "dev-libs/pkg2999"} {
		if !strings.Contains(c.Summary+c.Text, want) {
			t.Errorf("the report lacks %s", want)
		}
	}
	if strings.Contains(c.Summary+c.Text, "truncated") {
		t.Error("the report says it is truncated")
	}
}

func BenchmarkCheckRefsExample(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "example")
	err := gitrepo.InitFromDirs(context.Background(), dir,
		gitrepo.CommitSpec{Branch: "main", Tree: os.DirFS("../../testdata/compat-layer/base"), Message: "base"},
		gitrepo.CommitSpec{Branch: "pr", Tree: os.DirFS("../../testdata/compat-layer/pr"), Message: "head"})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := CheckRefs(context.Background(), dir, "main", "pr"); err != nil {
			b.Fatal(err)
		}
	}
}

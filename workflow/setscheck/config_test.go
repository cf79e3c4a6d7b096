package setscheck

import (
	"context"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testgit"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/report"
)

// A PR's own .github/compatbot.yml never decides how the PR is read: a PR
// that points sets_dir at a directory of its own gets its real sets
// judged, and the config edit is shown (and linted) as a config change.
func TestPRConfigNeverJudgesThePR(t *testing.T) {
	dir := testgit.ExampleRepo(t)
	head := testgit.Git(t, dir, "rev-parse", "pr")
	cfg := testgit.Git(t, dir, "show", "main:.github/compatbot.yml") + "\n"
	redirect := testgit.Commit(t, dir, head, map[string]string{
		".github/compatbot.yml":          strings.Replace(cfg, "sets_dir: sets", "sets_dir: elsewhere", 1),
		"elsewhere/2026.06/linux-x86_64": "sys-libs/glibc # the only package\n",
	}, "redirect the sets")
	ctx := context.Background()
	plain, _, err := CheckPR(ctx, dir, PR{Config: "main", Base: "main", Head: head})
	if err != nil {
		t.Fatal(err)
	}
	c, rev, err := CheckPR(ctx, dir, PR{Config: "main", Base: "main", Head: redirect})
	if err != nil {
		t.Fatal(err)
	}
	if rev.Head.Config.SetsDir != "sets" {
		t.Errorf("head read with sets_dir %q, want the default branch's %q", rev.Head.Config.SetsDir, "sets")
	}
	if got, want := changes(rev), changesOf(t, dir, head); got != want {
		t.Errorf("the redirecting PR's changes = %d, want the real sets' %d", got, want)
	}
	if rev.Config == nil || rev.Config.Err != nil {
		t.Fatalf("config change = %+v", rev.Config)
	}
	if !strings.Contains(c.Summary, "### Config change") || !strings.Contains(c.Summary, "+sets_dir: elsewhere") || !strings.Contains(c.Summary, "-sets_dir: sets") {
		t.Errorf("summary does not show the config change:\n%s", c.Summary)
	}
	if c.Conclusion != plain.Conclusion {
		t.Errorf("conclusion %s, want %s as without the config edit", c.Conclusion, plain.Conclusion)
	}

	// An invalid config fails the check at its file:line.
	broken := testgit.Commit(t, dir, head, map[string]string{".github/compatbot.yml": cfg + "no_such_key: 1\n"}, "typo")
	c, _, err = CheckPR(ctx, dir, PR{Config: "main", Base: "main", Head: broken})
	if err != nil {
		t.Fatal(err)
	}
	if c.Conclusion != report.Failure {
		t.Errorf("invalid config: conclusion %s, want failure", c.Conclusion)
	}
	found := false
	for _, a := range c.Annotations {
		if a.Path == sets.DefaultConfigPath && a.StartLine == strings.Count(cfg, "\n")+1 && strings.Contains(a.Message, "no_such_key") {
			found = true
		}
	}
	if !found {
		t.Errorf("no annotation at %s:%d naming the key; annotations %+v", sets.DefaultConfigPath, strings.Count(cfg, "\n")+1, c.Annotations)
	}
}

func changes(rev *Revisions) int {
	n := 0
	for _, d := range sets.Diff(rev.Base, rev.Head) {
		n += len(d.Changes)
	}
	return n
}

func changesOf(t *testing.T, dir, head string) int {
	t.Helper()
	rev, err := LoadPR(context.Background(), dir, PR{Config: "main", Base: "main", Head: head})
	if err != nil {
		t.Fatal(err)
	}
	return changes(rev)
}

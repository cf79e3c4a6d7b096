package changelog

import (
	"context"
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/compatbot/compatbot/workflow/state"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	testtree.Golden(t, name, got, *update)
}

var (
	t0      = time.Date(2026, 11, 24, 20, 15, 0, 0, time.UTC)
	publish = Entry{
		Date: t0, Version: "2025.06", Target: "test", Action: Publish,
		Tag: "2025.06-linux-x86_64-pr12-abcdef0", Revision: 7,
		PR: 12, PRURL: "https://github.com/org/compat/pull/12",
		Author: "alice", Approver: "bob", Deployer: "bob",
		Changes: map[string][]Change{
			"linux-x86_64": {
				{Kind: "upgraded", Package: "dev-lang/python", Old: "=dev-lang/python-3.11.9", New: "=dev-lang/python-3.12.3"},
				{Kind: "added", Package: "app-shells/bash-completion", New: "app-shells/bash-completion"},
			},
			"linux-aarch64": {
				{Kind: "removed", Package: "sys-apps/evil", Old: "sys-apps/evil|<script>`x`"},
			},
		},
	}
	rollback = Entry{
		Date: t0.Add(time.Hour), Version: "2025.06", Target: "prod", Action: Rollback,
		Tag: "2025.06-linux-x86_64-pr11-1234567", Revision: 9, Deployer: "carol",
	}
)

func TestRenderGolden(t *testing.T) {
	golden(t, "publish.md", Render(publish))
	golden(t, "rollback.md", Render(rollback))
}

func TestRenderEscapesUntrustedText(t *testing.T) {
	e := publish
	e.Author = "mallory<img src=x>"
	out := Render(e)
	for _, bad := range []string{"<img", "`x`"} {
		if strings.Contains(out, bad) {
			t.Errorf("rendered entry contains unescaped %q", bad)
		}
	}
	// Inside a code span HTML is inert; the separator is still escaped.
	if !strings.Contains(out, "| `sys-apps/evil\\|<script>'x'` |") {
		t.Errorf("code span not escaped as expected:\n%s", out)
	}
	// Every table row keeps exactly five separators.
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "| ") {
			if n := strings.Count(line, "|") - strings.Count(line, `\|`); n != 5 {
				t.Errorf("table row with %d separators: %q", n, line)
			}
		}
	}
}

func TestAppendBuildsFileOldestFirstAndIsIdempotent(t *testing.T) {
	var file []byte
	file = Append(file, publish)
	file = Append(file, rollback)
	again := Append(file, publish)
	if string(again) != string(file) {
		t.Error("appending an entry already present changed the file")
	}
	golden(t, "2025.06.md", string(file))
	if !strings.HasPrefix(string(file), "# Changelog of compatibility layer 2025.06\n") {
		t.Error("missing header")
	}
	if strings.Index(string(file), publish.Tag) > strings.Index(string(file), rollback.Tag) {
		t.Error("entries not oldest first")
	}
}

type memCommitter struct {
	files   map[string][]byte
	message string
}

// CommitFile stands in for the GitHub contents API: it stores the file.
func (m *memCommitter) CommitFile(ctx context.Context, repo, branch, path string, content []byte, message string) error {
	m.files[repo+"@"+branch+":"+path] = content
	m.message = message
	return nil
}

func TestCommitWritesVersionFile(t *testing.T) {
	ctx := context.Background()
	c := &memCommitter{files: map[string][]byte{}}
	if err := Commit(ctx, c, nil, "org/compat", "main", publish); err != nil {
		t.Fatal(err)
	}
	key := "org/compat@main:changelog/2025.06.md"
	got, ok := c.files[key]
	if !ok {
		t.Fatalf("no commit to %s: %v", key, c.files)
	}
	if !Contains(got, publish) || c.message != "changelog: test publish 2025.06-linux-x86_64-pr12-abcdef0 (#12)" {
		t.Errorf("commit %q with content %q", c.message, got)
	}
	// A retry after a successful commit commits nothing.
	c.message = ""
	if err := Commit(ctx, c, got, "org/compat", "main", publish); err != nil || c.message != "" {
		t.Errorf("retry committed again: %q, %v", c.message, err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Entry)
		want string
	}{
		{func(e *Entry) { e.Date = time.Time{} }, "date is missing"},
		{func(e *Entry) { e.Version = "" }, "version is missing"},
		{func(e *Entry) { e.Version = "../x" }, "not a file name"},
		{func(e *Entry) { e.Target = "" }, "target is missing"},
		{func(e *Entry) { e.Action = "deploy" }, `action "deploy"`},
		{func(e *Entry) { e.Tag = "" }, "tag is missing"},
	} {
		e := publish
		tc.edit(&e)
		if err := e.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate = %v, want %q", err, tc.want)
		}
	}
	if err := publish.Validate(); err != nil {
		t.Error(err)
	}
}

func TestRecordAndListAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "compatbot.db")
	db, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	prodPublish := publish
	prodPublish.Target, prodPublish.Date = "prod", t0.Add(30*time.Minute+500*time.Millisecond)
	for _, e := range []Entry{publish, prodPublish, rollback, publish} {
		if err := Record(ctx, db, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := Record(ctx, db, Entry{Target: "prod"}); err == nil {
		t.Error("recorded an invalid entry")
	}
	db.Close()
	db, err = state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	all, err := List(ctx, db, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Entry{rollback, prodPublish, publish}, all, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); d != "" {
		t.Errorf("List all, newest first (-want +got):\n%s", d)
	}
	prod, err := List(ctx, db, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if len(prod) != 2 || prod[0].Tag != rollback.Tag || prod[1].Date.Sub(t0) != 30*time.Minute+500*time.Millisecond {
		t.Errorf("List prod = %+v", prod)
	}
}

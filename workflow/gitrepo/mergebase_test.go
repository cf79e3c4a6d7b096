package gitrepo_test

import (
	"context"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testgit"
	"github.com/compatbot/compatbot/workflow/gitrepo"
)

// TestPRBase: a PR's changes are measured from its merge base, before and
// after each of GitHub's three merge methods, with main having moved on
// since the fork (another PR merged first).
func TestPRBase(t *testing.T) {
	dir := t.TempDir()
	testgit.Git(t, "", "init", "-q", "--bare", "-b", "main", dir)
	root := testgit.Git(t, dir, "commit-tree", testgit.Git(t, dir, "mktree"), "-m", "root")
	fork := testgit.Commit(t, dir, root, map[string]string{"a": "1\n"}, "fork")
	other := testgit.Commit(t, dir, fork, map[string]string{"b": "other\n"}, "another PR")
	pr1 := testgit.Commit(t, dir, fork, map[string]string{"c": "1\n"}, "pr 1")
	head := testgit.Commit(t, dir, pr1, map[string]string{"c": "2\n"}, "pr 2")
	mergedTree := testgit.Commit(t, dir, other, map[string]string{"c": "2\n"}, "tree of the merge")
	tree := testgit.Git(t, dir, "rev-parse", mergedTree+"^{tree}")
	mergeCommit := testgit.Git(t, dir, "commit-tree", tree, "-p", other, "-p", head, "-m", "Merge pull request #1")
	squash := testgit.Git(t, dir, "commit-tree", tree, "-p", other, "-m", "pr (#1)")
	rebased := testgit.Commit(t, dir, testgit.Commit(t, dir, other, map[string]string{"c": "1\n"}, "pr 1"), map[string]string{"c": "2\n"}, "pr 2")
	after := testgit.Commit(t, dir, mergeCommit, map[string]string{"d": "later\n"}, "a later PR")

	ctx := context.Background()
	for _, tc := range []struct {
		name, tip, hint string
	}{
		{"open", other, other},
		{"open, stale hint", other, fork},
		{"merge commit, hint from before", mergeCommit, other},
		{"merge commit, no hint", mergeCommit, ""},
		{"merge commit, hint is the merge", mergeCommit, mergeCommit},
		{"merge commit, main moved on since", after, ""},
		{"squash", squash, ""},
		{"rebase", rebased, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testgit.Git(t, dir, "update-ref", "refs/heads/main", tc.tip)
			got, err := gitrepo.PRBase(ctx, dir, "main", head, tc.hint)
			if err != nil {
				t.Fatal(err)
			}
			if got != fork {
				t.Errorf("PRBase = %s, want the fork point %s (tip %s)", got[:7], fork[:7], tc.tip[:7])
			}
		})
	}
	// A head that is the base tip (fast-forwarded) cannot tell its base.
	testgit.Git(t, dir, "update-ref", "refs/heads/main", head)
	if _, err := gitrepo.PRBase(ctx, dir, "main", head, ""); err == nil || !strings.Contains(err.Error(), "cannot be told") {
		t.Errorf("head = tip: %v", err)
	}
	// Refs from payloads are validated before git sees them.
	if _, err := gitrepo.PRBase(ctx, dir, "main", "--output=/tmp/x", ""); err == nil {
		t.Error("an option as head was accepted")
	}
}

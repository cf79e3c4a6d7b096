package githubfake_test

import (
	"strings"
	"testing"

	"github.com/compatbot/compatbot/bot/githubfake"
	"github.com/compatbot/compatbot/internal/testgit"
)

func TestMergeMovesTheBaseBranch(t *testing.T) {
	for _, method := range []string{githubfake.MergeCommit, githubfake.Squash, githubfake.Rebase} {
		t.Run(method, func(t *testing.T) {
			dir := t.TempDir()
			testgit.Git(t, "", "init", "-q", "--bare", "-b", "main", dir)
			fork := testgit.Commit(t, dir, emptyCommit(t, dir), map[string]string{"a": "1\n"}, "fork")
			// main moves on after the fork; the PR has two commits.
			mainTip := testgit.Commit(t, dir, fork, map[string]string{"b": "main\n"}, "other PR")
			head := testgit.Commit(t, dir, testgit.Commit(t, dir, fork, map[string]string{"c": "pr 1\n"}, "pr 1"), map[string]string{"c": "pr 2\n"}, "pr 2")
			testgit.Git(t, dir, "update-ref", "refs/heads/main", mainTip)

			gh, _ := githubfake.New(1)
			defer gh.Close()
			r := gh.AddRepo("o", "r", 1, "file://"+dir)
			r.GitDir = dir
			r.Branches["main"] = mainTip
			gh.SetPull("o/r", githubfake.Pull{Number: 3, Title: "pr", Author: "alice", HeadRef: "topic", HeadSHA: head, BaseRef: "main", BaseSHA: mainTip})

			sha, err := gh.Merge("o/r", 3, method, "mia")
			if err != nil {
				t.Fatal(err)
			}
			if got := testgit.Git(t, dir, "rev-parse", "refs/heads/main"); got != sha {
				t.Fatalf("main is %s after the merge, want the merge's commit %s", got, sha)
			}
			if got := testgit.Git(t, dir, "show", sha+":c"); got != "pr 2" {
				t.Errorf("merged tree has c = %q", got)
			}
			if got := testgit.Git(t, dir, "show", sha+":b"); got != "main" {
				t.Errorf("merged tree lost main's change: b = %q", got)
			}
			parents := strings.Fields(testgit.Git(t, dir, "rev-list", "--parents", "-n1", sha))[1:]
			isAncestor := testgit.Git(t, dir, "rev-list", sha) // every commit reachable from the merge
			switch method {
			case githubfake.MergeCommit:
				if len(parents) != 2 || parents[0] != mainTip || parents[1] != head {
					t.Errorf("merge commit parents %v, want [%s %s]", parents, mainTip, head)
				}
			case githubfake.Squash:
				if len(parents) != 1 || parents[0] != mainTip || strings.Contains(isAncestor, head) {
					t.Errorf("squash commit parents %v, want only %s and the head unreachable", parents, mainTip)
				}
			case githubfake.Rebase:
				if strings.Contains(isAncestor, head) || testgit.Git(t, dir, "rev-list", "--count", mainTip+".."+sha) != "2" {
					t.Errorf("rebase: want the head's two commits replayed as new commits on %s", mainTip)
				}
			}
			p := gh.Pull("o/r", 3)
			if p.State != "closed" || !p.Merged || p.MergeCommitSHA != sha || p.MergedBy != "mia" {
				t.Errorf("pull after merge: %+v", p)
			}
			if _, err := gh.Merge("o/r", 3, method, "mia"); err == nil || !strings.Contains(err.Error(), "405") {
				t.Errorf("merging a closed PR again: %v, want 405", err)
			}
		})
	}
}

func TestMergeConflictChangesNothing(t *testing.T) {
	dir := t.TempDir()
	testgit.Git(t, "", "init", "-q", "--bare", "-b", "main", dir)
	fork := testgit.Commit(t, dir, emptyCommit(t, dir), map[string]string{"a": "1\n"}, "fork")
	mainTip := testgit.Commit(t, dir, fork, map[string]string{"a": "main\n"}, "main")
	head := testgit.Commit(t, dir, fork, map[string]string{"a": "pr\n"}, "pr")
	testgit.Git(t, dir, "update-ref", "refs/heads/main", mainTip)
	gh, _ := githubfake.New(1)
	defer gh.Close()
	r := gh.AddRepo("o", "r", 1, "file://"+dir)
	r.GitDir = dir
	gh.SetPull("o/r", githubfake.Pull{Number: 3, HeadSHA: head, BaseRef: "main", HeadRef: "topic"})
	if _, err := gh.Merge("o/r", 3, githubfake.Squash, "mia"); err == nil || !strings.Contains(err.Error(), "not mergeable") {
		t.Fatalf("conflicting merge: %v", err)
	}
	if got := testgit.Git(t, dir, "rev-parse", "refs/heads/main"); got != mainTip {
		t.Errorf("a refused merge moved main to %s", got)
	}
	if p := gh.Pull("o/r", 3); p.Merged || p.State != "open" {
		t.Errorf("a refused merge changed the pull: %+v", p)
	}
}

func emptyCommit(t *testing.T, dir string) string {
	t.Helper()
	tree := testgit.Git(t, dir, "mktree")
	return testgit.Git(t, dir, "commit-tree", tree, "-m", "root")
}

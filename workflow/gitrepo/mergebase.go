package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// PRBase is the commit a pull request's changes are measured from: its
// merge base with the base branch (GitHub's three-dot diff), which stays
// the same after the PR is merged. baseRef is the base branch (its tip may
// already contain the PR); hint is GitHub's base.sha, used when the tip
// alone cannot tell. The tip is never the answer for a merged PR: a merge
// has moved it past the PR, so diffing against it would show nothing.
//
//   - head not in baseRef (open, squash- or rebase-merged): merge-base.
//   - head in baseRef but not in hint (merge commit, hint from before it):
//     merge-base of hint and head.
//   - otherwise the merge commit is found on baseRef's first-parent line
//     (the oldest commit there that descends from head), and the answer is
//     the merge base of its first parent and head.
func PRBase(ctx context.Context, gitDir, baseRef, head, hint string) (string, error) {
	tip, err := ResolveCommit(ctx, gitDir, baseRef)
	if err != nil {
		return "", err
	}
	if head, err = ResolveCommit(ctx, gitDir, head); err != nil {
		return "", err
	}
	in, err := isAncestor(ctx, gitDir, head, tip)
	if err != nil {
		return "", err
	}
	if !in {
		return mergeBase(ctx, gitDir, tip, head)
	}
	if hint != "" {
		if h, err := ResolveCommit(ctx, gitDir, hint); err == nil {
			if in, err := isAncestor(ctx, gitDir, head, h); err == nil && !in {
				return mergeBase(ctx, gitDir, h, head)
			}
		}
	}
	out, err := cmd{gitDir: gitDir, args: []string{"rev-list", "--first-parent", "--ancestry-path", "--reverse", head + ".." + tip}}.run(ctx)
	if err != nil {
		return "", err
	}
	merge, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if merge == "" {
		// head is the tip itself: nothing on the base branch tells where
		// the PR began.
		return "", fmt.Errorf("%s: %s is the tip of %s, so its merge base cannot be told apart from it", gitDir, short(head), baseRef)
	}
	return mergeBase(ctx, gitDir, merge+"^1", head)
}

func mergeBase(ctx context.Context, gitDir, a, b string) (string, error) {
	out, err := cmd{gitDir: gitDir, args: []string{"merge-base", "--end-of-options", a, b}}.run(ctx)
	if err != nil {
		var ge *GitError
		if errors.As(err, &ge) && strings.TrimSpace(ge.Stderr) == "" {
			return "", fmt.Errorf("%s: %s and %s have no common ancestor", gitDir, short(a), short(b))
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// IsAncestor reports whether commit a is reachable from commit b.
func IsAncestor(ctx context.Context, gitDir, a, b string) (bool, error) {
	for _, r := range []string{a, b} {
		if err := ValidateRevision(r); err != nil {
			return false, err
		}
	}
	return isAncestor(ctx, gitDir, a, b)
}

// isAncestor is IsAncestor for revisions already validated.
func isAncestor(ctx context.Context, gitDir, a, b string) (bool, error) {
	_, err := cmd{gitDir: gitDir, args: []string{"merge-base", "--is-ancestor", "--end-of-options", a, b}}.run(ctx)
	if err == nil {
		return true, nil
	}
	var ge *GitError
	if errors.As(err, &ge) && strings.TrimSpace(ge.Stderr) == "" {
		return false, nil
	}
	return false, err
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

package githubfake

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Merge methods, as GitHub's merge button and API name them.
const (
	MergeCommit = "merge"
	Squash      = "squash"
	Rebase      = "rebase"
)

// Merge merges pull request n of repo the way GitHub does, with real git
// on the repository's GitDir: "merge" adds a merge commit of the base tip
// and the head, "squash" one commit with the combined tree on the base
// tip, "rebase" the head's commits replayed one by one on the base tip.
// The base branch moves first, and only then is the pull request marked
// merged (with merge_commit_sha and merged_by): a test delivers the
// "closed" event after Merge returns, so the handler sees what GitHub's
// handlers see, a base branch that already contains the PR. A conflict
// is GitHub's 405 "not mergeable" and changes nothing.
func (s *Server) Merge(repo string, n int, method, by string) (string, error) {
	s.mu.Lock()
	r, ok := s.repos[repo]
	var p *Pull
	if ok {
		p = r.pulls[n]
	}
	s.mu.Unlock()
	switch {
	case !ok:
		return "", fmt.Errorf("404: no repository %s", repo)
	case p == nil:
		return "", fmt.Errorf("404: no pull request %s#%d", repo, n)
	case p.State != "open":
		return "", fmt.Errorf("405: pull request %s#%d is not open", repo, n)
	case r.GitDir == "":
		return "", fmt.Errorf("githubfake: %s has no GitDir to merge in", repo)
	}
	work, err := os.MkdirTemp("", "githubfake-merge-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	git := func(args ...string) (string, error) {
		c := exec.Command("git", args...)
		c.Dir = work
		c.Env = append(os.Environ(), "GIT_AUTHOR_NAME=GitHub", "GIT_AUTHOR_EMAIL=noreply@github.com",
			"GIT_COMMITTER_NAME=GitHub", "GIT_COMMITTER_EMAIL=noreply@github.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+work)
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		if err := c.Run(); err != nil {
			return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, errb.String())
		}
		return strings.TrimSpace(out.String()), nil
	}
	if _, err := git("clone", "-q", "--no-checkout", r.GitDir, "."); err != nil {
		return "", err
	}
	if _, err := git("fetch", "-q", "origin", p.HeadSHA); err != nil {
		return "", err
	}
	base := "origin/" + p.BaseRef
	title := fmt.Sprintf("%s (#%d)", p.Title, n)
	switch method {
	case MergeCommit:
		_, err = git("checkout", "-q", "-B", "merged", base)
		if err == nil {
			_, err = git("merge", "-q", "--no-ff", "-m", fmt.Sprintf("Merge pull request #%d from %s\n\n%s", n, p.HeadRef, p.Title), p.HeadSHA)
		}
	case Squash:
		_, err = git("checkout", "-q", "-B", "merged", base)
		if err == nil {
			_, err = git("merge", "-q", "--squash", p.HeadSHA)
		}
		if err == nil {
			_, err = git("commit", "-q", "-m", title)
		}
	case Rebase:
		_, err = git("checkout", "-q", "-B", "merged", p.HeadSHA)
		if err == nil {
			_, err = git("rebase", "-q", "--no-autosquash", base)
		}
	default:
		return "", fmt.Errorf("422: merge_method %q is not merge, squash or rebase", method)
	}
	if err != nil {
		return "", fmt.Errorf("405: pull request %s#%d is not mergeable: %w", repo, n, err)
	}
	sha, err := git("rev-parse", "HEAD")
	if err != nil {
		return "", err
	}
	if _, err := git("push", "-q", "origin", "HEAD:refs/heads/"+p.BaseRef); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Branches[p.BaseRef] = sha
	p.State, p.Merged, p.MergeCommitSHA, p.MergedBy = "closed", true, sha, by
	return sha, nil
}

func mergedBy(p *Pull) any {
	if p.MergedBy == "" {
		return nil
	}
	return userJSON(p.MergedBy)
}

package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/compatbot/compatbot/workflow/gitrepo"
)

// gitChangelog is the local cycle's deploy.ChangelogStore: it reads and
// commits changelog files on a branch of a local git repository with the
// git CLI, as the bot does through GitHub's contents API. It writes with
// plumbing (a private index, commit-tree, a compare-and-swap update-ref), so
// the branch gets a real commit without a checkout and the work tree (the
// example has pr checked out) is left alone. Every argument is argv; paths
// and branches are validated first.
type gitChangelog struct {
	Dir string
	// Name and Email sign the commits (the bot's identity).
	Name, Email string
}

func (g gitChangelog) git(ctx context.Context, stdin []byte, env []string, args ...string) (string, error) {
	out, err := g.gitRaw(ctx, stdin, env, args...)
	return strings.TrimSpace(string(out)), err
}

func (g gitChangelog) gitRaw(ctx context.Context, stdin []byte, env []string, args ...string) ([]byte, error) {
	return gitrepo.Git(ctx, g.Dir, stdin, append([]string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull}, env...), args...)
}

// checkPath admits a plain relative file path (changelog/<version>.md):
// no option-like or hidden elements, nothing git would read as a pathspec
// magic or revision syntax.
func checkPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsAny(p, ":\\\x00\n*?[") {
		return fmt.Errorf("changelog path %q: not a plain relative path", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el[0] == '.' || el[0] == '-' {
			return fmt.Errorf("changelog path %q: element %q is not allowed", p, el)
		}
	}
	return nil
}

func (g gitChangelog) tip(ctx context.Context, branch string) (string, error) {
	if err := gitrepo.ValidateRef(branch); err != nil {
		return "", err
	}
	return g.git(ctx, nil, nil, "rev-parse", "--verify", "--quiet", "refs/heads/"+branch+"^{commit}")
}

// ReadFile implements deploy.ChangelogStore; a missing file is
// fs.ErrNotExist, as deploy expects.
func (g gitChangelog) ReadFile(ctx context.Context, repo, branch, path string) ([]byte, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	tip, err := g.tip(ctx, branch)
	if err != nil {
		return nil, fmt.Errorf("branch %s: %w", branch, err)
	}
	// "<mode> blob <sha>\t<path>", or nothing when the file is absent.
	line, err := g.git(ctx, nil, nil, "ls-tree", tip, "--", path)
	if err != nil {
		return nil, err
	}
	f := strings.Fields(line)
	if len(f) < 3 {
		return nil, fmt.Errorf("%s on %s: %w", path, branch, fs.ErrNotExist)
	}
	if f[1] != "blob" {
		return nil, fmt.Errorf("%s on %s is a %s, not a file", path, branch, f[1])
	}
	return g.gitRaw(ctx, nil, nil, "cat-file", "blob", f[2])
}

// CommitFile implements deploy.ChangelogStore: one commit on branch whose
// only change is path's new content.
func (g gitChangelog) CommitFile(ctx context.Context, repo, branch, path string, content []byte, message string) error {
	if err := checkPath(path); err != nil {
		return err
	}
	tip, err := g.tip(ctx, branch)
	if err != nil {
		return fmt.Errorf("branch %s: %w", branch, err)
	}
	blob, err := g.git(ctx, content, nil, "hash-object", "-w", "--stdin")
	if err != nil {
		return err
	}
	idx, err := os.CreateTemp("", "compatbot-changelog-index-*")
	if err != nil {
		return err
	}
	idx.Close()
	os.Remove(idx.Name()) // git wants to create the index itself
	defer os.Remove(idx.Name())
	env := []string{"GIT_INDEX_FILE=" + idx.Name()}
	if _, err := g.git(ctx, nil, env, "read-tree", tip); err != nil {
		return err
	}
	if _, err := g.git(ctx, nil, env, "update-index", "--add", "--cacheinfo", "100644,"+blob+","+path); err != nil {
		return err
	}
	tree, err := g.git(ctx, nil, env, "write-tree")
	if err != nil {
		return err
	}
	commit, err := g.git(ctx, []byte(message+"\n"), g.identity(), "commit-tree", tree, "-p", tip)
	if err != nil {
		return err
	}
	// Compare-and-swap: a branch that moved meanwhile is an error, never
	// silently overwritten.
	_, err = g.git(ctx, nil, nil, "update-ref", "-m", "compatbot: "+message, "refs/heads/"+branch, commit, tip)
	return err
}

func (g gitChangelog) identity() []string {
	name, email := g.Name, g.Email
	if name == "" {
		name, email = "compatbot", "compatbot@localhost"
	}
	return []string{"GIT_AUTHOR_NAME=" + name, "GIT_AUTHOR_EMAIL=" + email, "GIT_COMMITTER_NAME=" + name, "GIT_COMMITTER_EMAIL=" + email}
}

// merge merges head into branch with a merge commit by who, the local
// stand-in for pressing "Merge" on the PR. It refuses a conflicting merge
// (git merge-tree exits 1) rather than resolving anything.
func (g gitChangelog) merge(ctx context.Context, branch, head, who, message string) (string, error) {
	tip, err := g.tip(ctx, branch)
	if err != nil {
		return "", fmt.Errorf("branch %s: %w", branch, err)
	}
	if len(head) != 40 {
		return "", fmt.Errorf("merge: head %q is not a full commit SHA", head)
	}
	out, err := g.git(ctx, nil, nil, "merge-tree", "--write-tree", "--no-messages", tip, head)
	if err != nil {
		return "", fmt.Errorf("merging %s into %s: %w", head[:12], branch, err)
	}
	tree, _, _ := strings.Cut(out, "\n")
	id := g.identity()
	if who != "" {
		id[0], id[1] = "GIT_AUTHOR_NAME="+who, "GIT_AUTHOR_EMAIL="+who+"@localhost"
	}
	commit, err := g.git(ctx, []byte(message+"\n"), id, "commit-tree", tree, "-p", tip, "-p", head)
	if err != nil {
		return "", err
	}
	if _, err := g.git(ctx, nil, nil, "update-ref", "-m", "compatbot: "+message, "refs/heads/"+branch, commit, tip); err != nil {
		return "", err
	}
	return commit, nil
}

// log is branch's history since from, one "sha7 subject" per line.
func (g gitChangelog) log(ctx context.Context, from, branch string) ([]string, error) {
	if err := gitrepo.ValidateRef(branch); err != nil {
		return nil, err
	}
	out, err := g.git(ctx, nil, nil, "log", "--format=%h %s", from+"..refs/heads/"+branch)
	if err != nil {
		return nil, err
	}
	if out == "" {
		return nil, nil
	}
	return strings.Split(out, "\n"), nil
}

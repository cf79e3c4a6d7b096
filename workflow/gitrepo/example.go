package gitrepo

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CommitSpec is one commit for InitFromDirs: the full tree of the commit
// (not a patch), the branch that points at it, and its message.
type CommitSpec struct {
	Branch  string
	Tree    fs.FS
	Message string
}

// exampleEpoch makes the commits' dates, and so their SHAs, reproducible.
var exampleEpoch = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// InitFromDirs creates a fresh git repository with a work tree at dir
// (removing whatever was there) holding one commit per spec, each the child
// of the one before, with spec.Branch pointing at it; HEAD is left on the
// last branch with its files checked out, like a contributor's clone with
// the PR branch checked out. Author, committer, dates and configuration are
// fixed, so the same trees always give the same SHAs.
func InitFromDirs(ctx context.Context, dir string, commits ...CommitSpec) error {
	if len(commits) == 0 {
		return fmt.Errorf("InitFromDirs: no commits")
	}
	for _, c := range commits {
		if err := ValidateRef(c.Branch); err != nil {
			return fmt.Errorf("InitFromDirs: branch: %w", err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	hermetic := []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull}
	git := func(env []string, args ...string) (string, error) {
		out, err := cmd{gitDir: dir, args: append([]string{"-c", "core.autocrlf=false", "-c", "core.fileMode=true"}, args...), env: append(hermetic, env...)}.run(ctx)
		return strings.TrimSpace(string(out)), err
	}
	if _, err := git(nil, "init", "--quiet"); err != nil {
		return err
	}
	parent := ""
	for i, c := range commits {
		if err := replaceWorkTree(dir, c.Tree); err != nil {
			return fmt.Errorf("commit %d (%s): %w", i+1, c.Branch, err)
		}
		if _, err := git(nil, "add", "--all", "--force", "."); err != nil {
			return err
		}
		tree, err := git(nil, "write-tree")
		if err != nil {
			return err
		}
		date := exampleEpoch.Add(time.Duration(i) * 24 * time.Hour).Format(time.RFC3339)
		env := []string{
			"GIT_AUTHOR_NAME=compatbot example", "GIT_AUTHOR_EMAIL=example@compatbot.invalid", "GIT_AUTHOR_DATE=" + date,
			"GIT_COMMITTER_NAME=compatbot example", "GIT_COMMITTER_EMAIL=example@compatbot.invalid", "GIT_COMMITTER_DATE=" + date,
		}
		args := []string{"commit-tree", tree, "-m", c.Message}
		if parent != "" {
			args = append(args, "-p", parent)
		}
		sha, err := git(env, args...)
		if err != nil {
			return err
		}
		if _, err := git(nil, "update-ref", "refs/heads/"+c.Branch, sha); err != nil {
			return err
		}
		parent = sha
	}
	if _, err := git(nil, "symbolic-ref", "HEAD", "refs/heads/"+commits[len(commits)-1].Branch); err != nil {
		return err
	}
	_, err := git(nil, "reset", "--quiet")
	return err
}

// replaceWorkTree empties dir except .git and copies tree into it.
func replaceWorkTree(dir string, tree fs.FS) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() != ".git" {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if d.Name() == ".git" {
			return fmt.Errorf("%s: a tree to commit must not contain .git", p)
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: only regular files can be committed", p)
		}
		data, err := fs.ReadFile(tree, p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
}

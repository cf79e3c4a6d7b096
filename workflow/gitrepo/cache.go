package gitrepo

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Cache keeps bare clones of managed repositories under Dir, one per remote:
// Dir/<host>/<owner>/<repo>.git.
type Cache struct {
	Dir string
}

var pathPart = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// repoPath maps a remote URL to its place in the cache. Only plain
// http(s)://host/owner/repo[.git] URLs without credentials are accepted:
// the URL is stored in the clone's config, and a token in it would end up on
// disk.
func (c *Cache) repoPath(remoteURL string) (string, error) {
	u, err := url.Parse(remoteURL)
	if err != nil {
		return "", fmt.Errorf("remote URL: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("remote URL %q: scheme must be https or http", remoteURL)
	}
	if u.User != nil {
		return "", fmt.Errorf("remote URL must not carry credentials; pass the token separately")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("remote URL %q: query and fragment are not allowed", remoteURL)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 {
		return "", fmt.Errorf("remote URL %q: want https://host/owner/repo", remoteURL)
	}
	owner, repo := parts[0], strings.TrimSuffix(parts[1], ".git")
	host := strings.ReplaceAll(u.Host, ":", "_")
	for _, p := range []string{host, owner, repo} {
		if !pathPart.MatchString(p) || strings.Contains(p, "..") {
			return "", fmt.Errorf("remote URL %q: %q is not a plain name", remoteURL, p)
		}
	}
	return filepath.Join(c.Dir, host, owner, repo+".git"), nil
}

// Fetch makes Dir/<host>/<owner>/<repo>.git an up-to-date bare copy of
// remoteURL and returns its path. Without refspecs it mirrors the branches
// (+refs/heads/*:refs/heads/*); a PR head is fetched with e.g.
// "+refs/pull/7/head:refs/pull/7/head".
//
// The token (a GitHub installation token, or "" for a public remote) goes to
// git only through the environment as an http.extraHeader, never in argv
// (visible in ps) or in the stored remote URL. Concurrent fetches of the same
// repository, in this process or another, are serialised with a lock file.
func (c *Cache) Fetch(ctx context.Context, remoteURL, token string, refspecs ...string) (string, error) {
	dir, err := c.repoPath(remoteURL)
	if err != nil {
		return "", err
	}
	if u, _ := url.Parse(remoteURL); token != "" && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("remote URL %q: refusing to send a token over plain http to a non-local host", remoteURL)
	}
	for _, rs := range refspecs {
		if err := validateRefspec(rs); err != nil {
			return "", err
		}
	}
	if len(refspecs) == 0 {
		refspecs = []string{"+refs/heads/*:refs/heads/*"}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()

	var env, secrets []string
	if token != "" {
		basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
		// No redirects: the extra header would follow them to another host.
		env = []string{
			"GIT_CONFIG_COUNT=2",
			"GIT_CONFIG_KEY_0=http.extraHeader",
			"GIT_CONFIG_VALUE_0=Authorization: Basic " + basic,
			"GIT_CONFIG_KEY_1=http.followRedirects",
			"GIT_CONFIG_VALUE_1=false",
		}
		secrets = []string{token, basic}
	}
	fresh := false
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil {
		// A half-made clone from an interrupted first fetch is redone.
		if err := os.RemoveAll(dir); err != nil {
			return "", err
		}
		if _, err := (cmd{args: []string{"init", "--quiet", "--bare", dir}}).run(ctx); err != nil {
			return "", err
		}
		fresh = true
	}
	// Set every time: the same repository may be reached as .../repo or
	// .../repo.git, or over another scheme.
	if _, err := (cmd{gitDir: dir, args: []string{"config", "remote.origin.url", remoteURL}}).run(ctx); err != nil {
		return "", err
	}
	args := append([]string{"fetch", "--quiet", "--prune", "--no-tags", "--end-of-options", "origin"}, refspecs...)
	if _, err := (cmd{gitDir: dir, args: args, env: env, secret: secrets}).run(ctx); err != nil {
		if fresh {
			os.RemoveAll(dir)
		}
		return "", authHint(err)
	}
	if fresh {
		// Point HEAD at the remote's default branch so DefaultBranch works.
		out, err := cmd{gitDir: dir, args: []string{"ls-remote", "--symref", "origin", "HEAD"}, env: env, secret: secrets}.run(ctx)
		if err != nil {
			return "", authHint(err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if rest, ok := strings.CutPrefix(line, "ref: "); ok {
				ref, _, _ := strings.Cut(rest, "\t")
				if strings.HasPrefix(ref, "refs/heads/") && ValidateRef(ref) == nil {
					if _, err := (cmd{gitDir: dir, args: []string{"symbolic-ref", "HEAD", ref}}).run(ctx); err != nil {
						return "", err
					}
				}
			}
		}
	}
	return dir, nil
}

// validateRefspec accepts "[+]src[:dst]" where both sides are valid refs,
// allowing the single '*' of a glob refspec on both sides.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authHint says plainly what git's wording for a refused token means.
func authHint(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "could not read Username") || strings.Contains(msg, "Authentication failed") || strings.Contains(msg, "401") {
		return fmt.Errorf("authentication failed (token missing, wrong or expired): %w", err)
	}
	return err
}

func validateRefspec(rs string) error {
	src, dst, hasDst := strings.Cut(strings.TrimPrefix(rs, "+"), ":")
	glob := strings.Count(src, "*")
	if glob > 1 || (hasDst && strings.Count(dst, "*") != glob) || (!hasDst && glob > 0) {
		return fmt.Errorf("refspec %q: a glob needs exactly one '*' on each side", rs)
	}
	for _, r := range []string{src, dst} {
		if r == "" && !hasDst {
			continue
		}
		if err := ValidateRef(strings.Replace(r, "*", "x", 1)); err != nil {
			return fmt.Errorf("refspec %q: %w", rs, err)
		}
	}
	return nil
}

// lockFile takes an exclusive flock on path, polling so ctx can cancel the
// wait. flock locks belong to the open file description, so two goroutines of
// one process exclude each other as two processes do.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Package gitrepo reads the managed compat-layer repository through the real
// git CLI: resolving refs, reading a commit's tree as an fs.FS without a
// checkout (so it works on the bot's bare cache), and keeping that cache
// fetched with an installation token that never touches disk or argv.
//
// Refs may come from pull requests, so every ref is validated before it is
// passed to git, and git always runs through exec argv, never a shell.
package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RefError says why a ref was refused before reaching git.
type RefError struct {
	Ref string
	Msg string
}

func (e *RefError) Error() string { return fmt.Sprintf("invalid git ref %q: %s", e.Ref, e.Msg) }

// ValidateRef accepts branch and tag names, full ref names, commit SHAs
// (abbreviated or not) and HEAD. It refuses anything git could read as an
// option or as a revision expression ("a..b", "x^{tree}", "@{-1}", ":path"),
// because a ref chosen by a PR author must name one commit and nothing else.
func ValidateRef(ref string) error {
	bad := func(msg string) error { return &RefError{Ref: ref, Msg: msg} }
	switch {
	case ref == "":
		return bad("empty")
	case len(ref) > 255:
		return bad("longer than 255 bytes")
	case ref[0] == '-':
		return bad("starts with '-'")
	case strings.Contains(ref, ".."):
		return bad("contains '..'")
	case strings.Contains(ref, "@{"):
		return bad("contains '@{'")
	case strings.Contains(ref, "//"):
		return bad("contains '//'")
	case ref == "@":
		return bad("is '@'")
	case strings.HasPrefix(ref, "/") || strings.HasSuffix(ref, "/"):
		return bad("starts or ends with '/'")
	case strings.HasSuffix(ref, "."):
		return bad("ends with '.'")
	case strings.HasSuffix(ref, ".lock"):
		return bad("ends with '.lock'")
	}
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		if c < 0x20 || c == 0x7f {
			return bad(fmt.Sprintf("control character at byte %d", i+1))
		}
		if strings.IndexByte(" ~^:?*[\\", c) >= 0 {
			return bad(fmt.Sprintf("character %q at byte %d is not allowed", c, i+1))
		}
	}
	for _, part := range strings.Split(ref, "/") {
		if strings.HasPrefix(part, ".") {
			return bad("a component starts with '.'")
		}
	}
	return nil
}

// GitError is a failed git command with its stderr, secrets redacted.
type GitError struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *GitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("git %s: %s", strings.Join(e.Args, " "), msg)
}

func (e *GitError) Unwrap() error { return e.Err }

// cmd is one git invocation. Inherited GIT_* variables are dropped so a
// stray GIT_DIR or GIT_CONFIG_* in the bot's environment cannot redirect
// what it reads or inject configuration.
type cmd struct {
	gitDir string
	args   []string
	env    []string
	stdin  []byte
	secret []string // redacted from errors
}

func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return append(env, "GIT_TERMINAL_PROMPT=0")
}

// command runs git in c.gitDir, a bare repository or a work tree. The
// ceiling stops git from walking up into a parent repository when gitDir is
// not one itself, which would silently read the wrong history.
func (c cmd) command(ctx context.Context) *exec.Cmd {
	args := c.args
	env := baseEnv()
	if c.gitDir != "" {
		args = append([]string{"-C", c.gitDir}, args...)
		if abs, err := filepath.Abs(c.gitDir); err == nil {
			env = append(env, "GIT_CEILING_DIRECTORIES="+filepath.Dir(abs))
		}
	}
	x := exec.CommandContext(ctx, "git", args...)
	x.Env = append(env, c.env...)
	return x
}

func (c cmd) run(ctx context.Context) ([]byte, error) {
	x := c.command(ctx)
	var stdout, stderr bytes.Buffer
	x.Stdout, x.Stderr = &stdout, &stderr
	if c.stdin != nil {
		x.Stdin = bytes.NewReader(c.stdin)
	}
	if err := x.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return stdout.Bytes(), c.wrap(err, stderr.String())
	}
	return stdout.Bytes(), nil
}

func (c cmd) wrap(err error, stderr string) error {
	args := append([]string(nil), c.args...)
	for _, s := range c.secret {
		if s == "" {
			continue
		}
		stderr = strings.ReplaceAll(stderr, s, "[REDACTED]")
		for i := range args {
			args[i] = strings.ReplaceAll(args[i], s, "[REDACTED]")
		}
	}
	return &GitError{Args: args, Stderr: stderr, Err: err}
}

// Git runs git with args in gitDir (a bare repository or a work tree) the
// way this package does: argv only, inherited GIT_* variables dropped, env
// added after them, stdin fed when not nil. It returns git's stdout; a
// failure is a *GitError carrying git's stderr. Callers validate refs and
// paths that reach args.
func Git(ctx context.Context, gitDir string, stdin []byte, env []string, args ...string) ([]byte, error) {
	return cmd{gitDir: gitDir, args: args, env: env, stdin: stdin}.run(ctx)
}

// ValidateRevision accepts what ValidateRef accepts followed by ancestry
// steps, "~N" and "^N" (main~1, HEAD^, v1^2~3): each still names exactly
// one commit. Other revision syntax stays refused.
func ValidateRevision(rev string) error {
	i := len(rev)
	for i > 0 {
		j := i
		for j > 0 && rev[j-1] >= '0' && rev[j-1] <= '9' {
			j--
		}
		if j > 0 && (rev[j-1] == '~' || rev[j-1] == '^') {
			i = j - 1
			continue
		}
		break
	}
	if i == 0 && len(rev) > 0 {
		return &RefError{Ref: rev, Msg: "no ref before '~' or '^'"}
	}
	if err := ValidateRef(rev[:i]); err != nil {
		if re, ok := err.(*RefError); ok {
			re.Ref = rev
		}
		return err
	}
	return nil
}

// ResolveCommit returns the full SHA of the commit rev names (a ref,
// optionally with ~N and ^N steps).
func ResolveCommit(ctx context.Context, gitDir, ref string) (string, error) {
	if err := ValidateRevision(ref); err != nil {
		return "", err
	}
	out, err := cmd{gitDir: gitDir, args: []string{"rev-parse", "--verify", "--quiet", "--end-of-options", ref + "^{commit}"}}.run(ctx)
	if err != nil {
		var ge *GitError
		if errors.As(err, &ge) && strings.TrimSpace(ge.Stderr) == "" {
			return "", fmt.Errorf("%s: no commit named %q", gitDir, ref)
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// DefaultBranch is the branch HEAD points to ("main" for a fresh clone of a
// repository whose default branch is main).
func DefaultBranch(ctx context.Context, gitDir string) (string, error) {
	out, err := cmd{gitDir: gitDir, args: []string{"symbolic-ref", "--quiet", "HEAD"}}.run(ctx)
	if err != nil {
		return "", fmt.Errorf("%s: HEAD is not a branch: %w", gitDir, err)
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "refs/heads/"), nil
}

package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cvmfs drives cvmfs_server with the commands CVMFS documents:
//
//	cvmfs_server transaction <repo>[/<path>]
//	cvmfs_server publish -a <tag> -m <message> <repo>
//	cvmfs_server abort -f <repo>
//	cvmfs_server tag -l -x <repo>
//	cvmfs_server rollback -t <tag> -f <repo>
//	cvmfs_server diff -m -s <from> -d <to> <repo>
//
// Changes are applied by unpacking into the transaction's writable tree,
// /cvmfs/<repo>/<path> (cvmfs_server transaction mounts it read-write), so
// an artifact's deletions apply as plain removals; ingest -t would need a
// separate delete list. Everything runs through exec with an argv, never a
// local shell. With PublisherHost the commands run over ssh on that host:
// ssh hands the remote user's shell one command line, so every argument is
// quoted for it (a "#" in a publish message would otherwise start a
// comment), and Tx.Dir() names a path on that host, which the transaction
// (a RemoteTx) fills by streaming tarballs to it (cvmfs_remote.go).
type Cvmfs struct {
	repo  string
	argv  []string
	mount string
	// ssh is the ssh argv up to the host when the server is remote; argv
	// is then the remote command's words, quoted into one line.
	ssh []string
}

// exitTransactionOpen is cvmfs_server's exit status (EEXIST) when the
// repository is already in a transaction.
const exitTransactionOpen = 17

// OpenCvmfs returns a publisher for cfg.Repository through cvmfs_server.
func OpenCvmfs(cfg TargetConfig) (*Cvmfs, error) {
	if err := validRepoName(cfg.Repository); err != nil {
		return nil, err
	}
	bin := cfg.CvmfsServer
	if bin == "" {
		bin = "cvmfs_server"
	}
	mount := cfg.CvmfsMount
	if mount == "" {
		mount = "/cvmfs"
	}
	c := &Cvmfs{repo: cfg.Repository, argv: []string{bin}, mount: mount}
	if cfg.PublisherHost != "" {
		if strings.HasPrefix(cfg.PublisherHost, "-") || strings.ContainsAny(cfg.PublisherHost, " \t\n") {
			return nil, fmt.Errorf("target %s: publisher_host %q is not a host name", cfg.Repository, cfg.PublisherHost)
		}
		c.ssh = sshArgv(cfg)
	} else if cfg.SSHConfig != "" {
		return nil, fmt.Errorf("target %s: ssh_config is set but publisher_host is not", cfg.Repository)
	}
	return c, nil
}

// CvmfsError is a failed cvmfs_server command with its exit status and
// output.
type CvmfsError struct {
	Args   []string
	Exit   int
	Output string
}

func (e *CvmfsError) Error() string {
	out := strings.TrimSpace(e.Output)
	if out == "" {
		out = "no output"
	}
	return fmt.Sprintf("cvmfs_server %s: exit status %d: %s", strings.Join(e.Args, " "), e.Exit, out)
}

func (e *CvmfsError) Is(target error) bool {
	return target == ErrTransactionOpen && e.Exit == exitTransactionOpen
}

func (c *Cvmfs) run(ctx context.Context, args ...string) (string, error) {
	return c.exec(ctx, nil, args, append(append([]string{}, c.argv...), args...))
}

// exec runs words (locally, or on the publisher host as one quoted line)
// with stdin; args are what an error names.
func (c *Cvmfs) exec(ctx context.Context, stdin io.Reader, args, words []string) (string, error) {
	argv := words
	if c.ssh != nil {
		argv = append(append([]string{}, c.ssh...), shellLine(words))
	}
	return c.execArgv(ctx, stdin, args, argv)
}

func (c *Cvmfs) execArgv(ctx context.Context, stdin io.Reader, args, argv []string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.String(), nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return stdout.String(), &CvmfsError{Args: args, Exit: ee.ExitCode(), Output: stderr.String() + stdout.String()}
	}
	return "", fmt.Errorf("run %s: %w", argv[0], err)
}

// Transaction implements Publisher.
func (c *Cvmfs) Transaction(ctx context.Context, path string) (Tx, error) {
	p, err := CleanPath(path)
	if err != nil {
		return nil, err
	}
	target := c.repo
	if p != "" {
		target += "/" + p
	}
	if _, err := c.run(ctx, "transaction", target); err != nil {
		var ce *CvmfsError
		if errors.As(err, &ce) && ce.Exit == exitTransactionOpen {
			return nil, &TransactionOpenError{Repository: c.repo, Holder: strings.TrimSpace(ce.Output)}
		}
		return nil, err
	}
	tx := &cvmfsTx{c: c, dir: filepath.Join(c.mount, c.repo, filepath.FromSlash(p))}
	if c.ssh != nil {
		return &remoteTx{tx}, nil
	}
	return tx, nil
}

type cvmfsTx struct {
	c    *Cvmfs
	dir  string
	mu   sync.Mutex
	done bool
}

func (t *cvmfsTx) Dir() string { return t.dir }

// Publish implements Tx.
func (t *cvmfsTx) Publish(ctx context.Context, tag, message string) (Revision, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return 0, ErrNoTransaction
	}
	if tag == "" {
		tag = genericTag(time.Now())
	}
	if err := ValidateTag(tag); err != nil {
		return 0, err
	}
	// cvmfs_server tag -l -x prints a tag a line: a newline in its
	// description would break the listing every later call reads.
	message = strings.Join(strings.Fields(message), " ")
	if _, err := t.c.run(ctx, "publish", "-a", tag, "-m", message, t.c.repo); err != nil {
		return 0, err
	}
	t.done = true
	return t.c.tagRevision(ctx, tag)
}

// Abort implements Tx.
func (t *cvmfsTx) Abort(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return ErrNoTransaction
	}
	if _, err := t.c.run(ctx, "abort", "-f", t.c.repo); err != nil {
		return err
	}
	t.done = true
	return nil
}

func (c *Cvmfs) tagRevision(ctx context.Context, tag string) (Revision, error) {
	all, err := c.allTags(ctx)
	if err != nil {
		return 0, err
	}
	for _, t := range all {
		if t.Name == tag {
			return t.Revision, nil
		}
	}
	return 0, fmt.Errorf("repository %s: tag %q: %w", c.repo, tag, ErrUnknownTag)
}

// unknownTag turns a failed command about tags into ErrUnknownTag when one
// of them is not in the tag list, so callers can tell "no such tag" from a
// broken server the same way for every backend; cvmfs_server only says so
// in prose. Otherwise err is returned as it is.
func (c *Cvmfs) unknownTag(ctx context.Context, err error, tags ...string) error {
	for _, t := range tags {
		if _, terr := c.tagRevision(ctx, t); errors.Is(terr, ErrUnknownTag) {
			return fmt.Errorf("%w (%v)", terr, err)
		}
	}
	return err
}

func (c *Cvmfs) allTags(ctx context.Context) ([]Tag, error) {
	out, err := c.run(ctx, "tag", "-l", "-x", c.repo)
	if err != nil {
		return nil, err
	}
	return ParseTagList(out)
}

// ParseTagList parses `cvmfs_server tag -l -x` output: one tag a line,
// "<name> <root hash> <size> <revision> <timestamp> <channel> <description>",
// the description being the rest of the line (it may contain spaces).
func ParseTagList(out string) ([]Tag, error) {
	var tags []Tag
	for n, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.SplitN(line, " ", 7)
		if len(f) < 6 {
			return nil, fmt.Errorf("tag list line %d: %d fields, want name hash size revision timestamp channel [description]: %q", n+1, len(f), line)
		}
		if f[0] == "" || f[1] == "" {
			return nil, fmt.Errorf("tag list line %d: empty name or hash: %q", n+1, line)
		}
		if _, err := strconv.ParseUint(f[2], 10, 64); err != nil {
			return nil, fmt.Errorf("tag list line %d: size %q: not a number", n+1, f[2])
		}
		rev, err := strconv.ParseUint(f[3], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("tag list line %d: revision %q: not a number", n+1, f[3])
		}
		ts, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("tag list line %d: timestamp %q: not a number", n+1, f[4])
		}
		t := Tag{Name: f[0], Hash: f[1], Revision: Revision(rev), Timestamp: time.Unix(ts, 0).UTC()}
		if len(f) == 7 {
			t.Description = f[6]
		}
		tags = append(tags, t)
	}
	return tags, nil
}

// Tags implements Publisher; the reserved trunk tags are left out.
func (c *Cvmfs) Tags(ctx context.Context) ([]Tag, error) {
	all, err := c.allTags(ctx)
	if err != nil {
		return nil, err
	}
	var out []Tag
	for _, t := range all {
		if t.Name != "trunk" && t.Name != "trunk-previous" {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Revision > out[j].Revision })
	return out, nil
}

// Rollback implements Publisher.
func (c *Cvmfs) Rollback(ctx context.Context, tag string) (Revision, error) {
	if err := ValidateTag(tag); err != nil {
		return 0, err
	}
	if _, err := c.run(ctx, "rollback", "-t", tag, "-f", c.repo); err != nil {
		var ce *CvmfsError
		if errors.As(err, &ce) && ce.Exit == exitTransactionOpen {
			return 0, &TransactionOpenError{Repository: c.repo, Holder: strings.TrimSpace(ce.Output)}
		}
		return 0, c.unknownTag(ctx, err, tag)
	}
	return c.tagRevision(ctx, "trunk")
}

// Current implements Publisher: the mounted repository and trunk's
// revision.
func (c *Cvmfs) Current(ctx context.Context) (string, Revision, error) {
	all, err := c.allTags(ctx)
	if err != nil {
		return "", 0, err
	}
	var rev Revision
	for _, t := range all {
		if t.Name == "trunk" {
			rev = t.Revision
		}
	}
	return filepath.Join(c.mount, c.repo), rev, nil
}

// Diff implements Publisher with `cvmfs_server diff -m -i`, whose
// machine-readable lines are "A <type> <path> +<size>",
// "R <type> <path> -<size>", "M[<flags>] <type> <path>" and statistics
// lines "S <type> <count>"; types are F, S, D and N (nested catalog).
func (c *Cvmfs) Diff(ctx context.Context, fromTag, toTag string) ([]PathChange, error) {
	for _, t := range []string{fromTag, toTag} {
		if err := ValidateTag(t); err != nil {
			return nil, err
		}
	}
	out, err := c.run(ctx, "diff", "-m", "-i", "-s", fromTag, "-d", toTag, c.repo)
	if err != nil {
		return nil, c.unknownTag(ctx, err, fromTag, toTag)
	}
	return ParseDiff(out)
}

// ParseDiff parses `cvmfs_server diff -m` output.
func ParseDiff(out string) ([]PathChange, error) {
	var changes []PathChange
	for n, line := range strings.Split(out, "\n") {
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "S ") {
			continue
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) < 3 || !strings.HasPrefix(f[2], "/") {
			return nil, fmt.Errorf("diff line %d: want <A|R|M> <type> </path>: %q", n+1, line)
		}
		typ, p := f[1], f[2]
		pc := PathChange{Dir: strings.HasSuffix(typ, "D") || strings.HasSuffix(typ, "N")}
		switch {
		case f[0] == "A", f[0] == "R":
			i := strings.LastIndex(p, " ")
			if i < 0 || len(p) < i+2 || (p[i+1] != '+' && p[i+1] != '-') {
				return nil, fmt.Errorf("diff line %d: want a size after the path: %q", n+1, line)
			}
			p = p[:i]
			pc.Kind = PathAdded
			if f[0] == "R" {
				pc.Kind = PathRemoved
				pc.Dir = strings.HasPrefix(typ, "D") || strings.HasPrefix(typ, "N")
			}
		case strings.HasPrefix(f[0], "M"):
			pc.Kind = PathModified
		default:
			return nil, fmt.Errorf("diff line %d: unknown line descriptor %q", n+1, f[0])
		}
		pc.Path = strings.TrimPrefix(p, "/")
		changes = append(changes, pc)
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	return changes, nil
}

// Recover implements Publisher. cvmfs_server has no documented "is a
// transaction open" query, so Recover opens one: exit 17 means a crash
// left one open, which is then aborted; success means there was none and
// the probe is aborted again.
func (c *Cvmfs) Recover(ctx context.Context) (RecoveryReport, error) {
	var rep RecoveryReport
	_, err := c.run(ctx, "transaction", c.repo)
	var ce *CvmfsError
	switch {
	case err == nil:
	case errors.As(err, &ce) && ce.Exit == exitTransactionOpen:
		rep.Found = true
		rep.Holder = strings.TrimSpace(ce.Output)
	default:
		return rep, err
	}
	if _, err := c.run(ctx, "abort", "-f", c.repo); err != nil {
		return rep, err
	}
	_, rev, err := c.Current(ctx)
	rep.Revision = rev
	return rep, err
}

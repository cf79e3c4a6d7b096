// Package publish puts a built compatibility layer into a CVMFS-like
// repository: one open transaction at a time, an atomic publish that makes
// a new revision, a tag per publish, rollback to a tag, and recovery of a
// transaction left open by a crash. Backends sit behind one interface:
// "local" (a directory with CVMFS's semantics, the embedded default) and
// "cvmfs" (drives cvmfs_server).
package publish

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// Revision is a repository revision number; every publish and every
// rollback makes a new, higher one.
type Revision uint64

// Tag names a published revision.
type Tag struct {
	Name        string
	Revision    Revision
	Timestamp   time.Time
	Description string
	// Hash is the root hash for cvmfs; empty for local.
	Hash string
}

// ChangeKind says how a path differs between two revisions.
type ChangeKind string

const (
	PathAdded    ChangeKind = "added"
	PathRemoved  ChangeKind = "removed"
	PathModified ChangeKind = "modified"
)

// PathChange is one path that differs between two revisions, relative to
// the repository root, slash-separated.
type PathChange struct {
	Path string
	Kind ChangeKind
	Dir  bool
}

// RecoveryReport says what Recover found and did.
type RecoveryReport struct {
	// Found is true when a transaction was open.
	Found bool
	// Completed is true when the open transaction had already reached its
	// commit point and Recover finished it instead of aborting it.
	Completed bool
	// Holder describes who held the transaction (pid, start, base).
	Holder string
	// Path is the subtree the transaction was scoped to.
	Path string
	// Revision is the repository's revision after recovery.
	Revision Revision
}

func (r RecoveryReport) String() string {
	switch {
	case !r.Found:
		return fmt.Sprintf("no open transaction; at revision %d", r.Revision)
	case r.Completed:
		return fmt.Sprintf("transaction on %q (%s) had been published; finished it; at revision %d", r.Path, r.Holder, r.Revision)
	default:
		return fmt.Sprintf("aborted the transaction on %q left open by %s; at revision %d", r.Path, r.Holder, r.Revision)
	}
}

// Publisher is one target repository.
type Publisher interface {
	// Transaction opens the repository's only transaction, scoped to path
	// (relative, e.g. "2025.06/compat/linux/x86_64"; "" for the root). A
	// second one fails with an error matching ErrTransactionOpen.
	Transaction(ctx context.Context, path string) (Tx, error)
	// Tags lists the tags, newest first.
	Tags(ctx context.Context) ([]Tag, error)
	// Rollback republishes the tree of tag as a new revision and removes
	// every newer tag; tag itself then names the new revision.
	Rollback(ctx context.Context, tag string) (Revision, error)
	// Current is a read-only path of the published tree and its revision.
	// For local it is the revision's own directory, so it does not change
	// under a reader when a newer revision is published.
	Current(ctx context.Context) (dir string, rev Revision, err error)
	// Diff lists the paths that differ between two tags' trees.
	Diff(ctx context.Context, fromTag, toTag string) ([]PathChange, error)
	// Recover finishes or aborts a transaction left open by a crash. Call
	// it on start, before any Transaction.
	Recover(ctx context.Context) (RecoveryReport, error)
}

// Tx is an open transaction.
type Tx interface {
	// Dir is where to write the changes: the transaction's subtree, which
	// starts as a view of the current tree.
	Dir() string
	// Publish makes the changes a new revision tagged tag ("" makes a
	// generic-<time> tag, as cvmfs_server does) and ends the transaction.
	Publish(ctx context.Context, tag, message string) (Revision, error)
	// Abort throws the changes away and ends the transaction.
	Abort(ctx context.Context) error
}

// Payload is what gets published: an artifact that knows how to put itself
// onto a tree. Kept as an interface so this package does not depend on the
// artifact store's internals.
type Payload interface {
	ApplyTo(ctx context.Context, dir string) error
	Digest() string
}

// Apply writes p into tx's tree.
func Apply(ctx context.Context, tx Tx, p Payload) error {
	if err := p.ApplyTo(ctx, tx.Dir()); err != nil {
		return fmt.Errorf("apply %s: %w", p.Digest(), err)
	}
	return nil
}

// ErrTransactionOpen means the repository already has an open transaction
// (cvmfs_server exits 17 for this).
var ErrTransactionOpen = errors.New("a transaction is already open")

// ErrNoTransaction means the transaction was already published or aborted.
var ErrNoTransaction = errors.New("no open transaction")

// ErrUnknownTag means a tag name is not in the tag list.
var ErrUnknownTag = errors.New("unknown tag")

// TransactionOpenError names who holds the open transaction.
type TransactionOpenError struct {
	Repository string
	Holder     string
}

func (e *TransactionOpenError) Error() string {
	if e.Holder == "" {
		return fmt.Sprintf("repository %s: %v", e.Repository, ErrTransactionOpen)
	}
	return fmt.Sprintf("repository %s: %v (held by %s)", e.Repository, ErrTransactionOpen, e.Holder)
}

func (e *TransactionOpenError) Is(target error) bool { return target == ErrTransactionOpen }

// ValidateTag checks a tag name as cvmfs_server does: only
// [A-Za-z0-9-_./:], and never the reserved trunk or trunk-previous.
func ValidateTag(tag string) error {
	if tag == "" {
		return fmt.Errorf("tag name is empty")
	}
	if tag == "trunk" || tag == "trunk-previous" {
		return fmt.Errorf("tag name %q is reserved by CVMFS", tag)
	}
	for i, r := range tag {
		if !tagChar(r) {
			return fmt.Errorf("tag name %q: character %q at offset %d is not allowed (only A-Z a-z 0-9 - _ . / :)", tag, r, i)
		}
	}
	return nil
}

func tagChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '-' || r == '_' || r == '.' || r == '/' || r == ':'
}

// CleanPath validates a transaction path: relative, slash-separated, no
// "..", no empty or "." elements. "" and "/" mean the whole repository.
func CleanPath(p string) (string, error) {
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return "", nil
	}
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("transaction path %q: must be relative to the repository root", p)
	}
	for _, el := range strings.Split(p, "/") {
		switch el {
		case "":
			return "", fmt.Errorf("transaction path %q: empty element", p)
		case ".", "..":
			return "", fmt.Errorf("transaction path %q: %q is not allowed", p, el)
		}
		for _, r := range el {
			if r < 0x20 || r == 0x7f {
				return "", fmt.Errorf("transaction path %q: control character %q", p, r)
			}
		}
	}
	return path.Clean(p), nil
}

// genericTag is the tag cvmfs_server gives a publish without -a.
func genericTag(t time.Time) string {
	return "generic-" + t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// TargetConfig configures one deploy target (test or prod).
type TargetConfig struct {
	// Backend is "local" (default) or "cvmfs".
	Backend string `yaml:"backend"`
	// Repository is the repository name, e.g. "software.eessi.io".
	Repository string `yaml:"repository"`
	// BaseDir holds local repositories: BaseDir/<Repository>/.
	BaseDir string `yaml:"base_dir"`
	// CvmfsServer is the cvmfs_server binary (default "cvmfs_server").
	CvmfsServer string `yaml:"cvmfs_server"`
	// CvmfsMount is where cvmfs mounts repositories (default "/cvmfs"); a
	// transaction's tree is <CvmfsMount>/<Repository>/<path>.
	CvmfsMount string `yaml:"cvmfs_mount"`
	// PublisherHost runs cvmfs_server over ssh on that host ([user@]host;
	// argv: ssh <host> <one quoted command line>); the transaction's tree
	// is then on that host and changes are carried there (RemoteTx).
	PublisherHost string `yaml:"publisher_host"`
	// SSHConfig is an ssh_config file for the connection to
	// PublisherHost (ssh -F): Port, User, IdentityFile,
	// UserKnownHostsFile. Empty: ssh's defaults (~/.ssh/config).
	SSHConfig string `yaml:"ssh_config"`
}

// Open returns the publisher cfg describes.
func Open(cfg TargetConfig) (Publisher, error) {
	if err := validRepoName(cfg.Repository); err != nil {
		return nil, err
	}
	switch cfg.Backend {
	case "", "local":
		if cfg.BaseDir == "" {
			return nil, fmt.Errorf("target %s: backend local needs base_dir", cfg.Repository)
		}
		return OpenLocal(cfg.BaseDir, cfg.Repository)
	case "cvmfs":
		return OpenCvmfs(cfg)
	default:
		return nil, fmt.Errorf("target %s: backend %q is unknown (want \"local\" or \"cvmfs\")", cfg.Repository, cfg.Backend)
	}
}

func validRepoName(name string) error {
	if name == "" {
		return fmt.Errorf("target: repository name is empty")
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("repository name %q: character %q at offset %d is not allowed (only A-Z a-z 0-9 - _ .)", name, r, i)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("repository name %q is not allowed", name)
	}
	return nil
}

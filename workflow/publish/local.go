package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/compatbot/compatbot/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// Local is the embedded backend: a repository directory with CVMFS's
// semantics.
//
//	<base_dir>/<repository>/
//	  revisions/<n>/      immutable published trees; revision 0 is empty
//	  current -> revisions/<n>
//	  repository.json     head revision and tag list: the commit point
//	  .transaction        lock: pid, start, base revision, path (survives a crash)
//	  .txn/               the open transaction's overlay (upper, work, merged)
//
// A transaction is an overlayfs mount whose lower layer is the published
// subtree, so whatever writes into Tx.Dir() (even by truncating a file in
// place) only ever touches copies in the upper layer. Publish builds
// revisions/<n+1> by hard-linking every file of revision n and moving the
// upper layer's files over it, fsyncs, then commits by atomically
// replacing repository.json and finally swaps the current symlink with
// rename(2). A crash before the commit leaves revision n published and is
// aborted by Recover; a crash after it is finished by Recover.
type Local struct {
	repo string
	root string
	mu   sync.Mutex // serialises repository.json writers within one process
}

type repoState struct {
	Revision Revision    `json:"revision"`
	Tags     []tagRecord `json:"tags"` // in creation order
}

type tagRecord struct {
	Name        string    `json:"name"`
	Revision    Revision  `json:"revision"`
	Timestamp   time.Time `json:"timestamp"`
	Description string    `json:"description"`
}

type lockInfo struct {
	Op    string    `json:"op"` // "transaction" or "rollback"
	PID   int       `json:"pid"`
	Host  string    `json:"host"`
	Start time.Time `json:"start"`
	Base  Revision  `json:"base_revision"`
	Next  Revision  `json:"next_revision"`
	Path  string    `json:"path"`
}

func (l lockInfo) holder() string {
	s := fmt.Sprintf("%s by pid %d on %s since %s, base revision %d", l.Op, l.PID, l.Host, l.Start.UTC().Format(time.RFC3339), l.Base)
	if h, _ := os.Hostname(); h == l.Host && !l.alive() {
		s += " (that process is gone: run recovery)"
	}
	return s
}

// alive reports whether the lock's holder still runs: a process on this
// host with that pid that started no later than the lock was taken (a
// younger process merely reuses the pid, e.g. after a container restart).
// The current process counts as gone: a restarted compatbot may get its
// predecessor's pid, and it recovers only on start.
func (l lockInfo) alive() bool {
	if h, _ := os.Hostname(); h != l.Host || l.PID <= 0 || l.PID == os.Getpid() {
		return false
	}
	if err := syscall.Kill(l.PID, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	started, ok := processStart(l.PID)
	return !ok || !started.After(l.Start.Add(time.Second))
}

// processStart reads a process's start time from /proc (field 22 of
// /proc/<pid>/stat, in clock ticks after boot; btime in /proc/stat).
func processStart(pid int) (time.Time, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}, false
	}
	// The command name may contain spaces; fields restart after its ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return time.Time{}, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	ps, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(ps), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			btime, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			const clkTck = 100 // USER_HZ on every Linux architecture Go supports
			return time.Unix(btime, 0).Add(time.Duration(ticks) * time.Second / clkTck), true
		}
	}
	return time.Time{}, false
}

// OpenLocal opens (creating if needed) the repository baseDir/repo.
func OpenLocal(baseDir, repo string) (*Local, error) {
	if err := validRepoName(repo); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(baseDir)
	if err != nil {
		return nil, err
	}
	// overlayfs mount options are comma- and colon-separated.
	if strings.ContainsAny(abs, ",:\\") {
		return nil, fmt.Errorf("local repository base_dir %q: must not contain ',' ':' or '\\' (overlayfs mount options)", abs)
	}
	l := &Local{repo: repo, root: filepath.Join(abs, repo)}
	if err := l.init(); err != nil {
		return nil, fmt.Errorf("local repository %s: %w", l.root, err)
	}
	return l, nil
}

// Root is the repository directory.
func (l *Local) Root() string { return l.root }

func (l *Local) init() error {
	if err := os.MkdirAll(filepath.Join(l.root, "revisions"), 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(l.statePath()); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	zero := l.revDir(0)
	if err := os.Mkdir(zero, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := atomicfile.SyncDir(filepath.Join(l.root, "revisions")); err != nil {
		return err
	}
	if err := l.switchCurrent(0); err != nil {
		return err
	}
	return l.writeState(repoState{Revision: 0, Tags: []tagRecord{}})
}

func (l *Local) statePath() string { return filepath.Join(l.root, "repository.json") }
func (l *Local) lockPath() string  { return filepath.Join(l.root, ".transaction") }
func (l *Local) txnDir() string    { return filepath.Join(l.root, ".txn") }
func (l *Local) revDir(r Revision) string {
	return filepath.Join(l.root, "revisions", strconv.FormatUint(uint64(r), 10))
}
func (l *Local) stagingDir(r Revision) string {
	return l.revDir(r) + ".staging"
}

func (l *Local) readState() (repoState, error) {
	var st repoState
	data, err := os.ReadFile(l.statePath())
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("%s: %w", l.statePath(), err)
	}
	return st, nil
}

func (l *Local) writeState(st repoState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(l.statePath(), append(data, '\n'), 0o644)
}

func (l *Local) switchCurrent(r Revision) error {
	tmp := filepath.Join(l.root, ".current.tmp")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Join("revisions", strconv.FormatUint(uint64(r), 10)), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(l.root, "current")); err != nil {
		return err
	}
	return atomicfile.SyncDir(l.root)
}

// takeLock creates the lock file: its content is written and fsynced in a
// temporary file first and then link(2)ed to the lock name, which fails if
// the name exists, so exactly one caller in any process wins and nobody
// ever reads a half-written lock. The file stays behind after a crash.
func (l *Local) takeLock(info lockInfo) error {
	data, _ := json.Marshal(info)
	f, err := os.CreateTemp(l.root, ".transaction.tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, l.lockPath()); errors.Is(err, fs.ErrExist) {
		holder := "unknown holder"
		if old, rerr := l.readLock(); rerr == nil {
			holder = old.holder()
		}
		return &TransactionOpenError{Repository: l.repo, Holder: holder}
	} else if err != nil {
		return err
	}
	return atomicfile.SyncDir(l.root)
}

func (l *Local) readLock() (lockInfo, error) {
	var info lockInfo
	data, err := os.ReadFile(l.lockPath())
	if err != nil {
		return info, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		// Crashed between create and write: the lock exists but says nothing.
		return lockInfo{Op: "transaction"}, nil
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return info, fmt.Errorf("%s: %w", l.lockPath(), err)
	}
	return info, nil
}

func (l *Local) releaseLock() error {
	if err := os.Remove(l.lockPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return atomicfile.SyncDir(l.root)
}

// lockRepo takes the lock and records in it the revision the operation
// builds on, read after the lock is held so a publish that committed just
// before cannot be missed.
func (l *Local) lockRepo(op, path string) (lockInfo, repoState, error) {
	st, err := l.readState()
	if err != nil {
		return lockInfo{}, st, err
	}
	info := newLock(op, st, path)
	if err := l.takeLock(info); err != nil {
		return info, st, err
	}
	st2, err := l.readState()
	if err != nil {
		l.releaseLock()
		return info, st, err
	}
	if st2.Revision != st.Revision {
		info = newLock(op, st2, path)
		data, _ := json.Marshal(info)
		if err := atomicfile.WriteFile(l.lockPath(), data, 0o644); err != nil {
			l.releaseLock()
			return info, st2, err
		}
	}
	return info, st2, nil
}

func newLock(op string, st repoState, path string) lockInfo {
	host, _ := os.Hostname()
	return lockInfo{Op: op, PID: os.Getpid(), Host: host, Start: time.Now().UTC(), Base: st.Revision, Next: st.Revision + 1, Path: path}
}

// Transaction implements Publisher.
func (l *Local) Transaction(ctx context.Context, path string) (Tx, error) {
	p, err := CleanPath(path)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(p, ",:\\") {
		return nil, fmt.Errorf("transaction path %q: ',' ':' and '\\' are not allowed (overlayfs mount options)", p)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	info, st, err := l.lockRepo("transaction", p)
	if err != nil {
		return nil, err
	}
	failpoint("after-lock")
	tx, err := l.startOverlay(st, info)
	if err != nil {
		l.cleanTxn()
		l.releaseLock()
		return nil, fmt.Errorf("repository %s: open transaction on %q: %w", l.repo, p, err)
	}
	failpoint("after-mount")
	return tx, nil
}

func (l *Local) startOverlay(st repoState, info lockInfo) (*localTx, error) {
	l.cleanTxn()
	t := l.txnDir()
	upper, work, merged, empty := filepath.Join(t, "upper"), filepath.Join(t, "work"), filepath.Join(t, "merged"), filepath.Join(t, "empty")
	for _, d := range []string{upper, work, merged, empty} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	lower := filepath.Join(l.revDir(st.Revision), filepath.FromSlash(info.Path))
	if fi, err := os.Lstat(lower); errors.Is(err, fs.ErrNotExist) {
		lower = empty
	} else if err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%q is not a directory in revision %d", info.Path, st.Revision)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off,index=off,metacopy=off", lower, upper, work)
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return nil, fmt.Errorf("mount overlay on %s: %w", merged, err)
	}
	return &localTx{l: l, info: info, merged: merged, upper: upper}, nil
}

// cleanTxn unmounts and removes the transaction scratch directory.
func (l *Local) cleanTxn() error {
	merged := filepath.Join(l.txnDir(), "merged")
	if err := unix.Unmount(merged, 0); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("unmount %s: %w", merged, err)
		}
	}
	return os.RemoveAll(l.txnDir())
}

type localTx struct {
	l      *Local
	info   lockInfo
	merged string
	upper  string
	mu     sync.Mutex
	done   bool
}

func (t *localTx) Dir() string { return t.merged }

// Publish implements Tx. A bad or duplicate tag is refused before anything
// changes and leaves the transaction open, as cvmfs_server does.
func (t *localTx) Publish(ctx context.Context, tag, message string) (Revision, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.l
	if t.done {
		return 0, ErrNoTransaction
	}
	now := time.Now().UTC()
	if tag == "" {
		tag = genericTag(now)
	}
	if err := ValidateTag(tag); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st, err := l.readState()
	if err != nil {
		return 0, err
	}
	for _, tr := range st.Tags {
		if tr.Name == tag {
			return 0, fmt.Errorf("tag %q already exists (revision %d)", tag, tr.Revision)
		}
	}
	if st.Revision != t.info.Base {
		return 0, fmt.Errorf("repository %s moved from revision %d to %d under the open transaction", l.repo, t.info.Base, st.Revision)
	}
	if err := unix.Unmount(t.merged, 0); err != nil {
		return 0, fmt.Errorf("publish: unmount %s: %w (is something still using the transaction's tree?)", t.merged, err)
	}
	failpoint("after-unmount")
	next := t.info.Next
	if err := l.buildRevision(t.info.Base, next, func(staging string) error {
		dst := filepath.Join(staging, filepath.FromSlash(t.info.Path))
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		return applyUpper(t.upper, dst)
	}); err != nil {
		// The overlay is gone; the caller must Abort (or Recover will).
		return 0, fmt.Errorf("publish revision %d: %w", next, err)
	}
	st.Revision = next
	st.Tags = append(st.Tags, tagRecord{Name: tag, Revision: next, Timestamp: now, Description: message})
	if err := l.writeState(st); err != nil {
		return 0, fmt.Errorf("publish revision %d: commit: %w", next, err)
	}
	failpoint("after-commit")
	t.done = true
	if err := l.finish(next); err != nil {
		return next, err
	}
	return next, nil
}

// buildRevision makes revisions/<next> from a hard-link clone of
// revisions/<base> changed by edit, durable before it is renamed into place.
func (l *Local) buildRevision(base, next Revision, edit func(staging string) error) error {
	staging := l.stagingDir(next)
	if err := os.RemoveAll(staging); err != nil {
		return err
	}
	if err := os.RemoveAll(l.revDir(next)); err != nil {
		return err
	}
	if err := cloneTree(l.revDir(base), staging); err != nil {
		return err
	}
	failpoint("after-clone")
	if err := edit(staging); err != nil {
		return err
	}
	if err := syncFS(staging); err != nil {
		return err
	}
	if err := os.Rename(staging, l.revDir(next)); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(filepath.Join(l.root, "revisions")); err != nil {
		return err
	}
	failpoint("after-revision")
	return nil
}

// finish runs the steps after the commit point; Recover repeats them.
func (l *Local) finish(rev Revision) error {
	if err := l.switchCurrent(rev); err != nil {
		return err
	}
	failpoint("after-switch")
	if err := l.cleanTxn(); err != nil {
		return err
	}
	return l.releaseLock()
}

// Abort implements Tx.
func (t *localTx) Abort(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return ErrNoTransaction
	}
	if err := t.l.abort(t.info); err != nil {
		return err
	}
	t.done = true
	return nil
}

func (l *Local) abort(info lockInfo) error {
	if err := l.cleanTxn(); err != nil {
		return err
	}
	if info.Next > 0 {
		if err := os.RemoveAll(l.stagingDir(info.Next)); err != nil {
			return err
		}
		st, err := l.readState()
		if err != nil {
			return err
		}
		if st.Revision < info.Next {
			// Built but never committed: not a published revision.
			if err := os.RemoveAll(l.revDir(info.Next)); err != nil {
				return err
			}
		}
	}
	return l.releaseLock()
}

// Tags implements Publisher.
func (l *Local) Tags(ctx context.Context) ([]Tag, error) {
	st, err := l.readState()
	if err != nil {
		return nil, err
	}
	out := make([]Tag, 0, len(st.Tags))
	for i := len(st.Tags) - 1; i >= 0; i-- {
		tr := st.Tags[i]
		out = append(out, Tag{Name: tr.Name, Revision: tr.Revision, Timestamp: tr.Timestamp, Description: tr.Description})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Revision > out[j].Revision })
	return out, nil
}

func findTag(tags []tagRecord, name string) (int, bool) {
	for i, tr := range tags {
		if tr.Name == name {
			return i, true
		}
	}
	return -1, false
}

// Rollback implements Publisher: like cvmfs_server rollback, the tag's tree
// becomes a new revision, every tag newer than it is removed and the tag
// itself moves to the new revision. It needs the transaction lock.
func (l *Local) Rollback(ctx context.Context, tag string) (Revision, error) {
	if err := ValidateTag(tag); err != nil {
		return 0, err
	}
	info, st, err := l.lockRepo("rollback", "")
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	i, ok := findTag(st.Tags, tag)
	if !ok {
		l.releaseLock()
		return 0, fmt.Errorf("repository %s: rollback to %q: %w", l.repo, tag, ErrUnknownTag)
	}
	target := st.Tags[i]
	if err := l.buildRevision(target.Revision, info.Next, func(string) error { return nil }); err != nil {
		l.abort(info)
		return 0, fmt.Errorf("rollback to %q: %w", tag, err)
	}
	kept := st.Tags[:0:0]
	for _, tr := range st.Tags {
		if tr.Name == tag {
			tr.Revision, tr.Timestamp = info.Next, time.Now().UTC()
		} else if tr.Revision > target.Revision {
			continue
		}
		kept = append(kept, tr)
	}
	st.Revision, st.Tags = info.Next, kept
	if err := l.writeState(st); err != nil {
		l.abort(info)
		return 0, fmt.Errorf("rollback to %q: commit: %w", tag, err)
	}
	failpoint("after-commit")
	return info.Next, l.finish(info.Next)
}

// Current implements Publisher.
func (l *Local) Current(ctx context.Context) (string, Revision, error) {
	st, err := l.readState()
	if err != nil {
		return "", 0, err
	}
	return l.revDir(st.Revision), st.Revision, nil
}

// Recover implements Publisher.
func (l *Local) Recover(ctx context.Context) (RecoveryReport, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if stray, _ := filepath.Glob(filepath.Join(l.root, ".transaction.tmp*")); len(stray) > 0 {
		for _, s := range stray {
			os.Remove(s)
		}
	}
	info, err := l.readLock()
	if errors.Is(err, fs.ErrNotExist) {
		st, err := l.readState()
		if err != nil {
			return RecoveryReport{}, err
		}
		// No transaction: still repair a current link a crash left behind
		// and drop stray scratch.
		if err := l.cleanTxn(); err != nil {
			return RecoveryReport{}, err
		}
		if err := l.repairCurrent(st.Revision); err != nil {
			return RecoveryReport{}, err
		}
		return RecoveryReport{Revision: st.Revision}, nil
	}
	if err != nil {
		return RecoveryReport{}, err
	}
	if info.alive() {
		// Another running compatbot owns it: aborting would pull the tree
		// from under its publish.
		return RecoveryReport{}, &TransactionOpenError{Repository: l.repo, Holder: info.holder() + "; still running, not recovering"}
	}
	rep := RecoveryReport{Found: true, Holder: info.holder(), Path: info.Path}
	st, err := l.readState()
	if err != nil {
		return rep, err
	}
	if info.Next > 0 && st.Revision >= info.Next {
		rep.Completed = true
		if err := l.finish(st.Revision); err != nil {
			return rep, err
		}
	} else {
		if err := l.abort(info); err != nil {
			return rep, err
		}
		if err := l.repairCurrent(st.Revision); err != nil {
			return rep, err
		}
	}
	rep.Revision = st.Revision
	return rep, nil
}

func (l *Local) repairCurrent(rev Revision) error {
	want := filepath.Join("revisions", strconv.FormatUint(uint64(rev), 10))
	if got, err := os.Readlink(filepath.Join(l.root, "current")); err == nil && got == want {
		return nil
	}
	return l.switchCurrent(rev)
}

// Diff implements Publisher.
func (l *Local) Diff(ctx context.Context, fromTag, toTag string) ([]PathChange, error) {
	st, err := l.readState()
	if err != nil {
		return nil, err
	}
	var revs [2]Revision
	for k, name := range []string{fromTag, toTag} {
		i, ok := findTag(st.Tags, name)
		if !ok {
			return nil, fmt.Errorf("repository %s: diff: tag %q: %w", l.repo, name, ErrUnknownTag)
		}
		revs[k] = st.Tags[i].Revision
	}
	return diffTrees(l.revDir(revs[0]), l.revDir(revs[1]))
}

func listTree(root string) (map[string]os.FileInfo, error) {
	m := map[string]os.FileInfo{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		m[filepath.ToSlash(rel)] = fi
		return nil
	})
	return m, err
}

// diffTrees compares two revision trees. Hard-linked files (the same
// inode) are unchanged without reading them; other files compare type,
// mode, size and then bytes.
func diffTrees(a, b string) ([]PathChange, error) {
	ma, err := listTree(a)
	if err != nil {
		return nil, err
	}
	mb, err := listTree(b)
	if err != nil {
		return nil, err
	}
	var out []PathChange
	for p, fa := range ma {
		fb, ok := mb[p]
		if !ok {
			out = append(out, PathChange{Path: p, Kind: PathRemoved, Dir: fa.IsDir()})
			continue
		}
		same, err := sameEntry(filepath.Join(a, p), filepath.Join(b, p), fa, fb)
		if err != nil {
			return nil, err
		}
		if !same {
			out = append(out, PathChange{Path: p, Kind: PathModified, Dir: fb.IsDir()})
		}
	}
	for p, fb := range mb {
		if _, ok := ma[p]; !ok {
			out = append(out, PathChange{Path: p, Kind: PathAdded, Dir: fb.IsDir()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func sameEntry(pa, pb string, fa, fb os.FileInfo) (bool, error) {
	if fa.Mode() != fb.Mode() {
		return false, nil
	}
	if fa.IsDir() {
		return true, nil
	}
	if os.SameFile(fa, fb) {
		return true, nil
	}
	if fa.Mode()&os.ModeSymlink != 0 {
		ta, err := os.Readlink(pa)
		if err != nil {
			return false, err
		}
		tb, err := os.Readlink(pb)
		return ta == tb, err
	}
	if !fa.Mode().IsRegular() {
		sa, sb := fa.Sys().(*syscall.Stat_t), fb.Sys().(*syscall.Stat_t)
		return sa.Rdev == sb.Rdev, nil
	}
	if fa.Size() != fb.Size() {
		return false, nil
	}
	return sameContent(pa, pb)
}

func sameContent(pa, pb string) (bool, error) {
	fa, err := os.Open(pa)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(pb)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == io.EOF || eb == io.ErrUnexpectedEOF, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil {
			return false, eb
		}
	}
}

package publish

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/google/go-cmp/cmp"
)

const scope = "2025.06/compat/linux/x86_64"

func newLocal(t *testing.T) *Local {
	t.Helper()
	l, err := OpenLocal(t.TempDir(), "software.test.io")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A failed test may leave a transaction mounted; never leak mounts.
		l.cleanTxn()
	})
	return l
}

// change is one edit applied inside a transaction.
type change struct {
	path    string
	content string // "" with del
	del     bool
}

func apply(t *testing.T, dir string, changes []change) {
	t.Helper()
	for _, c := range changes {
		p := filepath.Join(dir, c.path)
		if c.del {
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		// WriteFile truncates in place: the worst case for a tree whose
		// unchanged files are hard links to the published revision.
		if err := os.WriteFile(p, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func publishChanges(t *testing.T, p Publisher, path, tag string, changes []change) Revision {
	t.Helper()
	ctx := context.Background()
	tx, err := p.Transaction(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, tx.Dir(), changes)
	rev, err := tx.Publish(ctx, tag, "publish "+tag)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestLocalPublishLinksUnchangedFilesAndNeverWritesThroughThem(t *testing.T) {
	ctx := context.Background()
	l := newLocal(t)
	r1 := publishChanges(t, l, scope, "v1", []change{
		{path: "a", content: "a1"}, {path: "b/c", content: "c1"}, {path: "d", content: "d1"},
	})
	if r1 != 1 {
		t.Fatalf("first publish: revision %d, want 1", r1)
	}
	r2 := publishChanges(t, l, scope, "v2", []change{
		{path: "a", content: "a2-longer"}, {path: "d", del: true}, {path: "e", content: "e2"},
	})
	if r2 != 2 {
		t.Fatalf("second publish: revision %d, want 2", r2)
	}
	d1, d2 := filepath.Join(l.revDir(1), scope), filepath.Join(l.revDir(2), scope)
	if got, want := testtree.Contents(t, d1), map[string]string{"a": "a1", "b": "dir/", "b/c": "c1", "d": "d1"}; !cmp.Equal(got, want) {
		t.Errorf("revision 1 changed after revision 2 was published: %s", cmp.Diff(want, got))
	}
	if got, want := testtree.Contents(t, d2), map[string]string{"a": "a2-longer", "b": "dir/", "b/c": "c1", "e": "e2"}; !cmp.Equal(got, want) {
		t.Errorf("revision 2: %s", cmp.Diff(want, got))
	}
	if inode(t, filepath.Join(d1, "b/c")) != inode(t, filepath.Join(d2, "b/c")) {
		t.Error("unchanged b/c is not a hard link to revision 1's")
	}
	if inode(t, filepath.Join(d1, "a")) == inode(t, filepath.Join(d2, "a")) {
		t.Error("changed file a shares revision 1's inode")
	}
	dir, rev, err := l.Current(ctx)
	if err != nil || rev != 2 || dir != l.revDir(2) {
		t.Fatalf("Current = %q, %d, %v; want %q, 2", dir, rev, err, l.revDir(2))
	}
	if target, _ := os.Readlink(filepath.Join(l.Root(), "current")); target != "revisions/2" {
		t.Errorf("current -> %q, want revisions/2", target)
	}
	// Nothing of the transaction is left behind.
	if _, err := os.Stat(l.lockPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock still present after publish: %v", err)
	}
	if _, err := os.Stat(l.txnDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("transaction scratch still present: %v", err)
	}
}

func TestLocalTransactionStartsFromPublishedTreeAndAbortDiscards(t *testing.T) {
	ctx := context.Background()
	l := newLocal(t)
	publishChanges(t, l, scope, "v1", []change{{path: "keep", content: "k"}})
	tx, err := l.Transaction(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	if got := testtree.Contents(t, tx.Dir()); !cmp.Equal(got, map[string]string{"keep": "k"}) {
		t.Errorf("transaction tree does not start as the published subtree: %v", got)
	}
	apply(t, tx.Dir(), []change{{path: "keep", content: "changed"}, {path: "new", content: "n"}})
	if err := tx.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Publish(ctx, "late", ""); !errors.Is(err, ErrNoTransaction) {
		t.Errorf("Publish after Abort: %v, want ErrNoTransaction", err)
	}
	dir, rev, _ := l.Current(ctx)
	if got := testtree.Contents(t, filepath.Join(dir, scope)); rev != 1 || !cmp.Equal(got, map[string]string{"keep": "k"}) {
		t.Errorf("after abort: revision %d tree %v, want revision 1 unchanged", rev, got)
	}
	// The lock is free again.
	tx, err = l.Transaction(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	tx.Abort(ctx)
}

func TestLocalRollbackDuringTransaction(t *testing.T) {
	ctx := context.Background()
	l := newLocal(t)
	publishChanges(t, l, scope, "v1", []change{{path: "f", content: "1"}})
	tx, err := l.Transaction(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort(ctx)
	if _, err := l.Rollback(ctx, "v1"); !errors.Is(err, ErrTransactionOpen) {
		t.Errorf("Rollback during a transaction: %v, want ErrTransactionOpen", err)
	}
}

func TestLocalBadTagsAndPaths(t *testing.T) {
	for _, tc := range []struct {
		tag, wantErr string
	}{
		{"2025.06-linux-x86_64-pr12-abcdef0", ""},
		{"a:b/c_d.e-f", ""},
		{"", "empty"},
		{"trunk", "reserved"},
		{"trunk-previous", "reserved"},
		{"has space", `' ' at offset 3`},
		{"semi;colon", `';' at offset 4`},
		{"ünï", `'ü' at offset 0`},
	} {
		err := ValidateTag(tc.tag)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("ValidateTag(%q) = %v, want error containing %q", tc.tag, err, tc.wantErr)
		}
	}
	for _, tc := range []struct {
		in, want, wantErr string
	}{
		{"2025.06/compat/linux/x86_64", "2025.06/compat/linux/x86_64", ""},
		{"a/b/", "a/b", ""},
		{"", "", ""},
		{"/abs", "", "relative"},
		{"a/../b", "", `".." is not allowed`},
		{"a//b", "", "empty element"},
		{"./a", "", `"." is not allowed`},
	} {
		got, err := CleanPath(tc.in)
		if tc.wantErr == "" && (err != nil || got != tc.want) || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("CleanPath(%q) = %q, %v; want %q, error containing %q", tc.in, got, err, tc.want, tc.wantErr)
		}
	}

	ctx := context.Background()
	l := newLocal(t)
	publishChanges(t, l, "", "v1", []change{{path: "f", content: "1"}})
	for _, bad := range []string{"../escape", "a,upperdir=/etc", "a:b"} {
		if _, err := l.Transaction(ctx, bad); err == nil {
			t.Errorf("Transaction(%q) succeeded", bad)
		}
	}
}

// Local specifics of a rollback (the shared behaviour is in
// backends_test.go): the new revision holds exactly the old revision's
// whole tree, and published revisions stay immutable.
func TestLocalRollbackKeepsRevisionsImmutable(t *testing.T) {
	ctx := context.Background()
	l := newLocal(t)
	publishChanges(t, l, scope, "t1", []change{{path: "a", content: "1"}, {path: "b", content: "b"}})
	publishChanges(t, l, scope, "t2", []change{{path: "a", content: "2"}, {path: "c/d", content: "d"}})
	publishChanges(t, l, scope, "t3", []change{{path: "b", del: true}})
	t1Tree := testtree.Contents(t, l.revDir(1))
	if _, err := l.Rollback(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	dir, cur, _ := l.Current(ctx)
	if cur != 4 || !cmp.Equal(testtree.Contents(t, dir), t1Tree) {
		t.Errorf("after rollback: revision %d, tree %s", cur, cmp.Diff(t1Tree, testtree.Contents(t, dir)))
	}
	if got := testtree.Contents(t, filepath.Join(l.revDir(3), scope)); got["a"] != "2" || got["b"] != "" {
		t.Errorf("revision 3 changed by rollback: %v", got)
	}
}

// TestLocalReadersNeverSeeAMixedTree publishes revisions whose files all
// hold the revision number while readers resolve `current` once and read
// the whole tree: every tree read must be uniform and complete.
func TestLocalReadersNeverSeeAMixedTree(t *testing.T) {
	l := newLocal(t)
	files := []string{"a", "b/c", "b/d", "e/f/g"}
	write := func(rev int) []change {
		var cs []change
		for _, f := range files {
			cs = append(cs, change{path: f, content: strconv.Itoa(rev)})
		}
		return cs
	}
	publishChanges(t, l, "", "r1", write(1))
	const publishes = 15
	stop := make(chan struct{})
	var reads int
	var readerErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			dir, err := filepath.EvalSymlinks(filepath.Join(l.Root(), "current"))
			if err != nil {
				readerErr = fmt.Errorf("resolve current: %w", err)
				return
			}
			seen := map[string]bool{}
			for _, f := range files {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					readerErr = fmt.Errorf("read %s: %w", f, err)
					return
				}
				seen[string(b)] = true
			}
			if len(seen) != 1 {
				readerErr = fmt.Errorf("mixed tree in %s: %v", dir, seen)
				return
			}
			reads++
		}
	}()
	for rev := 2; rev <= publishes; rev++ {
		publishChanges(t, l, "", "r"+strconv.Itoa(rev), write(rev))
	}
	close(stop)
	<-done
	if readerErr != nil {
		t.Fatal(readerErr)
	}
	if reads == 0 {
		t.Fatal("reader never completed a read")
	}
	t.Logf("%d consistent reads during %d publishes", reads, publishes-1)
}

// The child roles of the multi-process tests run in a re-executed test
// binary.
const childEnv = "COMPATBOT_PUBLISH_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(child(role))
	}
	code := m.Run()
	if fakeDir != "" {
		os.RemoveAll(fakeDir)
	}
	os.Exit(code)
}

func child(role string) int {
	ctx := context.Background()
	l, err := OpenLocal(os.Getenv("REPO_BASE"), "software.test.io")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	switch role {
	case "hold":
		// Hold a transaction until stdin closes.
		tx, err := l.Transaction(ctx, scope)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Println("open")
		bufio.NewReader(os.Stdin).ReadString('\n')
		if err := tx.Abort(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		return 0
	case "publish":
		// Publish the "new" tree; COMPATBOT_PUBLISH_FAILPOINT kills us on the way.
		tx, err := l.Transaction(ctx, scope)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		for _, c := range newTree {
			p := filepath.Join(tx.Dir(), c.path)
			if c.del {
				os.RemoveAll(p)
				continue
			}
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte(c.content), 0o644)
		}
		if _, err := tx.Publish(ctx, "new", "crash test"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		return 0
	case "rollback":
		if _, err := l.Rollback(ctx, "old"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		return 0
	}
	return 2
}

var (
	oldTree = []change{{path: "a", content: "old-a"}, {path: "b/c", content: "old-c"}, {path: "gone", content: "g"}}
	newTree = []change{{path: "a", content: "new-a"}, {path: "gone", del: true}, {path: "n/m", content: "new-m"}}
)

func childCmd(t *testing.T, base, role string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, "REPO_BASE="+base)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestLocalOneTransactionAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	l, err := OpenLocal(base, "software.test.io")
	if err != nil {
		t.Fatal(err)
	}
	cmd := childCmd(t, base, "hold")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "open\n" {
		stdin.Close()
		cmd.Wait()
		t.Fatalf("child did not open a transaction: %q", line)
	}
	_, err = l.Transaction(ctx, "")
	if !errors.Is(err, ErrTransactionOpen) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(cmd.Process.Pid)) {
		t.Errorf("Transaction while another process holds one: %v, want ErrTransactionOpen naming pid %d", err, cmd.Process.Pid)
	}
	if strings.Contains(err.Error(), "gone") {
		t.Errorf("live holder reported as gone: %v", err)
	}
	if _, err := l.Recover(ctx); !errors.Is(err, ErrTransactionOpen) {
		t.Errorf("Recover while the holder runs: %v, want ErrTransactionOpen (never abort a live transaction)", err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	tx, err := l.Transaction(ctx, "")
	if err != nil {
		t.Fatalf("after the other process aborted: %v", err)
	}
	tx.Abort(ctx)
}

func mounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

func treeOf(changes ...[]change) map[string]string {
	m := map[string]string{}
	for _, cs := range changes {
		for _, c := range cs {
			if c.del {
				delete(m, c.path)
				continue
			}
			m[c.path] = c.content
			for d := filepath.Dir(c.path); d != "."; d = filepath.Dir(d) {
				m[d] = testtree.Dir
			}
		}
	}
	return m
}

// TestLocalCrashAtEachStep kills a publishing (or rolling back) process
// with SIGKILL after each durable step; Recover must leave no open
// transaction, no mount, no half-built revision, and `current` holding
// exactly the old or the new tree.
func TestLocalCrashAtEachStep(t *testing.T) {
	ctx := context.Background()
	oldT, newT := treeOf(oldTree), treeOf(oldTree, newTree)
	for _, tc := range []struct {
		role, failpoint string
		completed       bool
	}{
		{"publish", "after-lock", false},
		{"publish", "after-mount", false},
		{"publish", "after-unmount", false},
		{"publish", "after-clone", false},
		{"publish", "after-revision", false},
		{"publish", "after-commit", true},
		{"publish", "after-switch", true},
		{"rollback", "after-clone", false},
		{"rollback", "after-commit", true},
	} {
		t.Run(tc.role+"/"+tc.failpoint, func(t *testing.T) {
			base := t.TempDir()
			l, err := OpenLocal(base, "software.test.io")
			if err != nil {
				t.Fatal(err)
			}
			defer l.cleanTxn()
			publishChanges(t, l, scope, "old", oldTree)
			want := newT
			if tc.role == "rollback" {
				publishChanges(t, l, scope, "new", newTree)
				want = oldT
			}
			cmd := childCmd(t, base, tc.role, "COMPATBOT_PUBLISH_FAILPOINT="+tc.failpoint)
			err = cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed at %s: %v", tc.failpoint, err)
			}
			if _, err := l.Transaction(ctx, ""); !errors.Is(err, ErrTransactionOpen) || !strings.Contains(err.Error(), "process is gone") {
				t.Errorf("stale lock: Transaction = %v, want ErrTransactionOpen saying the holder is gone", err)
			}
			rep, err := l.Recover(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Found || rep.Completed != tc.completed {
				t.Errorf("Recover = %+v, want found, completed=%v", rep, tc.completed)
			}
			if mounted(t, filepath.Join(l.Root(), ".txn", "merged")) {
				t.Error("transaction overlay still mounted after Recover")
			}
			if !tc.completed {
				want = oldT
				if tc.role == "rollback" {
					want = newT
				}
			}
			got := testtree.Contents(t, filepath.Join(l.Root(), "current", scope))
			if !cmp.Equal(got, want) {
				t.Errorf("current after recovery: %s", cmp.Diff(want, got))
			}
			revs, _ := os.ReadDir(filepath.Join(l.Root(), "revisions"))
			var names []string
			for _, r := range revs {
				names = append(names, r.Name())
			}
			sort.Strings(names)
			wantRevs := int(rep.Revision) + 1
			if len(names) != wantRevs {
				t.Errorf("revisions after recovery: %v, want 0..%d only (no half-built revision)", names, rep.Revision)
			}
			// Recovery is idempotent and the repository is usable again.
			if rep2, err := l.Recover(ctx); err != nil || rep2.Found {
				t.Errorf("second Recover = %+v, %v", rep2, err)
			}
			publishChanges(t, l, scope, "after", []change{{path: "x", content: "x"}})
		})
	}
}

func TestLockHolderAliveness(t *testing.T) {
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleep.Process.Kill(); sleep.Wait() }()
	host, _ := os.Hostname()
	for _, tc := range []struct {
		name  string
		info  lockInfo
		alive bool
	}{
		{"running, started before the lock", lockInfo{PID: sleep.Process.Pid, Host: host, Start: time.Now().Add(time.Minute)}, true},
		{"pid reused by a younger process", lockInfo{PID: sleep.Process.Pid, Host: host, Start: time.Now().Add(-time.Hour)}, false},
		{"this process (restarted with the same pid)", lockInfo{PID: os.Getpid(), Host: host, Start: time.Now()}, false},
		{"other host", lockInfo{PID: sleep.Process.Pid, Host: host + ".elsewhere", Start: time.Now()}, false},
		{"no such process", lockInfo{PID: 1 << 30, Host: host, Start: time.Now()}, false},
	} {
		if got := tc.info.alive(); got != tc.alive {
			t.Errorf("%s: alive = %v, want %v", tc.name, got, tc.alive)
		}
	}
}

package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/publish"
	"github.com/compatbot/compatbot/workflow/state"
)

var (
	x86 = sets.Target{Version: "2025.06", OS: "linux", Arch: "x86_64"}
	arm = sets.Target{Version: "2025.06", OS: "linux", Arch: "aarch64"}
)

// memChangelog stands in for the GitHub contents API (the bot's
// implementation of ChangelogStore): files per repo/branch/path, a missing
// file reads as fs.ErrNotExist like a 404, and failNext makes the next
// commits fail the way a 409 conflict or a 5xx would.
type memChangelog struct {
	mu       sync.Mutex
	files    map[string][]byte
	commits  []string
	failNext int
}

func newMemChangelog() *memChangelog { return &memChangelog{files: map[string][]byte{}} }

func (m *memChangelog) key(repo, branch, path string) string { return repo + "@" + branch + ":" + path }

func (m *memChangelog) ReadFile(ctx context.Context, repo, branch, path string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[m.key(repo, branch, path)]
	if !ok {
		return nil, fmt.Errorf("GET contents %s: 404 Not Found: %w", path, fs.ErrNotExist)
	}
	return append([]byte(nil), b...), nil
}

func (m *memChangelog) CommitFile(ctx context.Context, repo, branch, path string, content []byte, message string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failNext > 0 {
		m.failNext--
		return errors.New("PUT contents " + path + ": 409 Conflict: is at another sha")
	}
	m.files[m.key(repo, branch, path)] = append([]byte(nil), content...)
	m.commits = append(m.commits, message)
	return nil
}

func (m *memChangelog) file(path string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return string(m.files[m.key("compat/layer", "main", path)])
}

// recNotifier records notifications; queued signals each Queued call.
type recNotifier struct {
	mu       sync.Mutex
	queued   []string
	outcomes []Result
	queuedCh chan string
}

func newRecNotifier() *recNotifier { return &recNotifier{queuedCh: make(chan string, 16)} }

func (n *recNotifier) Queued(ctx context.Context, env string, req Request, position int) {
	s := fmt.Sprintf("%s pr%d pos%d", env, req.PR, position)
	n.mu.Lock()
	n.queued = append(n.queued, s)
	n.mu.Unlock()
	n.queuedCh <- s
}

func (n *recNotifier) Outcome(ctx context.Context, env string, req Request, res Result) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.outcomes = append(n.outcomes, res)
}

// compatVerifier is the verifier the tests use: the real ContentVerifier
// plus one compat-layer check (the Prefix's startprefix script must be
// there), so an artifact without it fails its tests for real.
type compatVerifier struct {
	content ContentVerifier
	hook    func(env string, t sets.Target) // called first; tests block in it
}

func (v *compatVerifier) Verify(ctx context.Context, env string, t sets.Target, dir string) (bool, string, error) {
	if v.hook != nil {
		v.hook(env, t)
	}
	ok, sum, err := v.content.Verify(ctx, env, t, dir)
	if err != nil || !ok {
		return ok, sum, err
	}
	if _, err := os.Stat(filepath.Join(dir, "startprefix")); err != nil {
		return false, "compat test startprefix: missing: the Prefix cannot be entered", nil
	}
	return true, sum + "; startprefix present", nil
}

type rig struct {
	t      testing.TB
	dir    string
	db     *state.DB
	store  *artifact.Store
	pubs   map[string]publish.Publisher
	clog   *memChangelog
	notify *recNotifier
	verify *compatVerifier
	// layouts are the Options.Layouts of the next open (nil: the default).
	layouts map[string]publish.Layout
	d       *Engine
	now     time.Time
}

func newRig(t *testing.T) *rig { return newRigB(t) }

func newRigB(t testing.TB) *rig {
	t.Helper()
	dir := t.TempDir()
	r := &rig{t: t, dir: dir, clog: newMemChangelog(), notify: newRecNotifier(), now: time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC)}
	r.store = &artifact.Store{Dir: filepath.Join(dir, "artifacts")}
	r.verify = &compatVerifier{content: ContentVerifier{Store: r.store}}
	r.open()
	t.Cleanup(func() { r.db.Close() })
	return r
}

// open (re)opens the database, the publishers and the deployer, as a
// restarted compatbot would.
func (r *rig) open() {
	t := r.t
	t.Helper()
	if r.db != nil {
		r.db.Close()
	}
	var mu sync.Mutex
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		r.now = r.now.Add(time.Minute)
		return r.now
	}
	d, db, pubs, err := openDeployer(r.dir, r.store, r.verify, r.clog, r.notify, clock, r.layouts)
	if err != nil {
		t.Fatal(err)
	}
	r.db, r.pubs = db, pubs
	r.d = d
}

// openDeployer builds an Engine on dir's database and local
// repositories, for the tests and for the crash-test child process.
func openDeployer(dir string, store *artifact.Store, v Verifier, clog ChangelogStore, n Notifier, clock func() time.Time, layouts map[string]publish.Layout) (*Engine, *state.DB, map[string]publish.Publisher, error) {
	db, err := state.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		return nil, nil, nil, err
	}
	pubs := map[string]publish.Publisher{}
	for _, env := range []string{EnvTest, EnvProd} {
		p, err := publish.Open(publish.TargetConfig{Backend: "local", Repository: "compat." + env, BaseDir: filepath.Join(dir, "repos")})
		if err != nil {
			db.Close()
			return nil, nil, nil, err
		}
		pubs[env] = p
	}
	d, err := New(Options{
		DB: db, Targets: pubs, Layouts: layouts, Artifacts: StoreSource{Store: store}, Verify: v,
		Changelog: clog, Notify: n, Clock: clock,
	})
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	return d, db, pubs, nil
}

// artifact stores an upper layer: files maps paths to contents; a value
// "<whiteout>" makes a whiteout (char device 0/0), as overlayfs leaves for
// a deleted file.
func (r *rig) artifact(files map[string]string) string {
	return putArtifact(r.t, r.store, files)
}

func putArtifact(t testing.TB, store *artifact.Store, files map[string]string) string {
	t.Helper()
	upper, err := os.MkdirTemp("", "upper")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(upper)
	tree := map[string]testtree.File{}
	for p, c := range files {
		tree[p] = testtree.File{Content: c, Whiteout: c == "<whiteout>"}
	}
	testtree.Build(t, upper, tree)
	art, err := store.Put(context.Background(), upper, nil)
	if err != nil {
		t.Fatal(err)
	}
	return art.Digest
}

func req(pr int, sha string, items ...Item) Request {
	return Request{Repo: "compat/layer", PR: pr, HeadSHA: sha, Author: "alice", Requester: "bob", Merged: true, Items: items}
}

func sha(n int) string {
	s := sha256.Sum256([]byte(fmt.Sprint(n)))
	return hex.EncodeToString(s[:20])
}

// tree reads a directory as testtree.Contents does; a directory that does
// not exist (nothing published yet) reads as empty.
func tree(t testing.TB, dir string) map[string]string {
	t.Helper()
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}
	}
	return testtree.Contents(t, dir)
}

// deployTest deploys digest to test for x86 as PR pr (head sha(pr)) and
// fails the test if the deploy fails.
func (r *rig) deployTest(pr int, digest string) Result {
	r.t.Helper()
	res, err := r.d.DeployTest(context.Background(), req(pr, sha(pr), Item{Target: x86, Digest: digest}))
	if err != nil {
		r.t.Fatalf("deploy PR %d to test: %v\n%s", pr, err, res.Markdown())
	}
	return res
}

func (r *rig) current(env string) map[string]string {
	r.t.Helper()
	dir, _, err := r.pubs[env].Current(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return tree(r.t, dir)
}

func (r *rig) targetTree(env string, tg sets.Target) map[string]string {
	r.t.Helper()
	dir, _, err := r.pubs[env].Current(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	p, err := r.d.TargetPath(env, tg)
	if err != nil {
		r.t.Fatal(err)
	}
	return tree(r.t, filepath.Join(dir, p))
}

func (r *rig) tags(env string) []string {
	r.t.Helper()
	tags, err := r.pubs[env].Tags(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	var names []string
	for _, t := range tags {
		names = append(names, t.Name)
	}
	return names
}

// noOpenTransaction fails unless a transaction can be opened on env
// (then aborts it): nothing was left open.
func (r *rig) noOpenTransaction(env string) {
	r.t.Helper()
	tx, err := r.pubs[env].Transaction(context.Background(), "versions/2025.06/compat/linux/x86_64")
	if err != nil {
		r.t.Fatalf("%s: a transaction is still open: %v", env, err)
	}
	if err := tx.Abort(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

func markers(lineage, digest string) map[string]string {
	return map[string]string{".compatbot": testtree.Dir, ".compatbot/lineage": lineage + "\n", ".compatbot/artifact": digest + "\n"}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			if v == "<deleted>" {
				delete(out, k)
				continue
			}
			out[k] = v
		}
	}
	return out
}

func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

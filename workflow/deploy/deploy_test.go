package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/compatbot/compatbot/sets"
	"github.com/google/go-cmp/cmp"
)

var prefixA = map[string]string{"startprefix": "#!/bin/sh\n", "usr/bin/bash": "bash-5.2\n", "etc/motd": "hello\n"}

func treeA() map[string]string {
	return map[string]string{"startprefix": "#!/bin/sh\n", "usr": testtree.Dir, "usr/bin": testtree.Dir, "usr/bin/bash": "bash-5.2\n", "etc": testtree.Dir, "etc/motd": "hello\n"}
}

func TestDeployTestPublishesTagAndTree(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	dg := r.artifact(prefixA)
	rq := req(7, sha(1), Item{Target: x86, Digest: dg, Changes: []sets.Change{{Kind: sets.Added, Package: "app-shells/bash", New: "=app-shells/bash-5.2"}}})
	res, err := r.d.DeployTest(ctx, rq)
	if err != nil {
		t.Fatalf("DeployTest: %v\n%s", err, res.Markdown())
	}
	wantTag := "2025.06-linux-x86_64-pr7-" + sha(1)[:7]
	if !res.OK() || len(res.Items) != 1 || res.Items[0].Tag != wantTag || res.Items[0].State != stVerified {
		t.Fatalf("result %+v", res)
	}
	if got := r.tags(EnvTest); !cmp.Equal(got, []string{wantTag}) {
		t.Errorf("test tags %v, want [%s]", got, wantTag)
	}
	if got := r.tags(EnvProd); len(got) != 0 {
		t.Errorf("prod tags %v, want none", got)
	}
	lin := NextLineage("", dg)
	if diff := cmp.Diff(merge(treeA(), markers(lin, dg)), r.targetTree(EnvTest, x86)); diff != "" {
		t.Errorf("published tree (-want +got):\n%s", diff)
	}
	if got, _ := r.d.Lineage(ctx, EnvTest, x86); got != lin {
		t.Errorf("lineage %q, want %q", got, lin)
	}
	tags, _ := r.pubs[EnvTest].Tags(ctx)
	contains(t, "tag description", tags[0].Description, "PR #7", "alice", "approved by bob", dg)
	contains(t, "reply", res.Markdown(), "Deployed PR #7 to `test`", wantTag, "`versions/2025.06/compat/linux/x86_64`", "✅ published tree matches")
	contains(t, "changelog", r.clog.file("changelog/2025.06.md"), "# Changelog of compatibility layer 2025.06", wantTag, "app-shells/bash", "[#7](https://github.com/compat/layer/pull/7)")
	hist, err := r.d.History(ctx, EnvTest)
	if err != nil || len(hist) != 1 || hist[0].Tag != wantTag || hist[0].Action != "publish" || hist[0].Deployer != "bob" {
		t.Errorf("history %+v, %v", hist, err)
	}
	st, err := r.d.Status(ctx)
	if err != nil || len(st) != 1 || st[0].Tag != wantTag || st[0].PR != 7 || st[0].Digest != dg || st[0].Lineage != lin {
		t.Errorf("status %+v, %v", st, err)
	}

	// The same head again gets a distinct tag: CVMFS refuses duplicates.
	res, err = r.d.DeployTest(ctx, rq)
	if err != nil || res.Items[0].Tag != wantTag+"-2" {
		t.Fatalf("redeploy: %v, tag %q", err, res.Items[0].Tag)
	}
	if got := r.targetTree(EnvTest, x86)[".compatbot/lineage"]; got != NextLineage(lin, dg)+"\n" {
		t.Errorf("lineage after redeploy %q", got)
	}
}

func TestDeployRejectsBadRequests(t *testing.T) {
	r := newRig(t)
	dg := r.artifact(prefixA)
	for _, tc := range []struct {
		name string
		req  Request
		want string
	}{
		{"no items", req(1, sha(1)), "produced nothing"},
		{"bad sha", req(1, "zzzzzzz", Item{Target: x86, Digest: dg}), `head SHA "zzzzzzz"`},
		{"bad arch", req(1, sha(1), Item{Target: sets.Target{Version: "2025.06", OS: "linux", Arch: "x86 64"}, Digest: dg}), `arch "x86 64": character ' '`},
		{"dotdot", req(1, sha(1), Item{Target: sets.Target{Version: "..", OS: "linux", Arch: "x86_64"}, Digest: dg}), `version "..": must not start with '.' or '-'`},
		{"bad digest", req(1, sha(1), Item{Target: x86, Digest: "md5:abc"}), "want sha256:<64 hex digits>"},
		{"upper-case digest", req(1, sha(1), Item{Target: x86, Digest: "sha256:" + strings.ToUpper(strings.TrimPrefix(dg, "sha256:"))}), "want sha256:<64 hex digits>"},
		{"twice", req(1, sha(1), Item{Target: x86, Digest: dg}, Item{Target: x86, Digest: dg}), "listed twice"},
		{"no repo", Request{PR: 1, HeadSHA: sha(1), Requester: "bob", Items: []Item{{Target: x86, Digest: dg}}}, "want owner/name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.d.DeployTest(context.Background(), tc.req)
			ref, ok := IsRefusal(err)
			if !ok || !strings.Contains(ref.Reason, tc.want) {
				t.Fatalf("got %v, want a refusal containing %q", err, tc.want)
			}
		})
	}
	if got := r.tags(EnvTest); len(got) != 0 {
		t.Errorf("tags %v after refusals", got)
	}
}

func TestApplyFailureAbortsTransaction(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	good := r.artifact(prefixA)
	r.deployTest(1, good)
	before := r.current(EnvTest)
	missing := "sha256:" + strings.Repeat("ab", 32)
	res, err := r.d.DeployTest(ctx, req(2, sha(2), Item{Target: x86, Digest: good}, Item{Target: arm, Digest: missing}, Item{Target: sets.Target{Version: "2025.06", OS: "linux", Arch: "riscv64"}, Digest: good}))
	if se := failedAt(t, err, "apply"); se.Target != arm {
		t.Fatalf("got %v, want a StepError at apply for %s", err, arm)
	}
	if res.Items[0].State != stVerified || res.Items[1].State != stAborted || res.Items[2].State != stAborted || res.Items[2].FailedStep != "" {
		t.Errorf("item states %s/%s/%s", res.Items[0].State, res.Items[1].State, res.Items[2].State)
	}
	contains(t, "reply", res.Markdown(), "Failed at step **apply**", "nothing was published", "not attempted")
	r.noOpenTransaction(EnvTest)
	if got := r.tags(EnvTest); len(got) != 2 {
		t.Errorf("tags %v: want the first deploy's and the x86 item's", got)
	}
	after := r.current(EnvTest)
	if _, ok := after["versions/2025.06/compat/linux/aarch64"]; ok {
		t.Errorf("the aborted target was published")
	}
	if len(after) != len(before) {
		// x86 republished with the same files; only the markers changed
		if diff := cmp.Diff(before, after); !strings.Contains(diff, ".compatbot/lineage") {
			t.Errorf("tree changed beyond the x86 markers:\n%s", diff)
		}
	}
}

// waitPending waits until n requests hold or wait in test's queue.
func waitPending(r *rig, n int) {
	for r.d.pending(EnvTest) < n {
		time.Sleep(time.Millisecond)
	}
}

// failedAt is err as the StepError of step whose message holds every one
// of subs; anything else fails the test.
func failedAt(t testing.TB, err error, step string, subs ...string) *StepError {
	t.Helper()
	se, ok := err.(*StepError)
	if !ok || se.Step != step {
		t.Fatalf("got %v, want a StepError at step %q", err, step)
	}
	for _, sub := range subs {
		if !strings.Contains(err.Error(), sub) {
			t.Fatalf("got %v, want a StepError at step %q saying %q", err, step, sub)
		}
	}
	return se
}

func TestProdRules(t *testing.T) {
	ctx := context.Background()
	type setup func(r *rig) Request
	cases := []struct {
		name string
		do   setup
		want string // "" = success
	}{
		{"untested digest", func(r *rig) Request {
			return req(3, sha(3), Item{Target: x86, Digest: r.artifact(prefixA)})
		}, "was never deployed to `test` with passing tests"},
		{"not merged", func(r *rig) Request {
			rq := req(3, sha(3), Item{Target: x86, Digest: r.artifact(prefixA)})
			if _, err := r.d.DeployTest(ctx, rq); err != nil {
				r.t.Fatal(err)
			}
			rq.Merged = false
			return rq
		}, "the PR is not merged"},
		{"test verification failed", func(r *rig) Request {
			dg := r.artifact(map[string]string{"usr/bin/bash": "bash\n"}) // no startprefix
			rq := req(3, sha(3), Item{Target: x86, Digest: dg})
			res, err := r.d.DeployTest(ctx, rq)
			failedAt(r.t, err, "verify")
			if !res.Items[0].Published() {
				r.t.Fatalf("test deploy: %v %+v", err, res)
			}
			return rq
		}, "failed its tests on `test` (compat test startprefix: missing"},
		{"other target tested", func(r *rig) Request {
			dg := r.artifact(prefixA)
			if _, err := r.d.DeployTest(ctx, req(3, sha(3), Item{Target: arm, Digest: dg})); err != nil {
				r.t.Fatal(err)
			}
			return req(3, sha(3), Item{Target: x86, Digest: dg})
		}, "was never deployed to `test`"},
		{"lineage mismatch", func(r *rig) Request {
			// PR 1 goes to prod first; PR 3 was built on the empty base.
			a := r.artifact(map[string]string{"startprefix": "a\n"})
			one := req(1, sha(1), Item{Target: x86, Digest: a})
			if _, err := r.d.DeployTest(ctx, one); err != nil {
				r.t.Fatal(err)
			}
			if _, err := r.d.DeployProd(ctx, one); err != nil {
				r.t.Fatal(err)
			}
			b := r.artifact(prefixA)
			three := req(3, sha(3), Item{Target: x86, Digest: b, BaseLineage: ""})
			if _, err := r.d.DeployTest(ctx, three); err != nil {
				r.t.Fatal(err)
			}
			return three
		}, "production has moved on since this artifact was built"},
		{"rebuilt on the production base", func(r *rig) Request {
			a := r.artifact(map[string]string{"startprefix": "a\n"})
			one := req(1, sha(1), Item{Target: x86, Digest: a})
			if _, err := r.d.DeployTest(ctx, one); err != nil {
				r.t.Fatal(err)
			}
			if _, err := r.d.DeployProd(ctx, one); err != nil {
				r.t.Fatal(err)
			}
			base, err := r.d.Lineage(ctx, EnvProd, x86)
			if err != nil || base != NextLineage("", a) {
				r.t.Fatalf("prod lineage %q %v", base, err)
			}
			three := req(3, sha(3), Item{Target: x86, Digest: r.artifact(prefixA), BaseLineage: base})
			if _, err := r.d.DeployTest(ctx, three); err != nil {
				r.t.Fatal(err)
			}
			return three
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			rq := tc.do(r)
			prodTags := r.tags(EnvProd)
			res, err := r.d.DeployProd(ctx, rq)
			if tc.want == "" {
				if err != nil || !res.OK() {
					t.Fatalf("DeployProd: %v\n%s", err, res.Markdown())
				}
				if got := r.tags(EnvProd); len(got) != len(prodTags)+1 || got[0] != res.Items[0].Tag {
					t.Errorf("prod tags %v", got)
				}
				return
			}
			ref, ok := IsRefusal(err)
			if !ok || !strings.Contains(ref.Reason, tc.want) {
				t.Fatalf("got %v, want a refusal containing %q", err, tc.want)
			}
			if got := r.tags(EnvProd); !cmp.Equal(got, prodTags) {
				t.Errorf("prod tags changed by a refused deploy: %v -> %v", prodTags, got)
			}
		})
	}
}

func TestProdAfterTestPublishesSameTree(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	dg := r.artifact(prefixA)
	rq := req(4, sha(4), Item{Target: x86, Digest: dg})
	if _, err := r.d.DeployTest(ctx, rq); err != nil {
		t.Fatal(err)
	}
	res, err := r.d.DeployProd(ctx, rq)
	if err != nil {
		t.Fatalf("%v\n%s", err, res.Markdown())
	}
	if diff := cmp.Diff(r.targetTree(EnvTest, x86), r.targetTree(EnvProd, x86)); diff != "" {
		t.Errorf("prod differs from test (-test +prod):\n%s", diff)
	}
	contains(t, "reply", res.Markdown(), "Deployed PR #4 to `prod`")
	contains(t, "changelog", r.clog.file("changelog/2025.06.md"), "· test · publish", "· prod · publish")
	h, _ := r.d.History(ctx, EnvProd)
	if len(h) != 1 || h[0].Target != EnvProd {
		t.Errorf("prod history %+v", h)
	}
}

func TestRollback(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a := r.artifact(prefixA)
	b := r.artifact(map[string]string{"etc/motd": "<whiteout>", "usr/bin/bash": "bash-5.3\n"})
	ra := r.deployTest(1, a)
	treeAfterA := r.targetTree(EnvTest, x86)
	rb := r.deployTest(2, b)
	if _, ok := r.targetTree(EnvTest, x86)["etc/motd"]; ok {
		t.Fatal("the whiteout did not delete etc/motd")
	}

	// Refusals first: nothing changes.
	for tag, want := range map[string]string{"nope": "no such tag", rb.Items[0].Tag: "already the newest", "trunk": "reserved"} {
		if _, err := r.d.Rollback(ctx, EnvTest, tag, "carol"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("rollback to %q: %v, want %q", tag, err, want)
		}
	}
	res, err := r.d.Rollback(ctx, EnvTest, "", "carol")
	if err != nil {
		t.Fatalf("%v\n%s", err, res.Markdown())
	}
	if res.Tag != ra.Items[0].Tag || res.FromTag != rb.Items[0].Tag || !res.OK() {
		t.Errorf("rollback result %+v", res)
	}
	if diff := cmp.Diff(treeAfterA, r.targetTree(EnvTest, x86)); diff != "" {
		t.Errorf("tree after rollback differs from A's (-want +got):\n%s", diff)
	}
	if got := r.tags(EnvTest); !cmp.Equal(got, []string{ra.Items[0].Tag}) {
		t.Errorf("tags after rollback %v", got)
	}
	if lin, _ := r.d.Lineage(ctx, EnvTest, x86); lin != NextLineage("", a) {
		t.Errorf("lineage after rollback %q, want A's", lin)
	}
	contains(t, "reply", res.Markdown(), "Rolled `test` back to tag `"+ra.Items[0].Tag+"`", "requested by @carol")
	contains(t, "changelog", r.clog.file("changelog/2025.06.md"), "rollback to `"+ra.Items[0].Tag+"`", "Deployed by: @carol")
	h, _ := r.d.History(ctx, EnvTest)
	if len(h) != 3 || h[0].Action != "rollback" {
		t.Errorf("history %+v", h)
	}
	st, _ := r.d.Status(ctx)
	if len(st) != 1 || st[0].Tag != ra.Items[0].Tag || st[0].PR != 1 {
		t.Errorf("status after rollback %+v", st)
	}
	if _, err := r.d.Rollback(ctx, EnvTest, "", "carol"); err == nil || !strings.Contains(err.Error(), "nothing before it") {
		t.Errorf("second default rollback: %v", err)
	}
}

func TestConcurrentDeploysQueueInOrder(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	r.verify.hook = func(env string, tg sets.Target) {
		mu.Lock()
		order = append(order, tg.Arch)
		first := len(order) == 1
		mu.Unlock()
		if first {
			<-release
		}
	}
	targets := []sets.Target{x86, arm, {Version: "2025.06", OS: "linux", Arch: "riscv64"}}
	errs := make([]error, 3)
	dg := r.artifact(prefixA)
	var wg sync.WaitGroup
	start := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r.d.DeployTest(ctx, req(10+i, sha(i), Item{Target: targets[i], Digest: dg}))
		}()
	}
	start(0)
	waitPending(r, 1)
	start(1)
	if got := <-r.notify.queuedCh; got != "test pr11 pos1" {
		t.Fatalf("notification %q, want test pr11 pos1", got)
	}
	start(2)
	if got := <-r.notify.queuedCh; got != "test pr12 pos2" {
		t.Fatalf("notification %q, want test pr12 pos2", got)
	}
	// A prod deploy does not wait for test's queue.
	if _, err := r.d.Rollback(ctx, EnvProd, "", "carol"); err == nil || !strings.Contains(err.Error(), "no tags") {
		t.Errorf("prod rollback while test is busy: %v", err)
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("deploy %d: %v", i, err)
		}
	}
	if !cmp.Equal(order, []string{"x86_64", "aarch64", "riscv64"}) {
		t.Errorf("ran in order %v, want FIFO", order)
	}
	if got := r.tags(EnvTest); len(got) != 3 || !strings.Contains(got[0], "riscv64-pr12") {
		t.Errorf("tags %v", got)
	}
}

func TestQueuedRequestCancelled(t *testing.T) {
	r := newRig(t)
	release := make(chan struct{})
	r.verify.hook = func(string, sets.Target) { <-release }
	done := make(chan error)
	dg := r.artifact(prefixA)
	go func() {
		_, err := r.d.DeployTest(context.Background(), req(1, sha(1), Item{Target: x86, Digest: dg}))
		done <- err
	}()
	waitPending(r, 1)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := r.d.DeployTest(ctx, req(2, sha(2), Item{Target: arm, Digest: dg}))
		errc <- err
	}()
	<-r.notify.queuedCh
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Errorf("cancelled queued deploy: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var st string
	r.db.QueryRow(`SELECT state FROM deploy_requests WHERE id = 2`).Scan(&st)
	if st != reqAborted {
		t.Errorf("cancelled request state %q", st)
	}
	// The queue still works.
	if _, err := r.d.DeployTest(context.Background(), req(3, sha(3), Item{Target: arm, Digest: r.artifact(prefixA)})); err != nil {
		t.Fatal(err)
	}
}

func TestChangelogCommitRetried(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.clog.failNext = 3 // the deploy's flush, History's flush, the explicit flush
	res := r.deployTest(1, r.artifact(prefixA))
	contains(t, "reply", res.Markdown(), "changelog commit is pending", "409 Conflict")
	if n, _ := r.d.PendingChangelog(ctx); n != 1 {
		t.Fatalf("pending %d, want 1", n)
	}
	// The history is in the database already.
	if h, _ := changelogList(r); len(h) != 1 {
		t.Errorf("history %d entries, want 1", len(h))
	}
	if err := r.d.FlushChangelog(ctx); err == nil {
		t.Fatal("second attempt should fail too")
	}
	// A restart does not lose it.
	r.open()
	if err := r.d.FlushChangelog(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.d.PendingChangelog(ctx); n != 0 {
		t.Errorf("pending %d after flush", n)
	}
	if err := r.d.FlushChangelog(ctx); err != nil {
		t.Fatal(err)
	}
	f := r.clog.file("changelog/2025.06.md")
	if strings.Count(f, "<!-- compatbot:entry") != 1 || len(r.clog.commits) != 1 {
		t.Errorf("want exactly one entry and one commit, got %d commits:\n%s", len(r.clog.commits), f)
	}
}

func changelogList(r *rig) ([]any, error) {
	h, err := r.d.History(context.Background(), "")
	out := make([]any, len(h))
	for i := range h {
		out[i] = h[i]
	}
	return out, err
}

func TestReadLineageRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	if lin, err := ReadLineage(dir); lin != "" || err != nil {
		t.Fatalf("empty tree: %q %v", lin, err)
	}
	os.MkdirAll(filepath.Join(dir, ".compatbot"), 0o755)
	os.WriteFile(filepath.Join(dir, LineageFile), []byte("not-a-lineage\n"), 0o644)
	if _, err := ReadLineage(dir); err == nil || !strings.Contains(err.Error(), "is not a lineage") {
		t.Fatalf("got %v", err)
	}
}

func TestTagName(t *testing.T) {
	for _, tc := range []struct {
		t    sets.Target
		pr   int
		sha  string
		want string
	}{
		{x86, 12, "ABCDEF0123", "2025.06-linux-x86_64-pr12-abcdef0"},
		{sets.Target{Version: "2023.06", OS: "linux", Arch: "riscv64"}, 1, "0000000", "2023.06-linux-riscv64-pr1-0000000"},
		{x86, 0, "abcdef0", ""},
		{sets.Target{Version: "2025.06", OS: "linux", Arch: "x86:64"}, 1, "abcdef0", ""},
		{x86, 1, "abcdef", ""},
	} {
		got, err := TagName(tc.t, tc.pr, tc.sha)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("TagName(%v, %d, %q) = %q, %v; want %q", tc.t, tc.pr, tc.sha, got, err, tc.want)
		}
	}
}

// Two PRs built on the same production base both pass test; while the
// first promotes, the second waits in the queue. When its turn comes,
// production has moved, so it is refused then, not published.
func TestQueuedProdRecheckedWhenItsTurnComes(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	one := req(1, sha(1), Item{Target: x86, Digest: r.artifact(prefixA)})
	two := req(2, sha(2), Item{Target: x86, Digest: r.artifact(map[string]string{"startprefix": "two\n"})})
	for _, rq := range []Request{one, two} {
		if _, err := r.d.DeployTest(ctx, rq); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	r.verify.hook = func(env string, _ sets.Target) {
		if env == EnvProd {
			<-release
		}
	}
	done := make(chan error)
	go func() {
		_, err := r.d.DeployProd(ctx, one)
		done <- err
	}()
	for r.d.pending(EnvProd) == 0 {
		time.Sleep(time.Millisecond)
	}
	errc := make(chan error)
	var res2 Result
	go func() {
		var err error
		res2, err = r.d.DeployProd(ctx, two)
		errc <- err
	}()
	if got := <-r.notify.queuedCh; got != "prod pr2 pos1" {
		t.Fatalf("notification %q", got)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	err := <-errc
	if ref, ok := IsRefusal(err); !ok || !strings.Contains(ref.Reason, "production has moved on") {
		t.Fatalf("second prod deploy: %v", err)
	}
	contains(t, "reply", ReplyText(res2, err), "Refusing `/deploy prod` of PR #2")
	if got := r.tags(EnvProd); len(got) != 1 || !strings.Contains(got[0], "pr1") {
		t.Errorf("prod tags %v", got)
	}
	var st string
	r.db.QueryRow(`SELECT state FROM deploy_requests WHERE env = 'prod' ORDER BY id DESC LIMIT 1`).Scan(&st)
	if st != reqRefused {
		t.Errorf("journal state %q, want refused", st)
	}
}

func TestRollbackForNotifiesThePR(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for i := 1; i <= 2; i++ {
		if _, err := r.d.DeployTest(ctx, req(i, sha(i), Item{Target: x86, Digest: r.artifact(map[string]string{"startprefix": fmt.Sprint(i)})})); err != nil {
			t.Fatal(err)
		}
	}
	res, err := r.d.RollbackFor(ctx, EnvTest, "", Request{Repo: "compat/layer", PR: 9, Requester: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if res.PR != 9 || res.Repo != "compat/layer" || !strings.Contains(res.Tag, "pr1-") {
		t.Errorf("result %+v", res)
	}
	contains(t, "reply", ReplyText(res, err), "Rolled `test` back", "revision")
	h, _ := r.d.History(ctx, EnvTest)
	// The changelog names the PR whose tag the tree went back to.
	if h[0].Action != "rollback" || h[0].PR != 1 || h[0].Deployer != "carol" {
		t.Errorf("history %+v", h[0])
	}
}

func TestStepFailuresAbort(t *testing.T) {
	ctx := context.Background()
	t.Run("transaction held elsewhere", func(t *testing.T) {
		r := newRig(t)
		dg := r.artifact(prefixA)
		tx, err := r.pubs[EnvTest].Transaction(ctx, "other")
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.d.DeployTest(ctx, req(1, sha(1), Item{Target: x86, Digest: dg}))
		failedAt(t, err, "open transaction", "already open")
		contains(t, "reply", res.Markdown(), "Failed at step **open transaction**")
		if err := tx.Abort(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.d.DeployTest(ctx, req(1, sha(1), Item{Target: x86, Digest: dg})); err != nil {
			t.Fatalf("after the other transaction ended: %v", err)
		}
	})
	t.Run("corrupted artifact", func(t *testing.T) {
		r := newRig(t)
		dg := r.artifact(prefixA)
		art, err := r.store.Get(dg)
		if err != nil {
			t.Fatal(err)
		}
		tarball, err := os.ReadFile(art.TarPath())
		if err != nil {
			t.Fatal(err)
		}
		i := strings.Index(string(tarball), "bash-5.2")
		tarball[i] = 'B'
		if err := os.WriteFile(art.TarPath(), tarball, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = r.d.DeployTest(ctx, req(1, sha(1), Item{Target: x86, Digest: dg}))
		failedAt(t, err, "apply", "the artifact is corrupt")
		r.noOpenTransaction(EnvTest)
		if tags := r.tags(EnvTest); len(tags) != 0 {
			t.Errorf("tags %v: a corrupted artifact was published", tags)
		}
	})
}

// Lineage lives in the published tree, so a new database (lost, or a
// second compatbot) still sees what a build must be based on.
func TestLineageSurvivesDatabaseLoss(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	dg := r.artifact(prefixA)
	r.deployTest(1, dg)
	r.db.Close()
	if err := os.Remove(filepath.Join(r.dir, "state.db")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(r.dir, "state.db-wal"))
	os.Remove(filepath.Join(r.dir, "state.db-shm"))
	r.db = nil
	r.open()
	if lin, err := r.d.Lineage(ctx, EnvTest, x86); err != nil || lin != NextLineage("", dg) {
		t.Fatalf("lineage after database loss %q, %v", lin, err)
	}
	// Without the database's test records, promotion is refused, not guessed.
	_, err := r.d.DeployProd(ctx, req(1, sha(1), Item{Target: x86, Digest: dg}))
	if _, ok := IsRefusal(err); !ok {
		t.Fatalf("prod without test records: %v", err)
	}
}

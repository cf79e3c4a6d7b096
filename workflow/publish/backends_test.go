package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/google/go-cmp/cmp"
)

// backend is one Publisher under the tests both must pass: where the
// Publisher contract speaks, local and cvmfs behave the same.
type backend struct {
	name string
	open func(t *testing.T) Publisher
	// rev0 is the revision before the first publish: cvmfs_server mkfs
	// makes revision 1, a new local repository has none.
	rev0 Revision
	// busy is what the backend's ErrTransactionOpen says about the holder.
	busy string
}

func backends() []backend {
	return []backend{
		{name: "local", open: func(t *testing.T) Publisher { return newLocal(t) }, busy: "pid " + strconv.Itoa(os.Getpid())},
		{name: "cvmfs", open: func(t *testing.T) Publisher { c, _ := newCvmfs(t); return c }, rev0: 1, busy: "already in a transaction"},
	}
}

func currentTree(t *testing.T, p Publisher, path string) (map[string]string, Revision) {
	t.Helper()
	dir, rev, err := p.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return testtree.Contents(t, filepath.Join(dir, path)), rev
}

func TestTagsDiffRollback(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			p := b.open(t)
			for i, cs := range [][]change{
				{{path: "a", content: "1"}, {path: "b", content: "b"}},
				{{path: "a", content: "2"}, {path: "c/d", content: "d"}},
				{{path: "b", del: true}},
			} {
				tag := fmt.Sprintf("v%d", i+1)
				if rev := publishChanges(t, p, scope, tag, cs); rev != b.rev0+Revision(i+1) {
					t.Errorf("publish %s: revision %d, want %d", tag, rev, b.rev0+Revision(i+1))
				}
			}
			names := func() (out []string) {
				tags, err := p.Tags(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, tg := range tags {
					out = append(out, fmt.Sprintf("%s@%d", tg.Name, tg.Revision-b.rev0))
				}
				return out
			}
			if got, want := names(), []string{"v3@3", "v2@2", "v1@1"}; !cmp.Equal(got, want) {
				t.Fatalf("Tags (revisions after rev0) = %v, want %v", got, want)
			}
			tags, _ := p.Tags(ctx)
			if tags[0].Description != "publish v3" || time.Since(tags[0].Timestamp) > time.Minute {
				t.Errorf("tag v3 = %+v, want its description and a timestamp of now", tags[0])
			}
			changes, err := p.Diff(ctx, "v1", "v3")
			if err != nil {
				t.Fatal(err)
			}
			want := []PathChange{
				{Path: scope + "/a", Kind: PathModified},
				{Path: scope + "/b", Kind: PathRemoved},
				{Path: scope + "/c", Kind: PathAdded, Dir: true},
				{Path: scope + "/c/d", Kind: PathAdded},
			}
			if !cmp.Equal(changes, want) {
				t.Errorf("Diff v1 v3: %s", cmp.Diff(want, changes))
			}
			if _, err := p.Diff(ctx, "v1", "nope"); !errors.Is(err, ErrUnknownTag) {
				t.Errorf("Diff to an unknown tag: %v", err)
			}

			rev, err := p.Rollback(ctx, "v1")
			if err != nil {
				t.Fatal(err)
			}
			got, cur := currentTree(t, p, scope)
			if rev != b.rev0+4 || cur != rev || !cmp.Equal(got, map[string]string{"a": "1", "b": "b"}) {
				t.Errorf("rollback: revision %d, Current %d with %v; want a new revision %d with v1's tree", rev, cur, got, b.rev0+4)
			}
			if got, want := names(), []string{"v1@4"}; !cmp.Equal(got, want) {
				t.Errorf("tags after rollback = %v, want %v (newer tags removed, v1 moved)", got, want)
			}
			if _, err := p.Rollback(ctx, "v3"); !errors.Is(err, ErrUnknownTag) {
				t.Errorf("rollback to a removed tag: %v", err)
			}
			for _, reserved := range []string{"trunk", "trunk-previous"} {
				if _, err := p.Rollback(ctx, reserved); err == nil {
					t.Errorf("rollback to %s accepted", reserved)
				}
			}
			// Publishing continues from the rolled-back tree.
			publishChanges(t, p, scope, "v5", []change{{path: "z", content: "z"}})
			if got, _ := currentTree(t, p, scope); !cmp.Equal(got, map[string]string{"a": "1", "b": "b", "z": "z"}) {
				t.Errorf("publish after rollback: %v", got)
			}
		})
	}
}

func TestOneTransactionAtATime(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			p := b.open(t)
			const n = 8
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				won  []Tx
				lost []error
			)
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tx, err := p.Transaction(ctx, scope)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						lost = append(lost, err)
					} else {
						won = append(won, tx)
					}
				}()
			}
			wg.Wait()
			if len(won) != 1 {
				t.Fatalf("%d transactions opened concurrently, want exactly 1 (errors %v)", len(won), lost)
			}
			for _, err := range lost {
				if !errors.Is(err, ErrTransactionOpen) || !strings.Contains(err.Error(), b.busy) {
					t.Errorf("loser got %v, want ErrTransactionOpen saying %q", err, b.busy)
				}
			}
			if err := won[0].Abort(ctx); err != nil {
				t.Fatal(err)
			}
			if err := won[0].Abort(ctx); !errors.Is(err, ErrNoTransaction) {
				t.Errorf("second Abort: %v, want ErrNoTransaction", err)
			}
			// The lock is free again.
			tx, err := p.Transaction(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			tx.Abort(ctx)
		})
	}
}

// A refused tag leaves the transaction open with its changes: the caller
// can publish it under a good tag.
func TestRefusedTagKeepsTransactionOpen(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			p := b.open(t)
			publishChanges(t, p, scope, "v1", []change{{path: "f", content: "1"}})
			tx, err := p.Transaction(ctx, scope)
			if err != nil {
				t.Fatal(err)
			}
			apply(t, tx.Dir(), []change{{path: "f", content: "2"}})
			for _, bad := range []string{"trunk", "trunk-previous", "a b", "x;rm -rf /", "v1"} {
				if _, err := tx.Publish(ctx, bad, "m"); err == nil {
					t.Errorf("Publish with tag %q accepted", bad)
				}
			}
			rev, err := tx.Publish(ctx, "v2", "m")
			if err != nil || rev != b.rev0+2 {
				t.Fatalf("Publish v2 after refusals = %d, %v; want revision %d", rev, err, b.rev0+2)
			}
			if got, _ := currentTree(t, p, scope); !cmp.Equal(got, map[string]string{"f": "2"}) {
				t.Errorf("published tree %v, want f=2", got)
			}
		})
	}
}

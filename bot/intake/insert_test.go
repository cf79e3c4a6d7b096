package intake

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// insertMany writes a run of deliveries with one statement per table; the
// outcome of each must be what one statement per delivery would give: a
// repeated id is a duplicate of its first occurrence in the run or of a row
// stored before, every new one gets its own seq and its own payload, and
// running the same ops again (the writer's retry after a failed batch)
// sets every result afresh.
func TestInsertManyMatchesOneByOne(t *testing.T) {
	f := newFixture(t, &recorder{}, Options{}, false)
	ctx := context.Background()
	if code, _ := f.post("pull_request", "stored-before", payloadFor("o/r", 1), secret); code != http.StatusAccepted {
		t.Fatalf("first post: %d", code)
	}
	conn, err := f.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := newStmtCache(conn)
	defer c.close()

	mk := func(id string, pr int, st string) *op {
		d := &Delivery{ID: id, Event: "pull_request", Action: "synchronize", Key: fmt.Sprintf("o/r#%d", pr),
			Payload: payloadFor("o/r", pr), ReceivedAt: time.Unix(1700000000, int64(pr))}
		return &op{ins: &insertOp{d: d, dkey: dedupKey(d.ID), st: st}}
	}
	// More than insertChunk, so a repeated id also spans two statements.
	var ops []*op
	wantDup := map[int]bool{}
	for i := range insertChunk + 7 {
		id := fmt.Sprintf("d-%d", i)
		switch {
		case i == 3 || i == insertChunk+2: // repeats d-1, in the same chunk and in the next
			id = "d-1"
			wantDup[i] = true
		case i == 5:
			id = "stored-before"
			wantDup[i] = true
		}
		st := StateQueued
		if i%4 == 0 {
			st = StateIgnored
		}
		ops = append(ops, mk(id, 100+i, st))
	}
	for attempt := range 2 {
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		if err := c.insertMany(ctx, ops); err != nil {
			t.Fatal(err)
		}
		end := "ROLLBACK"
		if attempt == 1 {
			end = "COMMIT"
		}
		if _, err := conn.ExecContext(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int64]bool{}
	for i, o := range ops {
		r := o.ins.res
		if r.duplicate != wantDup[i] {
			t.Errorf("op %d (%s): duplicate = %v, want %v", i, o.ins.d.ID, r.duplicate, wantDup[i])
		}
		if r.duplicate {
			if r.seq != 0 {
				t.Errorf("op %d: duplicate with seq %d", i, r.seq)
			}
			continue
		}
		if r.seq == 0 || seen[r.seq] {
			t.Errorf("op %d: seq %d not new", i, r.seq)
		}
		seen[r.seq] = true
		got := f.get(o.ins.d.ID)
		if got.Seq != r.seq || got.State != o.ins.st || got.Key != o.ins.d.Key || !bytes.Equal(got.Payload, o.ins.d.Payload) {
			t.Errorf("op %d: stored seq %d state %s key %s payload %q; want seq %d state %s key %s payload %q",
				i, got.Seq, got.State, got.Key, got.Payload, r.seq, o.ins.st, o.ins.d.Key, o.ins.d.Payload)
		}
	}
	// The first d-1 (pr 101) is the one stored.
	if got := f.get("d-1"); got.Key != "o/r#101" {
		t.Errorf("d-1 stored from %s, want the first occurrence (o/r#101)", got.Key)
	}
	if got := f.get("stored-before"); got.Key != "o/r#1" {
		t.Errorf("stored-before overwritten: key %s", got.Key)
	}
	if n, want := f.count(), 1+len(ops)-len(wantDup); n != want {
		t.Errorf("%d rows, want %d", n, want)
	}
}

// Concurrent redeliveries of the same ids, held together by a long commit
// delay so they share transactions: each id is accepted exactly once, the
// others are answered as duplicates, and each is processed once.
func TestConcurrentRedeliveriesInOneBatch(t *testing.T) {
	rec := &recorder{}
	f := newFixture(t, rec, Options{CommitDelay: 20 * time.Millisecond}, true)
	const ids, copies = 12, 4
	var mu sync.Mutex
	accepted := map[string]int{}
	var wg sync.WaitGroup
	for c := range copies {
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("batch-%d", i)
				code, msg := f.post("pull_request", id, payloadFor("o/r", i+1), secret)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case code == http.StatusAccepted:
					accepted[id]++
				case code == http.StatusOK && strings.Contains(msg, "duplicate"):
				default:
					t.Errorf("copy %d of %s: %d %q", c, id, code, msg)
				}
			}()
		}
	}
	wg.Wait()
	if commits, rows := f.reg.Histogram("compatbot_intake_commit_batch_size", "", nil).Totals(); rows <= float64(commits) {
		t.Errorf("%v writes in %v commits: the deliveries were not batched, so this tested nothing", rows, commits)
	}
	for i := range ids {
		id := fmt.Sprintf("batch-%d", i)
		if accepted[id] != 1 {
			t.Errorf("%s accepted %d times, want once", id, accepted[id])
		}
		f.waitState(id, StateDone)
	}
	if n := f.count(); n != ids {
		t.Errorf("%d rows, want %d", n, ids)
	}
	if n := rec.n(); n != ids {
		t.Errorf("processed %d times, want %d", n, ids)
	}
}

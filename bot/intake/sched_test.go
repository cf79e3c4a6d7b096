package intake

import (
	"testing"
	"time"
)

func TestSchedOrderAndBackoff(t *testing.T) {
	s := newSched()
	now := time.Now()
	s.add("k1", 5, time.Time{})
	s.add("k2", 3, time.Time{})
	s.add("k1", 7, time.Time{})
	s.add("k1", 2, time.Time{}) // found by a rescan: older, goes first
	if s.add("k1", 5, time.Time{}) {
		t.Error("a known seq was added twice")
	}
	type step struct {
		key string
		seq int64
	}
	next := func() step {
		k, seq, _ := s.next(now)
		return step{k, seq}
	}
	if got := next(); got != (step{"k1", 2}) {
		t.Fatalf("first = %v, want k1/2 (oldest head)", got)
	}
	if got := next(); got != (step{"k2", 3}) {
		t.Fatalf("second = %v, want k2/3 (k1 is busy)", got)
	}
	if got := next(); got.seq != 0 {
		t.Fatalf("third = %v, want nothing: both keys busy", got)
	}
	// k1's head fails and waits 1s: k1 stays blocked behind it.
	s.finish("k1", 2, false, now.Add(time.Second))
	s.finish("k2", 3, true, time.Time{})
	if _, seq, wait := s.next(now); seq != 0 || wait != time.Second {
		t.Fatalf("during backoff: seq %d wait %v, want none and 1s", seq, wait)
	}
	// A seq older than the running head is queued behind it, not before.
	if k, seq, _ := s.next(now.Add(time.Second)); k != "k1" || seq != 2 {
		t.Fatalf("after backoff = %s/%d, want k1/2 again", k, seq)
	}
	s.add("k1", 1, time.Time{})
	s.finish("k1", 2, true, time.Time{})
	var order []int64
	for {
		_, seq, _ := s.next(now.Add(time.Second))
		if seq == 0 {
			break
		}
		order = append(order, seq)
		s.finish("k1", seq, true, time.Time{})
	}
	if len(order) != 3 || order[0] != 1 || order[1] != 5 || order[2] != 7 {
		t.Errorf("rest ran %v, want [1 5 7]", order)
	}
	if d := s.depth(); d != 0 {
		t.Errorf("depth %d after all finished", d)
	}
	if _, _, wait := s.next(now); wait != -1 {
		t.Errorf("empty scheduler wait = %v, want -1", wait)
	}
}

func TestBackoffGrowsAndCaps(t *testing.T) {
	in := &Intake{opts: Options{BackoffBase: time.Second, BackoffMax: 10 * time.Second}}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 30: 10 * time.Second} {
		for i := 0; i < 20; i++ {
			if d := in.backoff(attempt); d < want/2 || d > want {
				t.Errorf("backoff(%d) = %v, want within [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

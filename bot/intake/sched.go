package intake

import (
	"container/heap"
	"sort"
	"sync"
	"time"
)

// The scheduler is an in-memory index of the pending deliveries (queued or
// waiting to retry) in the database: a FIFO per Key, and two heaps of keys
// whose head can run now (by order of receipt) or later (by due time). The
// database stays the source of truth; the index is rebuilt from it on start
// and kept in step by the writer's after-commit callbacks, so dispatching
// costs no query.
type entry struct {
	seq  int64
	next time.Time
}

type keyQ struct {
	key     string
	items   []*entry // by seq
	running bool
	heap    *keyHeap // the heap the key is in, nil when in none
	idx     int
}

type sched struct {
	mu      sync.Mutex
	keys    map[string]*keyQ
	known   map[int64]*keyQ
	ready   keyHeap // head due; ordered by head seq
	delayed keyHeap // head in backoff; ordered by head next
	wake    chan struct{}
}

func newSched() *sched {
	s := &sched{keys: map[string]*keyQ{}, known: map[int64]*keyQ{}, wake: make(chan struct{}, 1)}
	s.ready.less = func(a, b *keyQ) bool { return a.items[0].seq < b.items[0].seq }
	s.delayed.less = func(a, b *keyQ) bool {
		x, y := a.items[0], b.items[0]
		if !x.next.Equal(y.next) {
			return x.next.Before(y.next)
		}
		return x.seq < y.seq
	}
	return s
}

func (s *sched) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// add indexes a pending delivery; a seq already known is left alone, and
// the return says whether it was new. If known and not running, its due
// time is updated (a maintainer's retry makes a waiting delivery due now).
func (s *sched) add(key string, seq int64, next time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.known[seq]; ok {
		if !k.running || k.items[0].seq != seq {
			for _, e := range k.items {
				if e.seq == seq {
					e.next = next
				}
			}
			s.place(k)
			s.signal()
		}
		return false
	}
	k := s.keys[key]
	if k == nil {
		k = &keyQ{key: key, idx: -1}
		s.keys[key] = k
	}
	e := &entry{seq: seq, next: next}
	i := sort.Search(len(k.items), func(i int) bool { return k.items[i].seq > seq })
	if i == len(k.items) {
		k.items = append(k.items, e)
	} else {
		if i == 0 && k.running {
			// Never overtake the running head: it stays first.
			i = 1
		}
		k.items = append(k.items, nil)
		copy(k.items[i+1:], k.items[i:])
		k.items[i] = e
	}
	s.known[seq] = k
	s.place(k)
	s.signal()
	return true
}

// place puts k in the heap its head belongs in, or in none.
func (s *sched) place(k *keyQ) {
	if k.heap != nil {
		heap.Remove(k.heap, k.idx)
	}
	if k.running {
		return
	}
	if len(k.items) == 0 {
		delete(s.keys, k.key)
		return
	}
	if k.items[0].next.After(time.Now()) {
		heap.Push(&s.delayed, k)
	} else {
		heap.Push(&s.ready, k)
	}
}

// next hands out the oldest due head whose key is idle, marking the key
// running; otherwise it says how long until a delayed head is due (-1: no
// pending work).
func (s *sched) next(now time.Time) (key string, seq int64, wait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.delayed.Len() > 0 && !s.delayed.ks[0].items[0].next.After(now) {
		k := heap.Pop(&s.delayed).(*keyQ)
		heap.Push(&s.ready, k)
	}
	if s.ready.Len() > 0 {
		k := heap.Pop(&s.ready).(*keyQ)
		k.running = true
		return k.key, k.items[0].seq, 0
	}
	if s.delayed.Len() > 0 {
		return "", 0, s.delayed.ks[0].items[0].next.Sub(now)
	}
	return "", 0, -1
}

// finish ends the run of key's head seq: removed when its outcome is final,
// else kept at the head, due at next.
func (s *sched) finish(key string, seq int64, final bool, next time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[key]
	if k == nil || len(k.items) == 0 || k.items[0].seq != seq {
		return
	}
	k.running = false
	if final {
		k.items[0] = nil
		k.items = k.items[1:]
		delete(s.known, seq)
	} else {
		k.items[0].next = next
	}
	s.place(k)
	s.signal()
}

// depth is the number of pending deliveries (running included).
func (s *sched) depth() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.known)
}

type keyHeap struct {
	ks   []*keyQ
	less func(a, b *keyQ) bool
}

func (h *keyHeap) Len() int           { return len(h.ks) }
func (h *keyHeap) Less(i, j int) bool { return h.less(h.ks[i], h.ks[j]) }
func (h *keyHeap) Swap(i, j int) {
	h.ks[i], h.ks[j] = h.ks[j], h.ks[i]
	h.ks[i].idx = i
	h.ks[j].idx = j
}
func (h *keyHeap) Push(x any) {
	k := x.(*keyQ)
	k.idx = len(h.ks)
	k.heap = h
	h.ks = append(h.ks, k)
}
func (h *keyHeap) Pop() any {
	n := len(h.ks) - 1
	k := h.ks[n]
	h.ks[n] = nil
	h.ks = h.ks[:n]
	k.idx = -1
	k.heap = nil
	return k
}

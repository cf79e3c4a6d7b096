package deploy

import (
	"context"
)

// envQueue is the FIFO of requests for one environment. The head runs;
// the others wait for their ticket's ready channel. Every ticket is also a
// deploy_requests row, inserted while holding the queue's lock, so the
// database order (row id) and the in-process order are the same and a
// restart resumes the queue in the order it had.
type envQueue struct {
	tickets []*ticket
}

type ticket struct {
	id    int64
	ready chan struct{}
}

// enqueue inserts the request row with insert and appends a ticket for it;
// position is how many requests are ahead (0: it runs now).
func (d *Engine) enqueue(env string, insert func() (int64, error)) (*ticket, int, error) {
	d.qmu.Lock()
	defer d.qmu.Unlock()
	q := d.queues[env]
	if q == nil {
		q = &envQueue{}
		d.queues[env] = q
	}
	id, err := insert()
	if err != nil {
		return nil, 0, err
	}
	t := &ticket{id: id, ready: make(chan struct{})}
	q.tickets = append(q.tickets, t)
	pos := len(q.tickets) - 1
	if pos == 0 {
		close(t.ready)
	}
	return t, pos, nil
}

// waitTurn blocks until t is at the head of its queue, or ctx ends; then
// t leaves the queue (passing the turn on if it had just got it).
func (d *Engine) waitTurn(ctx context.Context, env string, t *ticket) error {
	select {
	case <-t.ready:
		return nil
	case <-ctx.Done():
		d.release(env, t)
		return ctx.Err()
	}
}

// release removes t from its queue and wakes the new head.
func (d *Engine) release(env string, t *ticket) {
	d.qmu.Lock()
	defer d.qmu.Unlock()
	q := d.queues[env]
	if q == nil {
		return
	}
	for i, x := range q.tickets {
		if x == t {
			q.tickets = append(q.tickets[:i], q.tickets[i+1:]...)
			if i == 0 && len(q.tickets) > 0 {
				close(q.tickets[0].ready)
			}
			return
		}
	}
}

// pending is how many requests are queued or running in env.
func (d *Engine) pending(env string) int {
	d.qmu.Lock()
	defer d.qmu.Unlock()
	if q := d.queues[env]; q != nil {
		return len(q.tickets)
	}
	return 0
}

package intake

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClosed is returned for work submitted after Close.
var ErrClosed = errors.New("intake is closed")

// An op is one unit of work for the writer. run may be called twice (once in
// a batch, once alone if the batch failed), so it must only touch the
// database and its own fields; after runs once the batch is durable, in
// submission order, before the submitter is released.
type op struct {
	run   func(ctx context.Context, c *sql.Conn) error
	ins   *insertOp // instead of run: a new delivery, batched with its neighbours
	after func()
	err   error
	done  chan struct{}
}

// writer is the single goroutine that writes to the database. SQLite has
// one writer at a time anyway; funnelling every write through one goroutine
// turns N concurrent commits (N fsyncs) into one transaction per batch (one
// fsync), while each submitter still returns only once its write is on disk.
type writer struct {
	conn     *sql.Conn
	ops      chan *op
	mu       sync.RWMutex // held shared while submitting, exclusively to close
	closed   bool
	quit     chan struct{}
	exited   chan struct{}
	maxBatch int
	linger   time.Duration
	onBatch  func(n int)
	// insertMany runs a run of consecutive insert ops (op.ins set).
	insertMany func(ctx context.Context, ops []*op) error
	ckptReq    chan chan error // checkpoint requests, run between batches
}

func newWriter(ctx context.Context, db *sql.DB, maxBatch int, linger time.Duration, onBatch func(int)) (*writer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &writer{conn: conn, ops: make(chan *op, 4*maxBatch), quit: make(chan struct{}), exited: make(chan struct{}), maxBatch: maxBatch, linger: linger, onBatch: onBatch, ckptReq: make(chan chan error)}
	go w.loop()
	return w, nil
}

// do runs o in the next batch and waits until that batch is committed.
func (w *writer) do(o *op) error {
	o.done = make(chan struct{})
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrClosed
	}
	w.ops <- o
	w.mu.RUnlock()
	<-o.done
	return o.err
}

// checkpoint copies what is left of the WAL into the database file, from
// the writer's connection between two of its transactions. SQLite starts
// the WAL from its beginning again only when a write transaction begins
// with every frame already copied. A checkpoint from another connection
// never gets there under steady load, because the writer commits new
// frames while it copies: the WAL then grows for as long as the load lasts
// (300 MB for 40,000 deliveries of 2 KiB in BenchmarkIntake). Run right
// after such a checkpoint has copied the bulk, this one has little left to
// copy, so the writer pauses only briefly.
func (w *writer) checkpoint() error {
	req := make(chan error, 1)
	select {
	case w.ckptReq <- req:
		return <-req
	case <-w.quit:
		return ErrClosed
	}
}

// close stops the loop, then runs release (statements prepared on the
// connection must be closed before it: modernc's driver crashes on a
// statement whose connection is gone), then closes the connection.
func (w *writer) close(release ...func()) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.exited
		return
	}
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	<-w.exited
	for _, f := range release {
		f()
	}
	w.conn.Close()
}

func (w *writer) loop() {
	defer close(w.exited)
	batch := make([]*op, 0, w.maxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	lastSize := 0
	for {
		batch = batch[:0]
		select {
		case o := <-w.ops:
			batch = append(batch, o)
		case req := <-w.ckptReq:
			_, err := w.conn.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`)
			req <- err
			continue
		case <-w.quit:
			// Submitters can no longer add (closed is set under the lock
			// they hold while sending), so what is buffered is all there is.
			for {
				select {
				case o := <-w.ops:
					batch = append(batch, o)
					if len(batch) == w.maxBatch {
						w.commit(batch)
						batch = batch[:0]
					}
				default:
					if len(batch) > 0 {
						w.commit(batch)
					}
					return
				}
			}
		}
	fill:
		for len(batch) < w.maxBatch {
			select {
			case o := <-w.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		// With concurrent submitters (the last batch had company), wait a
		// moment for more: an fsync costs far more than the delay, and on
		// a small machine its CPU is what limits throughput. A lone
		// submitter is never delayed.
		if w.linger > 0 && lastSize > 1 && len(batch) < w.maxBatch {
			timer.Reset(w.linger)
		linger:
			for len(batch) < w.maxBatch {
				select {
				case o := <-w.ops:
					batch = append(batch, o)
				case <-timer.C:
					break linger
				}
			}
			timer.Stop()
		}
		lastSize = len(batch)
		w.commit(batch)
	}
}

// commit runs a batch in one transaction. If any op fails the transaction
// is rolled back and each op is run in a transaction of its own, so one bad
// op cannot fail the others.
func (w *writer) commit(batch []*op) {
	ctx := context.Background()
	if w.onBatch != nil {
		w.onBatch(len(batch))
	}
	err := w.tx(ctx, batch)
	if err == nil {
		w.release(batch)
		return
	}
	if len(batch) == 1 {
		batch[0].err = err
		w.release(batch)
		return
	}
	for _, o := range batch {
		o.err = w.tx(ctx, []*op{o})
		w.release([]*op{o})
	}
}

func (w *writer) release(batch []*op) {
	for _, o := range batch {
		if o.err == nil && o.after != nil {
			o.after()
		}
		close(o.done)
	}
}

func (w *writer) tx(ctx context.Context, batch []*op) error {
	if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	for i := 0; i < len(batch); {
		var err error
		if batch[i].ins == nil {
			err = batch[i].run(ctx, w.conn)
			i++
		} else {
			j := i + 1
			for j < len(batch) && batch[j].ins != nil {
				j++
			}
			err = w.insertMany(ctx, batch[i:j])
			i = j
		}
		if err != nil {
			w.conn.ExecContext(ctx, "ROLLBACK")
			return err
		}
	}
	if _, err := w.conn.ExecContext(ctx, "COMMIT"); err != nil {
		w.conn.ExecContext(ctx, "ROLLBACK")
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

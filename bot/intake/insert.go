package intake

import (
	"context"
	"database/sql"
	"errors"
	"strings"
)

// insertOp is a new delivery waiting in the writer's queue. Consecutive
// insertOps of one batch are written with one multi-row INSERT per table
// instead of two statement executions per delivery: with modernc's driver
// each execution costs several microseconds of binding, VDBE setup and
// reset, which at thousands of deliveries a second is a large part of the
// writer's CPU.
type insertOp struct {
	d        *Delivery
	dkey     string
	st       string
	attempts int
	started  int64
	res      insertResult
}

// insertChunk bounds the rows of one statement, so the prepared statements
// kept (one per row count actually seen) stay few and small.
const insertChunk = 32

// stmtCache holds the multi-row INSERT statements, prepared on the writer's
// connection, by row count. Only the writer goroutine uses it, then Close.
type stmtCache struct {
	conn     *sql.Conn
	rows     map[int]*sql.Stmt // intake_deliveries
	payloads map[int]*sql.Stmt // intake_payloads
	args     []any             // reused; cleared after each use
}

func newStmtCache(conn *sql.Conn) *stmtCache {
	return &stmtCache{conn: conn, rows: map[int]*sql.Stmt{}, payloads: map[int]*sql.Stmt{}}
}

func (c *stmtCache) close() error {
	var errs []error
	for _, m := range []map[int]*sql.Stmt{c.rows, c.payloads} {
		for n, s := range m {
			errs = append(errs, s.Close())
			delete(m, n)
		}
	}
	return errors.Join(errs...)
}

func (c *stmtCache) get(ctx context.Context, m map[int]*sql.Stmt, n int, head, row, tail string) (*sql.Stmt, error) {
	if s := m[n]; s != nil {
		return s, nil
	}
	var b strings.Builder
	b.WriteString(head)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	b.WriteString(tail)
	s, err := c.conn.PrepareContext(ctx, b.String())
	if err != nil {
		return nil, err
	}
	m[n] = s
	return s, nil
}

// insertMany stores the deliveries of ops, in their order, and records in
// each whether it was new (and its seq) or a duplicate of one stored
// before or earlier in ops. It may run twice for the same ops (the writer
// retries ops alone when a batch fails), so it sets every result afresh.
func (c *stmtCache) insertMany(ctx context.Context, ops []*op) error {
	for _, o := range ops {
		o.ins.res = insertResult{}
	}
	for len(ops) > 0 {
		n := min(len(ops), insertChunk)
		if err := c.insertChunk(ctx, ops[:n]); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

func (c *stmtCache) insertChunk(ctx context.Context, ops []*op) error {
	s, err := c.get(ctx, c.rows, len(ops),
		`INSERT INTO intake_deliveries(id, dkey, event, action, key, installation, state, attempts, received_at, started_at) VALUES `,
		`(?,?,?,?,?,?,?,?,?,?)`, ` ON CONFLICT(dkey) DO NOTHING RETURNING seq, dkey`)
	if err != nil {
		return err
	}
	args := c.args[:0]
	defer func() { clear(args[:cap(args)]); c.args = args[:0] }()
	for _, o := range ops {
		in := o.ins
		d := in.d
		args = append(args, d.ID, in.dkey, d.Event, d.Action, d.Key, d.Installation, in.st, in.attempts, d.ReceivedAt.UnixNano(), in.started)
	}
	rows, err := s.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	// RETURNING gives the rows actually inserted, in no promised order. A
	// delivery id twice in one statement is inserted for its first
	// occurrence only (the later ones conflict with it), as if each had
	// been a statement of its own.
	inserted := 0
	for rows.Next() {
		var seq int64
		var dkey sql.RawBytes
		if err := rows.Scan(&seq, &dkey); err != nil {
			rows.Close()
			return err
		}
		for _, o := range ops {
			if o.ins.res.seq == 0 && o.ins.dkey == string(dkey) {
				o.ins.res.seq = seq
				inserted++
				break
			}
		}
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return err
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if inserted == 0 {
		for _, o := range ops {
			o.ins.res.duplicate = true
		}
		return nil
	}
	s, err = c.get(ctx, c.payloads, inserted, `INSERT INTO intake_payloads(seq, payload) VALUES `, `(?,?)`, ``)
	if err != nil {
		return err
	}
	args = args[:0]
	for _, o := range ops {
		if o.ins.res.seq == 0 {
			o.ins.res.duplicate = true
			continue
		}
		payload := o.ins.d.Payload
		if payload == nil {
			payload = []byte{}
		}
		args = append(args, o.ins.res.seq, payload)
	}
	_, err = s.ExecContext(ctx, args...)
	return err
}

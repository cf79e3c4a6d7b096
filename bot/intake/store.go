package intake

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/compatbot/compatbot/workflow/state"
)

// States a delivery moves through. queued → running → done, or → retry
// (back to running when next_attempt_at passes) → … → dead after the last
// attempt; ignored for events no processor handles (stored for the record
// and for dedup, never processed).
const (
	StateQueued  = "queued"
	StateRunning = "running"
	StateDone    = "done"
	StateRetry   = "retry"
	StateDead    = "dead"
	StateIgnored = "ignored"
)

// States lists every state, for validating user input.
var States = []string{StateQueued, StateRunning, StateDone, StateRetry, StateDead, StateIgnored}

var migrations = []string{
	`CREATE TABLE intake_deliveries (
		seq INTEGER PRIMARY KEY,
		id TEXT NOT NULL,
		dkey TEXT NOT NULL UNIQUE, -- dedupKey(id)
		event TEXT NOT NULL,
		action TEXT NOT NULL DEFAULT '',
		key TEXT NOT NULL,
		installation INTEGER NOT NULL DEFAULT 0,
		state TEXT NOT NULL CHECK (state IN ('queued','running','done','retry','dead','ignored')),
		attempts INTEGER NOT NULL DEFAULT 0,
		last_error TEXT NOT NULL DEFAULT '',
		received_at INTEGER NOT NULL,
		next_attempt_at INTEGER NOT NULL DEFAULT 0,
		started_at INTEGER NOT NULL DEFAULT 0,
		finished_at INTEGER NOT NULL DEFAULT 0,
		run_ns INTEGER NOT NULL DEFAULT 0
	);
	-- No index on state: the scheduler keeps the pending set in memory and
	-- reads the table by state only on start, so each insert touches one
	-- index (id, for dedup) and not two.
	-- Payloads live apart from the state that changes: SQLite rewrites a
	-- whole row, overflow pages included, on every UPDATE, so a 25 KiB
	-- payload in the row would be written again at each claim and outcome.
	CREATE TABLE intake_payloads (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL);
	CREATE TABLE intake_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
	INSERT INTO intake_meta(name, value) VALUES ('generation', 0);`,
}

// Record is a stored delivery with its processing history.
type Record struct {
	Delivery
	Seq           int64 // order of receipt
	State         string
	LastError     string
	NextAttemptAt time.Time // zero unless State is retry
	StartedAt     time.Time // start of the last attempt
	FinishedAt    time.Time // end of the last attempt
	RunTime       time.Duration
}

// Store is the deliveries table without the server: what maintenance
// commands (deliveries list|retry) need while a server may be running on
// the same database.
type Store struct {
	db *state.DB
}

// OpenStore makes sure the intake's tables exist in db.
func OpenStore(ctx context.Context, db *state.DB) (*Store, error) {
	if err := db.EnsureSchema(ctx, "intake", migrations...); err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

const recordColumns = `seq, id, event, action, key, installation, state, attempts, last_error, received_at, next_attempt_at, started_at, finished_at, run_ns`

type scanner interface{ Scan(...any) error }

// scanRecord scans recordColumns, then into extra the columns that follow
// them.
func scanRecord(s scanner, extra ...any) (*Record, error) {
	var r Record
	var recv, next, start, fin, run int64
	dest := append([]any{&r.Seq, &r.ID, &r.Event, &r.Action, &r.Key, &r.Installation, &r.State, &r.Attempt, &r.LastError, &recv, &next, &start, &fin, &run}, extra...)
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	r.ReceivedAt = fromNanos(recv)
	r.NextAttemptAt = fromNanos(next)
	r.StartedAt = fromNanos(start)
	r.FinishedAt = fromNanos(fin)
	r.RunTime = time.Duration(run)
	return &r, nil
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// List returns deliveries in order of receipt, all of them when st is "",
// else those in state st; at most limit when limit > 0 (the newest limit).
func (s *Store) List(ctx context.Context, st string, limit int) ([]*Record, error) {
	q := `SELECT ` + recordColumns + ` FROM intake_deliveries`
	var args []any
	if st != "" {
		if !validState(st) {
			return nil, fmt.Errorf("unknown state %q (want one of %s)", st, strings.Join(States, ", "))
		}
		q += ` WHERE state = ?`
		args = append(args, st)
	}
	q += ` ORDER BY seq DESC`
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// ErrNotFound is returned for an unknown delivery id.
var ErrNotFound = errors.New("no such delivery")

// Get returns one delivery with its payload.
func (s *Store) Get(ctx context.Context, id string) (*Record, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+recordColumns+`, coalesce((SELECT payload FROM intake_payloads p WHERE p.seq = d.seq), x'')
		FROM intake_deliveries d WHERE dkey = ?`, dedupKey(id))
	var payload []byte
	r, err := scanRecord(row, &payload)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("delivery %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	r.Payload = payload
	return r, nil
}

// Retry puts dead (or waiting-to-retry) deliveries back in the queue with a
// fresh attempt budget, to run as soon as a server picks them up. A running
// server notices within a second (it watches a generation counter bumped
// here); a stopped one on its next start.
func (s *Store) Retry(ctx context.Context, ids ...string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, id := range ids {
		var st string
		err := tx.QueryRowContext(ctx, `SELECT state FROM intake_deliveries WHERE dkey = ?`, dedupKey(id)).Scan(&st)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("delivery %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if st != StateDead && st != StateRetry {
			return fmt.Errorf("delivery %s is %s: only dead or retry deliveries can be retried", id, st)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE intake_deliveries SET state = 'queued', attempts = 0, next_attempt_at = 0 WHERE dkey = ?`, dedupKey(id)); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE intake_meta SET value = value + 1 WHERE name = 'generation'`); err != nil {
		return err
	}
	return tx.Commit()
}

func validState(s string) bool {
	for _, v := range States {
		if v == s {
			return true
		}
	}
	return false
}

// dedupKey is the unique key a delivery id is stored under. GitHub's
// delivery ids are version 1 UUIDs, whose text starts with the fast-moving
// low bits of a timestamp: as an index key they land on a random leaf page,
// and every commit rewrites several pages of the index. Reordered to put
// the high bits first (time_hi, time_mid, time_low, clock sequence, node)
// consecutive deliveries sort together and the index grows at its end.
// Other ids are kept as they are, behind a prefix no reordered id has.
func dedupKey(id string) string {
	if len(id) == 36 && id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-' && id[14] == '1' {
		k := id[15:18] + id[9:13] + id[0:8] + id[19:23] + id[24:36]
		ok := true
		for i := 0; i < len(k); i++ {
			c := k[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				ok = false
				break
			}
		}
		if ok {
			return k
		}
	}
	return "=" + id
}

package changelog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/compatbot/compatbot/workflow/state"
)

// dbTime has a fixed width so dates sort as text.
const dbTime = "2006-01-02T15:04:05.000000000Z07:00"

var migrations = []string{
	`CREATE TABLE history (
		id        INTEGER PRIMARY KEY,
		entry_id  TEXT NOT NULL UNIQUE,
		date      TEXT NOT NULL,
		version   TEXT NOT NULL,
		target    TEXT NOT NULL,
		action    TEXT NOT NULL,
		tag       TEXT NOT NULL,
		revision  INTEGER NOT NULL,
		pr        INTEGER NOT NULL,
		pr_url    TEXT NOT NULL,
		author    TEXT NOT NULL,
		approver  TEXT NOT NULL,
		deployer  TEXT NOT NULL,
		changes   TEXT NOT NULL
	);
	CREATE INDEX history_target_date ON history(target, date);`,
}

// EnsureSchema creates the history table; Record and List call it.
func EnsureSchema(ctx context.Context, db *state.DB) error {
	return db.EnsureSchema(ctx, "history", migrations...)
}

// Record stores e in the database. Recording the same entry (same ID)
// twice keeps one row, so a retried deploy step cannot duplicate history.
func Record(ctx context.Context, db *state.DB, e Entry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if err := EnsureSchema(ctx, db); err != nil {
		return err
	}
	changes, err := json.Marshal(e.Changes)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `INSERT INTO history(entry_id, date, version, target, action, tag, revision, pr, pr_url, author, approver, deployer, changes)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(entry_id) DO NOTHING`,
		e.ID(), e.Date.UTC().Format(dbTime), e.Version, e.Target, e.Action, e.Tag, int64(e.Revision), e.PR, e.PRURL, e.Author, e.Approver, e.Deployer, string(changes))
	if err != nil {
		return fmt.Errorf("record history %s %s: %w", e.Target, e.Tag, err)
	}
	return nil
}

// List returns the history of target ("" for every target), newest first.
func List(ctx context.Context, db *state.DB, target string) ([]Entry, error) {
	if err := EnsureSchema(ctx, db); err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT date, version, target, action, tag, revision, pr, pr_url, author, approver, deployer, changes
		FROM history WHERE ? = '' OR target = ? ORDER BY date DESC, id DESC`, target, target)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var date, changes string
		var rev int64
		if err := rows.Scan(&date, &e.Version, &e.Target, &e.Action, &e.Tag, &rev, &e.PR, &e.PRURL, &e.Author, &e.Approver, &e.Deployer, &changes); err != nil {
			return nil, err
		}
		e.Revision = uint64(rev)
		if e.Date, err = time.Parse(dbTime, date); err != nil {
			return nil, fmt.Errorf("history row %s %s: date %q: %w", e.Target, e.Tag, date, err)
		}
		if err := json.Unmarshal([]byte(changes), &e.Changes); err != nil {
			return nil, fmt.Errorf("history row %s %s: changes: %w", e.Target, e.Tag, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

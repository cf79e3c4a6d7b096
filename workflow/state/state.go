// Package state is compatbot's embedded database: one SQLite file under
// data_dir that every part of the workflow keeps its durable state in, so a
// crash or kill -9 loses nothing that was acknowledged.
package state

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	_ "modernc.org/sqlite" // pure-Go SQLite: no cgo, one static binary
)

// DB is the open database. Components declare their own tables with
// EnsureSchema so no single file has to know every table.
type DB struct {
	*sql.DB
	path string
	mu   sync.Mutex
}

// Open opens (creating if needed) the database at path. WAL with
// synchronous=FULL makes every committed transaction durable (fsync'd)
// while letting readers run beside the single writer.
func Open(path string) (*DB, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	d := &DB{DB: db, path: path}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return d, nil
}

// Path is the database file.
func (d *DB) Path() string { return d.path }

// EnsureSchema brings component's tables to version by running the
// migrations it has not run yet; migrations[i] takes the schema from
// version i to i+1. Each migration runs in its own transaction.
func (d *DB) EnsureSchema(ctx context.Context, component string, migrations ...string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var have int
	err := d.QueryRowContext(ctx, `SELECT version FROM schema_versions WHERE component = ?`, component).Scan(&have)
	if err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("schema of %s: %w", component, err)
	}
	if have > len(migrations) {
		return fmt.Errorf("schema of %s is at version %d, newer than this compatbot knows (%d)", component, have, len(migrations))
	}
	for i := have; i < len(migrations); i++ {
		tx, err := d.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("schema of %s, migration %d: %w", component, i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_versions(component, version) VALUES(?, ?) ON CONFLICT(component) DO UPDATE SET version = excluded.version`, component, i+1); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("schema of %s, migration %d: %w", component, i+1, err)
		}
	}
	return nil
}

package state

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"time"
)

// FreeBytes is the space left to unprivileged writers on the filesystem
// holding dir.
func FreeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// Dir is the directory of the database file.
func (d *DB) Dir() string { return filepath.Dir(d.path) }

// CheckWritable commits a one-row write, fsync'd like every commit, so a
// database that answers reads but cannot store (a full disk, a lock held
// by a stuck writer, a read-only remount) is found out.
func (d *DB) CheckWritable(ctx context.Context) error {
	if _, err := d.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS write_probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)`); err != nil {
		return err
	}
	_, err := d.ExecContext(ctx, `INSERT INTO write_probe(id, at) VALUES(1, ?) ON CONFLICT(id) DO UPDATE SET at=excluded.at`, time.Now().UnixNano())
	return err
}

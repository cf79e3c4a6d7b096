package deploy

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/changelog"
)

type pendingEntry struct {
	Repo  string
	Entry changelog.Entry
}

// queueChangelog stores an entry to be recorded and committed, inside the
// caller's database transaction; FlushChangelog does the rest and retries
// until it succeeds, so an entry is never lost to a failed commit or a
// crash.
func (d *Engine) queueChangelog(tx *sql.Tx, p pendingEntry) error {
	body, err := json.Marshal(p.Entry)
	if err != nil {
		return err
	}
	_, err = tx.Exec(`INSERT INTO deploy_changelog_pending(repo, path, entry, created) VALUES(?, ?, ?, ?)`,
		p.Repo, changelog.Path(p.Entry.Version), string(body), d.now())
	return err
}

func (d *Engine) prURL(repo string, pr int) string {
	if repo == "" || pr <= 0 {
		return ""
	}
	return fmt.Sprintf("%s/%s/pull/%d", d.ghURL, repo, pr)
}

func (d *Engine) publishEntry(env string, req Request, it Item, ir *ItemResult) pendingEntry {
	osArch := it.Target.OS + "-" + it.Target.Arch
	changes := []changelog.Change{}
	for _, c := range it.Changes {
		changes = append(changes, changelog.Change{Kind: string(c.Kind), Package: c.Package, Old: c.Old, New: c.New})
	}
	return pendingEntry{Repo: req.Repo, Entry: changelog.Entry{
		Date: d.clock().UTC(), Version: it.Target.Version, Target: env, Action: changelog.Publish,
		Tag: ir.Tag, Revision: uint64(ir.Revision), PR: req.PR, PRURL: d.prURL(req.Repo, req.PR),
		Author: req.Author, Approver: req.approver(), Deployer: req.Requester,
		Changes: map[string][]changelog.Change{osArch: changes},
	}}
}

// FlushChangelog records pending history entries in the database and
// commits them to changelog/<version>.md, oldest first; it stops at the
// first failure (keeping that entry and the ones after it for the next
// call) so the file keeps the order of events. Deploys call it; call it
// also periodically so a failed commit is retried.
func (d *Engine) FlushChangelog(ctx context.Context) error {
	d.clogMu.Lock()
	defer d.clogMu.Unlock()
	ctx = bg(ctx)
	rows, err := d.db.QueryContext(ctx, `SELECT id, repo, entry, recorded FROM deploy_changelog_pending ORDER BY id`)
	if err != nil {
		return fmt.Errorf("changelog: %w", err)
	}
	type row struct {
		id       int64
		repo     string
		entry    changelog.Entry
		recorded bool
	}
	var pend []row
	for rows.Next() {
		var r row
		var body string
		if err := rows.Scan(&r.id, &r.repo, &body, &r.recorded); err != nil {
			rows.Close()
			return err
		}
		if err := json.Unmarshal([]byte(body), &r.entry); err != nil {
			rows.Close()
			return fmt.Errorf("changelog: pending entry %d: %w", r.id, err)
		}
		pend = append(pend, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range pend {
		if !r.recorded {
			// Record is idempotent by entry ID, so a crash between it and
			// the update below cannot duplicate history.
			if err := changelog.Record(ctx, d.db, r.entry); err != nil {
				return d.pendingFailed(ctx, r.id, fmt.Errorf("record history: %w", err))
			}
			if _, err := d.db.ExecContext(ctx, `UPDATE deploy_changelog_pending SET recorded = 1 WHERE id = ?`, r.id); err != nil {
				return err
			}
		}
		if d.clog != nil && r.repo != "" {
			path := changelog.Path(r.entry.Version)
			existing, err := d.clog.ReadFile(ctx, r.repo, d.branch, path)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return d.pendingFailed(ctx, r.id, fmt.Errorf("read %s on %s: %w", path, d.branch, err))
			}
			if err := changelog.Commit(ctx, d.clog, existing, r.repo, d.branch, r.entry); err != nil {
				return d.pendingFailed(ctx, r.id, fmt.Errorf("commit %s on %s: %w", path, d.branch, err))
			}
		}
		if _, err := d.db.ExecContext(ctx, `DELETE FROM deploy_changelog_pending WHERE id = ?`, r.id); err != nil {
			return err
		}
	}
	return nil
}

func (d *Engine) pendingFailed(ctx context.Context, id int64, err error) error {
	d.db.ExecContext(ctx, `UPDATE deploy_changelog_pending SET attempts = attempts + 1, last_error = ? WHERE id = ?`, err.Error(), id)
	return err
}

// PendingChangelog is how many changelog entries still wait for their
// commit.
func (d *Engine) PendingChangelog(ctx context.Context) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM deploy_changelog_pending`).Scan(&n)
	return n, err
}

// History lists the publishes and rollbacks of env ("" for all), as the
// changelog records them.
func (d *Engine) History(ctx context.Context, env string) ([]changelog.Entry, error) {
	// A failed commit must not hide the history already recorded.
	_ = d.FlushChangelog(ctx)
	return changelog.List(ctx, d.db, env)
}

// deployedTargets lists the targets ever deployed to env, in order.
func (d *Engine) deployedTargets(ctx context.Context, env string) ([]sets.Target, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT DISTINCT version, os, arch FROM deploy_items WHERE env = ? AND tag != '' ORDER BY version, os, arch`, env)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ts []sets.Target
	for rows.Next() {
		var t sets.Target
		if err := rows.Scan(&t.Version, &t.OS, &t.Arch); err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, rows.Err()
}

package deploy

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"syscall"
	"time"

	"github.com/compatbot/compatbot/workflow/state"
)

// FailpointEnv names a step at which the process kills itself with
// SIGKILL, so the crash tests can stop a deploy exactly there. "after-X"
// fires right after the external step X, before the journal records it;
// "before-X" right after the journal recorded the previous step. Steps:
// after-enqueue, after-tx-open, before-apply, after-apply, before-publish,
// after-publish, after-journal-published, after-verify, after-rollback.
const FailpointEnv = "COMPATBOT_DEPLOY_FAILPOINT"

func (d *Engine) failpointHere(name string) {
	if d.failpoint == name {
		syscall.Kill(syscall.Getpid(), syscall.SIGKILL)
		select {} // the signal is asynchronous: never run past the failpoint
	}
}

// Item journal states. A state is written as soon as its step has
// finished and before the next external step starts, so after a crash the
// journal says how far the deploy got; the tag is written before the
// transaction opens, so Recover can ask the publisher whether it was
// published.
const (
	stQueued    = "queued"
	stTxOpen    = "tx-open"
	stApplied   = "applied"
	stPublished = "published"
	stVerified  = "verified"
	stFailed    = "failed"
	stAborted   = "aborted"
)

// Request states.
const (
	reqQueued  = "queued"
	reqRunning = "running"
	reqDone    = "done"
	reqFailed  = "failed"
	reqRefused = "refused"
	reqAborted = "aborted"
)

const (
	kindDeploy   = "deploy"
	kindRollback = "rollback"
)

var migrations = []string{`
CREATE TABLE deploy_requests (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	env TEXT NOT NULL,
	kind TEXT NOT NULL,
	request TEXT NOT NULL,
	rollback_tag TEXT NOT NULL DEFAULT '',
	from_tag TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL,
	result TEXT NOT NULL DEFAULT '',
	created TEXT NOT NULL,
	updated TEXT NOT NULL
);
CREATE INDEX deploy_requests_env_state ON deploy_requests(env, state);
CREATE TABLE deploy_items (
	request_id INTEGER NOT NULL REFERENCES deploy_requests(id),
	idx INTEGER NOT NULL,
	env TEXT NOT NULL,
	version TEXT NOT NULL,
	os TEXT NOT NULL,
	arch TEXT NOT NULL,
	path TEXT NOT NULL,
	digest TEXT NOT NULL,
	base_lineage TEXT NOT NULL,
	tag TEXT NOT NULL DEFAULT '',
	lineage_before TEXT NOT NULL DEFAULT '',
	lineage_after TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL,
	failed_step TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT '',
	revision INTEGER NOT NULL DEFAULT 0,
	verify_summary TEXT NOT NULL DEFAULT '',
	updated TEXT NOT NULL,
	PRIMARY KEY (request_id, idx)
);
CREATE INDEX deploy_items_target ON deploy_items(env, version, os, arch, digest);
CREATE TABLE deploy_changelog_pending (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	repo TEXT NOT NULL,
	path TEXT NOT NULL,
	entry TEXT NOT NULL,
	recorded INTEGER NOT NULL DEFAULT 0,
	attempts INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	created TEXT NOT NULL
);
`}

func ensureSchema(ctx context.Context, db *state.DB) error {
	return db.EnsureSchema(ctx, "deploy", migrations...)
}

func (d *Engine) now() string { return d.clock().UTC().Format(time.RFC3339Nano) }

// bg keeps journal writes going when the caller's context is cancelled
// mid-step: the journal must always describe what really happened.
func bg(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func (d *Engine) insertDeploy(ctx context.Context, env string, req Request, paths []string) (int64, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	now := d.now()
	res, err := tx.ExecContext(ctx, `INSERT INTO deploy_requests(env, kind, request, state, created, updated) VALUES(?, ?, ?, ?, ?, ?)`,
		env, kindDeploy, string(body), reqQueued, now, now)
	if err != nil {
		return 0, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	for i, it := range req.Items {
		if _, err := tx.ExecContext(ctx, `INSERT INTO deploy_items(request_id, idx, env, version, os, arch, path, digest, base_lineage, state, updated) VALUES(?,?,?,?,?,?,?,?,?,?,?)`,
			id, i, env, it.Target.Version, it.Target.OS, it.Target.Arch, paths[i], it.Digest, it.BaseLineage, stQueued, now); err != nil {
			return 0, err
		}
	}
	return id, tx.Commit()
}

func (d *Engine) insertRollback(ctx context.Context, env, tag string, from Request) (int64, error) {
	body, err := json.Marshal(from)
	if err != nil {
		return 0, err
	}
	now := d.now()
	res, err := d.db.ExecContext(ctx, `INSERT INTO deploy_requests(env, kind, request, rollback_tag, state, created, updated) VALUES(?, ?, ?, ?, ?, ?, ?)`,
		env, kindRollback, string(body), tag, reqQueued, now, now)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

func (d *Engine) setRequestState(ctx context.Context, id int64, st string, res *Result) error {
	var body string
	if res != nil {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		body = string(b)
	}
	_, err := d.db.ExecContext(bg(ctx), `UPDATE deploy_requests SET state = ?, result = CASE WHEN ? = '' THEN result ELSE ? END, updated = ? WHERE id = ?`,
		st, body, body, d.now(), id)
	if err != nil {
		return fmt.Errorf("journal: request %d: %w", id, err)
	}
	return nil
}

// setItem writes the item's journal row from its result.
func (d *Engine) setItem(ctx context.Context, id int64, idx int, ir *ItemResult) error {
	_, err := d.db.ExecContext(bg(ctx), `UPDATE deploy_items SET tag = ?, lineage_before = ?, lineage_after = ?, state = ?, failed_step = ?, error = ?, revision = ?, verify_summary = ?, updated = ? WHERE request_id = ? AND idx = ?`,
		ir.Tag, ir.LineageBefore, ir.LineageAfter, ir.State, ir.FailedStep, ir.Error, int64(ir.Revision), ir.VerifySummary, d.now(), id, idx)
	if err != nil {
		return fmt.Errorf("journal: request %d item %d: %w", id, idx, err)
	}
	return nil
}

// execTx runs fn in one database transaction.
func (d *Engine) execTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := d.db.BeginTx(bg(ctx), nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

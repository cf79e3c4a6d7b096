package handlers

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/compatbot/compatbot/workflow/prflow"
	"github.com/compatbot/compatbot/workflow/state"
)

// TestMigrationCarriesRecordsOver: a database from before one record per
// fact keeps its deploy requests (moved into the lifecycle's record) and
// its PR heads (into the head history).
func TestMigrationCarriesRecordsOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "compatbot.db")
	db, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	// The schema as it was: the handlers' first migration, and prflow's
	// before its command record grew.
	if err := db.EnsureSchema(ctx, "handlers", migrations[0]); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO pr_heads(repo, pr, sha, seen_at) VALUES('o/r', 3, 'aaaaaaa', 100)`,
		`INSERT INTO command_requests(kind, repo, pr, sha, target, tag, user, time, state, comment_id, line) VALUES('deploy', 'o/r', 3, 'aaaaaaa', 'test', '', 'mia', 200, 'submitted', 11, 1)`,
		`INSERT INTO command_requests(kind, repo, pr, sha, target, tag, user, time, state, comment_id, line) VALUES('rollback', 'o/r', 3, 'aaaaaaa', 'prod', 'v1', 'ada', 300, 'refused', 12, 1)`,
		`INSERT INTO builds(repo, head_sha, trigger, state) VALUES('o/r', 'aaaaaaa', '', 'requested')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	db, err = state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := &Handler{opts: Options{DB: db}}
	if err := prflow.EnsureSchema(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := db.EnsureSchema(ctx, "handlers", migrations...); err != nil {
		t.Fatal(err)
	}
	if sha, err := h.headAt(ctx, "o/r", 3, unix(150)); err != nil || sha != "aaaaaaa" {
		t.Errorf("head at 150 after the migration = %q, %v", sha, err)
	}
	d := &prflow.Deployer{DB: db}
	recs, err := d.Requests(ctx, "o/r", 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Kind != "rollback" || recs[0].Env != "prod" || recs[0].Tag != "v1" || recs[0].State != "refused" ||
		recs[1].Kind != "deploy" || recs[1].Env != "test" || recs[1].User != "mia" || recs[1].State != "done" {
		t.Errorf("requests after the migration: %+v", recs)
	}
	for _, table := range []string{"command_requests", "builds", "pr_heads"} {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?`, table).Scan(&n); err != nil || n != 0 {
			t.Errorf("table %s still there (%d, %v)", table, n, err)
		}
	}
}

func unix(s int64) time.Time { return time.Unix(s, 0) }

package state

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsureSchemaRunsEachMigrationOnceAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "compatbot.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	v1 := `CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`
	if err := db.EnsureSchema(ctx, "things", v1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO things(name) VALUES ('kept')`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// Reopening runs only the new migration; rerunning v1 would fail because
	// the table exists, so success shows it was skipped.
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v2 := `ALTER TABLE things ADD COLUMN size INTEGER NOT NULL DEFAULT 0`
	if err := db.EnsureSchema(ctx, "things", v1, v2); err != nil {
		t.Fatal(err)
	}
	var name string
	var size int
	if err := db.QueryRow(`SELECT name, size FROM things`).Scan(&name, &size); err != nil {
		t.Fatal(err)
	}
	if name != "kept" || size != 0 {
		t.Errorf("row = %q %d, want kept 0", name, size)
	}
}

func TestEnsureSchemaRefusesNewerDatabase(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.EnsureSchema(ctx, "x", `CREATE TABLE a(x)`, `CREATE TABLE b(x)`); err != nil {
		t.Fatal(err)
	}
	err = db.EnsureSchema(ctx, "x", `CREATE TABLE a(x)`)
	if err == nil || !strings.Contains(err.Error(), "newer than this compatbot knows") {
		t.Fatalf("err = %v, want a refusal naming the newer schema", err)
	}
}

func TestFailedMigrationNamesComponentAndLeavesVersion(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.EnsureSchema(ctx, "broken", `CREATE TABLE ok(x)`, `NOT SQL AT ALL`)
	if err == nil || !strings.Contains(err.Error(), "schema of broken, migration 2") {
		t.Fatalf("err = %v", err)
	}
	var v int
	if err := db.QueryRow(`SELECT version FROM schema_versions WHERE component='broken'`).Scan(&v); err != nil || v != 1 {
		t.Fatalf("version = %d (%v), want 1", v, err)
	}
}

func TestOpenReportsPath(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing-dir", "c.db"))
	if err == nil || !strings.Contains(err.Error(), "missing-dir") {
		t.Fatalf("err = %v, want the path named", err)
	}
}

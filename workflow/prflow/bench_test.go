package prflow

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/compatbot/compatbot/workflow/state"
)

// BenchmarkOutcomes is the Deployer's lookup of a PR head's builds in a
// database holding 5,000 builds (500 PRs × 5 pushes × 2 targets).
func BenchmarkOutcomes(b *testing.B) {
	db, err := state.Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := EnsureSchema(ctx, db); err != nil {
		b.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for pr := 1; pr <= 500; pr++ {
		for push := 0; push < 5; push++ {
			sha := fmt.Sprintf("%040x", pr*10+push)
			for _, v := range []string{"2025.06", "2026.06"} {
				if _, err := tx.Exec(`INSERT INTO prflow_builds(repo, pr, head_sha, version, os, arch, trigger, installation, base_ref, base_sha, git_dir, state, conclusion, digest, created_at, finished_at)
					VALUES('o/r', ?, ?, ?, 'linux', 'x86_64', '', 1, 'main', 'b', '/g', 'done', 'success', 'sha256:00', ?, ?)`, pr, sha, v, time.Now().Unix(), time.Now().Unix()); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	sha := fmt.Sprintf("%040x", 2504)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		outs, err := outcomes(ctx, db, "o/r", 250, sha)
		if err != nil || len(outs) != 2 {
			b.Fatalf("%d outcomes, %v", len(outs), err)
		}
	}
}

// BenchmarkBuildRepeated is a retried delivery asking again for builds
// that are done: the bookkeeping only, no build and no GitHub call.
func BenchmarkBuildRepeated(b *testing.B) {
	e := newEnv(b)
	bl := e.builder()
	ctx := context.Background()
	req := e.request(e.headSHA, arm_2026)
	if err := bl.Build(ctx, req); err != nil {
		b.Fatal(err)
	}
	calls := e.ports.Calls()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := bl.Build(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := e.ports.Calls(); n != calls {
		b.Fatalf("repeated Build made %d GitHub calls", n-calls)
	}
}

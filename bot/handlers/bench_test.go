package handlers

import (
	"testing"
	"time"
)

// BenchmarkStatusComment is the whole path of a /status comment: payload
// decoding, parsing, the PR lookup, the database, a reaction and a reply,
// over real HTTP to the fake GitHub.
func BenchmarkStatusComment(b *testing.B) {
	e := newEnv(b)
	if err := e.openPR("opened", e.headSHA, time.Now().Add(-time.Hour)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := e.comment("bob", "/status"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPullRequestOpened is a new PR head: check run queued, git fetch
// from the real remote, sets check, run completed.
func BenchmarkPullRequestOpened(b *testing.B) {
	e := newEnv(b)
	for b.Loop() {
		b.StopTimer()
		sha := e.commit(e.headSHA, map[string]string{"README.md": time.Now().String()})
		e.push(prNumber, sha)
		b.StartTimer()
		if err := e.openPR("synchronize", sha, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

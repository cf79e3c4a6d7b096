package handlers

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/compatbot/compatbot/bot/intake"
	"github.com/compatbot/compatbot/bot/metrics"
)

// TestThroughRealIntake sends signed webhooks over HTTP to the real intake,
// which stores them and hands them to the Handler from its worker pool: the
// contract between the two, redelivery included.
func TestThroughRealIntake(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secret := []byte("webhook-secret")
	in, err := intake.New(context.Background(), intake.Options{DB: e.db, Processor: e.h, Secrets: [][]byte{secret},
		BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, PollInterval: 20 * time.Millisecond,
		Metrics: metrics.NewRegistry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() { cancel(); <-done }()
	srv := httptest.NewServer(in)
	defer srv.Close()

	send := func(id, event string, body []byte) int {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL, bytes.NewReader(body))
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-GitHub-Delivery", id)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	opened := e.payload("pull_request.json", data{Action: "opened", Number: prNumber, Author: "alice", HeadSHA: e.headSHA,
		UpdatedAt: time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)})
	if s := send("72d3162e-cc78-11e3-81ab-4c9367dc0958", "pull_request", opened); s != http.StatusAccepted {
		t.Fatalf("opened: %d", s)
	}
	c := e.gh.AddComment(repoName, prNumber, "mia", "/deploy test")
	if s := send("8a1e0b4c-cc78-11e3-81ab-4c9367dc0958", "issue_comment", e.commentPayload(c, "User", "created", true)); s != http.StatusAccepted {
		t.Fatalf("comment: %d", s)
	}
	// GitHub redelivers the comment: acknowledged, not processed again.
	if s := send("8a1e0b4c-cc78-11e3-81ab-4c9367dc0958", "issue_comment", e.commentPayload(c, "User", "created", true)); s != http.StatusOK {
		t.Fatalf("redelivery: %d", s)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		runs := e.runsFor(e.headSHA)
		if len(runs) == 1 && runs[0].Status == "completed" && replyTo(e, c.ID) != "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if runs := e.runsFor(e.headSHA); len(runs) != 1 || runs[0].Status != "completed" {
		t.Fatalf("check runs: %+v", runs)
	}
	if r := replyTo(e, c.ID); !strings.Contains(r, "the deploy pipeline is not enabled") {
		t.Fatalf("reply: %q", r)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(e.replies()); n != 1 || e.requests() != 1 {
		t.Errorf("%d replies, %d requests after a redelivery; want 1 and 1", n, e.requests())
	}
}

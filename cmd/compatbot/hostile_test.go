package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compatbot/compatbot/bot/webhook"
	"github.com/compatbot/compatbot/workflow/state"
)

// procStatus reads one kB field (VmRSS, VmHWM) of /proc/PID/status.
func procStatus(t *testing.T, pid int, field string) int {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// 40 parallel 20 MiB POSTs from someone without the secret, first with no
// signature at all, then with a well-formed but wrong one (which must be
// read to the end to be found wrong), must not make compatbot serve hold
// their bodies: its peak RSS (VmHWM) stays under 150 MB, every one is
// refused, and a real delivery is still accepted afterwards.
func TestServeUnauthenticatedFloodRSS(t *testing.T) {
	dir := t.TempDir()
	writeServeConfig(t, dir)
	c := startChild(t, dir, false)
	pid := c.cmd.Process.Pid
	before := procStatus(t, pid, "VmHWM")

	body := bytes.Repeat([]byte("x"), 20<<20) // shared, read-only
	wrong := webhook.Sign(body, []byte("not-the-secret"))
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, sig := range []string{"", wrong} {
		var mu sync.Mutex
		statuses := map[int]int{}
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("POST", c.base+"/webhook", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "pull_request")
				req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("flood-%d", i))
				if sig != "" {
					req.Header.Set("X-Hub-Signature-256", sig)
				}
				code := -1 // the server may close the connection before the body is sent
				if resp, err := client.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				mu.Lock()
				statuses[code]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		t.Logf("signature %q: statuses %v", sig, statuses)
		for code := range statuses {
			if code == 202 || code == 200 {
				t.Errorf("signature %q: a flood request was acknowledged (%d)", sig, code)
			}
		}
		if sig != "" && statuses[401] == 0 {
			t.Errorf("no wrongly signed request was read and refused with 401: %v", statuses)
		}
	}
	peak := procStatus(t, pid, "VmHWM")
	t.Logf("compatbot serve peak RSS: %d kB before, %d kB (%.1f MB) after the floods", before, peak, float64(peak)/1024)
	limit := 150 << 10
	if raceEnabled {
		limit *= 4
	}
	if peak > limit {
		t.Errorf("peak RSS %d kB under the unauthenticated flood, want under %d MB", peak, limit>>10)
	}
	if code := deliver(t, c.base, "pull_request", "after-flood", prBody(1)); code != 202 {
		t.Errorf("a signed delivery after the flood: %d, want 202", code)
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-c.exit; err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// /readyz is ready only when a delivery could be stored: the database
// commits a write (not merely answers a read) and its filesystem keeps
// intake.min_free_bytes free. "Nearly full" uses a bound above the real
// free space (a real statfs); "locked" a second connection holding the
// write lock, as a stuck writer would.
func TestReadyzWhenDiskFullOrUnwritable(t *testing.T) {
	tests := []struct {
		name    string
		minFree int64
		lock    bool
		status  int
		says    string
	}{
		{"ready", 1, false, 200, "ready"},
		{"disk nearly full", 1 << 62, false, 503, "disk nearly full"},
		{"database cannot be written", -1, true, 503, "database cannot be written"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "compatbot.db")
			db, err := state.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if tc.lock {
				other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
				conn, err := other.Conn(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				if _, err := conn.ExecContext(context.Background(), `BEGIN EXCLUSIVE`); err != nil {
					t.Fatal(err)
				}
				defer conn.ExecContext(context.Background(), `ROLLBACK`)
				// Reads still answer: the old probe (SELECT 1) called this ready.
				var one int
				if err := db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
					t.Logf("reads fail too: %v", err)
				}
			}
			rec := httptest.NewRecorder()
			readyHandler(db, tc.minFree).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil).WithContext(ctx))
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.says) {
				t.Errorf("/readyz: %d %q, want %d saying %q", rec.Code, rec.Body.String(), tc.status, tc.says)
			}
		})
	}
}

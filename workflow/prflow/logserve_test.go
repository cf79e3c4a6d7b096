package prflow

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/compatbot/compatbot/workflow/state"
)

// The log of a build is served from data_dir/runs/<id>/build.log, a folder
// the build itself writes into. A build.log (or a run folder) replaced by a
// symlink is not followed, out of data_dir or within it; ids are checked
// before they touch a path.
func TestLogHandlerRefusesSymlinks(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	dataDir := filepath.Join(base, "var")
	db, err := state.Open(filepath.Join(base, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE prflow_builds (run_id TEXT NOT NULL, arch TEXT NOT NULL DEFAULT 'x86_64')`); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(base, "app.pem")
	must(os.WriteFile(secret, []byte("PRIVATE KEY"), 0o600))
	must(os.MkdirAll(filepath.Join(dataDir, "runs"), 0o755))
	must(os.WriteFile(filepath.Join(dataDir, "compatbot.db"), []byte("DATABASE"), 0o600))
	mk := func(id string, setup func(runDir string)) {
		must(os.MkdirAll(filepath.Join(dataDir, "runs", id), 0o755))
		setup(filepath.Join(dataDir, "runs", id))
		_, err := db.Exec(`INSERT INTO prflow_builds(run_id) VALUES(?)`, id)
		must(err)
	}
	mk("ok", func(d string) { must(os.WriteFile(filepath.Join(d, "build.log"), []byte("built\n"), 0o644)) })
	mk("out", func(d string) { must(os.Symlink(secret, filepath.Join(d, "build.log"))) })
	mk("in", func(d string) { must(os.Symlink("../../compatbot.db", filepath.Join(d, "build.log"))) })
	must(os.WriteFile(filepath.Join(base, "build.log"), []byte("PRIVATE KEY"), 0o600))
	_, err = db.Exec(`INSERT INTO prflow_builds(run_id) VALUES('dirlink')`)
	must(err)
	must(os.Symlink(base, filepath.Join(dataDir, "runs", "dirlink")))

	b := &Builder{opts: Options{DB: db, DataDir: dataDir}}
	mux := http.NewServeMux()
	mux.Handle("GET /builds/{id}/log", b.LogHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tests := []struct {
		id     string
		status int
		body   string
	}{
		{"ok", 200, "built\n"},
		{"out", 404, ""},
		{"in", 404, ""},
		{"dirlink", 404, ""},
		{"..%2f..%2fapp.pem", 404, ""},
		{"nope", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/builds/" + tc.id + "/log")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || (tc.body != "" && string(body) != tc.body) {
				t.Errorf("status %d body %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
			if s := string(body); s == "PRIVATE KEY" || s == "DATABASE" {
				t.Errorf("served %q through a symlink", s)
			}
		})
	}
}

package setscheck

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/compatbot/compatbot/internal/testgit"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/report"
)

// A PR's sets are read from real git with the default limits: a misnamed
// set file and oversized ones fail the check with the lint error at the
// file, within seconds, in bounded memory and with a report GitHub takes.
func TestHostileSetsFailTheCheck(t *testing.T) {
	var huge strings.Builder
	for i := 0; huge.Len() < 15<<20; i++ {
		fmt.Fprintf(&huge, "dev-libs/pkg%d # reason %d\n", i, i)
	}
	tests := []struct {
		name  string
		files map[string]string
		codes map[string]string // file: lint code
	}{
		{"misnamed set file", map[string]string{"sets/2026.06/linux-x86_64;id": "sys-libs/zlib # compression\n"},
			map[string]string{"sets/2026.06/linux-x86_64;id": sets.CodeInvalidName}},
		{"two 15 MiB set files", map[string]string{"sets/2026.06/linux-x86_64": huge.String(), "sets/2026.06/linux-aarch64": huge.String()},
			map[string]string{"sets/2026.06/linux-x86_64": sets.CodeTooLarge, "sets/2026.06/linux-aarch64": sets.CodeTooLarge}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := testgit.ExampleRepo(t)
			head := testgit.Commit(t, dir, "pr", tc.files, tc.name)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			c, rev, err := CheckRefs(context.Background(), dir, "main", head)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("check: %v, %d MB allocated, report %d bytes", took.Round(time.Millisecond), alloc>>20, len(c.Summary)+len(c.Text))
			if c.Conclusion != report.Failure {
				t.Errorf("conclusion %s (%q), want failure", c.Conclusion, c.Title)
			}
			for file, code := range tc.codes {
				found := false
				for _, a := range c.Annotations {
					if a.Path == file && a.Title == "lint: "+code && a.Level == report.Error {
						found = true
					}
				}
				if !found && !strings.Contains(c.Text, sets.MarkdownCode(file+":1:1")) {
					t.Errorf("no %s error at %s in the report (%d bytes):\n%.2000s", code, file, len(c.Text), c.Text)
				}
			}
			for _, sf := range rev.Head.Sets {
				if strings.Contains(sf.Arch, ";") {
					t.Errorf("the misnamed file became target %s", sf.Target())
				}
			}
			if took > 10*time.Second {
				t.Errorf("the check took %v, want seconds", took)
			}
			if alloc > 256<<20 {
				t.Errorf("the check allocated %d MB, want under 256", alloc>>20)
			}
			if n := len(c.Summary) + len(c.Text); n > 65535 {
				t.Errorf("report of %d bytes, more than GitHub shows", n)
			}
		})
	}
}

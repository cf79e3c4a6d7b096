package portage

import (
	"strings"
	"testing"

	"github.com/compatbot/compatbot/workflow/build"
)

// TestConfigForJob: a target's own masks and USE lines come after the
// configured ones, and the Runner's configuration is not changed by one
// job.
func TestConfigForJob(t *testing.T) {
	c := Config{Mask: []string{"sys-libs/glibc"}, Unmask: []string{"dev-lang/python"}, Use: []string{"*/* -doc"}}
	got := c.forJob(build.Job{Mask: []string{"# too new", ">=dev-lang/python-3.13"}, Unmask: []string{"=app-misc/jq-1.7"}, Use: []string{"app-misc/hello -hi"}})
	if strings.Join(got.Mask, "|") != "sys-libs/glibc|# too new|>=dev-lang/python-3.13" || strings.Join(got.Unmask, "|") != "dev-lang/python|=app-misc/jq-1.7" ||
		strings.Join(got.Use, "|") != "*/* -doc|app-misc/hello -hi" {
		t.Errorf("forJob: mask %q unmask %q use %q", got.Mask, got.Unmask, got.Use)
	}
	if len(c.Mask) != 1 || len(c.Unmask) != 1 || len(c.Use) != 1 {
		t.Errorf("the configuration changed: %+v", c)
	}
}

package portage

import (
	"strings"
	"testing"

	"github.com/compatbot/compatbot/workflow/build"
)

// TestConfigForJob: a target's own masks come after the configured ones,
// and the Runner's configuration is not changed by one job.
func TestConfigForJob(t *testing.T) {
	c := Config{Mask: []string{"sys-libs/glibc"}, Unmask: []string{"dev-lang/python"}}
	got := c.forJob(build.Job{Mask: []string{"# too new", ">=dev-lang/python-3.13"}, Unmask: []string{"=app-misc/jq-1.7"}})
	if strings.Join(got.Mask, "|") != "sys-libs/glibc|# too new|>=dev-lang/python-3.13" || strings.Join(got.Unmask, "|") != "dev-lang/python|=app-misc/jq-1.7" {
		t.Errorf("forJob: mask %q unmask %q", got.Mask, got.Unmask)
	}
	if len(c.Mask) != 1 || len(c.Unmask) != 1 {
		t.Errorf("the configuration changed: %+v", c)
	}
}

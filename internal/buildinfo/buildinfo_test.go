package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name      string
		bi        *debug.BuildInfo
		short, ua string
		text      []string
	}{
		{name: "no build info", short: "(devel)", ua: "compatbot/devel", text: []string{"revision: unknown"}},
		{name: "go install module@version",
			bi:    &debug.BuildInfo{Main: debug.Module{Path: "github.com/compatbot/compatbot", Version: "v1.4.0"}},
			short: "v1.4.0", ua: "compatbot/v1.4.0", text: []string{"compatbot v1.4.0\n", "revision: unknown"}},
		{name: "checkout with a dirty tree",
			bi: &debug.BuildInfo{Main: debug.Module{Path: "github.com/compatbot/compatbot", Version: "(devel)"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}},
			short: "(devel) 0123456789ab+dirty", ua: "compatbot/devel (rev 0123456789ab+dirty)",
			text: []string{"revision: 0123456789abcdef0123 (modified work tree)", "time:     2026-12-01T10:00:00Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := fromBuildInfo(tc.bi, tc.bi != nil)
			if got := in.Short(); got != tc.short {
				t.Errorf("Short() = %q, want %q", got, tc.short)
			}
			if got := in.UserAgent(); got != tc.ua {
				t.Errorf("UserAgent() = %q, want %q", got, tc.ua)
			}
			for _, w := range tc.text {
				if !strings.Contains(in.String(), w) {
					t.Errorf("String() lacks %q:\n%s", w, in.String())
				}
			}
		})
	}
}

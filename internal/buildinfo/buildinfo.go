// Package buildinfo says which compatbot this is: the module version and
// the VCS revision the Go toolchain stamped into the binary. It is read
// once from runtime/debug.ReadBuildInfo, so a binary built by `go install
// module@version`, by `go build` in a checkout or by a container build
// reports itself without any -ldflags.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// Info is what the binary knows about its own build.
type Info struct {
	Module    string // module path, "github.com/compatbot/compatbot"
	Version   string // "v1.2.3" from go install, "(devel)" from a checkout; never empty
	Revision  string // VCS commit; empty when not stamped (go test, -buildvcs=false)
	Time      string // commit time, RFC 3339; empty when not stamped
	Modified  bool   // the work tree had uncommitted changes
	GoVersion string
}

// Get returns this binary's build information.
var Get = sync.OnceValue(func() Info {
	bi, ok := debug.ReadBuildInfo()
	return fromBuildInfo(bi, ok)
})

func fromBuildInfo(bi *debug.BuildInfo, ok bool) Info {
	in := Info{Module: "github.com/compatbot/compatbot", Version: "(devel)", GoVersion: runtime.Version()}
	if !ok || bi == nil {
		return in
	}
	if bi.Main.Path != "" {
		in.Module = bi.Main.Path
	}
	if bi.Main.Version != "" {
		in.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		in.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// Short is the version with the first 12 digits of the revision, and
// "+dirty" for a modified work tree: "(devel) 0123456789ab+dirty".
func (i Info) Short() string {
	s := i.Version
	if i.Revision != "" {
		rev := i.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		s += " " + rev
		if i.Modified {
			s += "+dirty"
		}
	}
	return s
}

// String is the multi-line text of `compatbot version`.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "compatbot %s\n", i.Version)
	fmt.Fprintf(&b, "module:   %s\n", i.Module)
	rev := i.Revision
	if rev == "" {
		rev = "unknown (not stamped: built without VCS information)"
	} else if i.Modified {
		rev += " (modified work tree)"
	}
	fmt.Fprintf(&b, "revision: %s\n", rev)
	if i.Time != "" {
		fmt.Fprintf(&b, "time:     %s\n", i.Time)
	}
	fmt.Fprintf(&b, "go:       %s\n", i.GoVersion)
	return b.String()
}

// UserAgent is what compatbot sends to GitHub, which asks every client to
// name itself so a misbehaving one can be traced to its operator:
// "compatbot/v1.2.3 (rev 0123456789ab)".
func (i Info) UserAgent() string {
	ua := "compatbot/" + strings.Trim(i.Version, "()")
	if i.Revision != "" {
		rev := i.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		ua += " (rev " + rev
		if i.Modified {
			ua += "+dirty"
		}
		ua += ")"
	}
	return ua
}

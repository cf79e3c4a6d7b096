package vdb

// The qlist-like printers below exist so the tests can compare what Read
// parsed with what qlist printed for the same database (testdata).

import (
	"sort"
	"strings"
)

// FormatOptions selects what FormatPackages prints per package, with
// qlist -I's flags as the model so the output can be checked against it.
type FormatOptions struct {
	// Slot is 0 (none, qlist -I), 1 (":slot", -S) or 2 (":slot/sub", -SS).
	Slot    int
	Repo    bool // "::repo" (-R)
	Version bool // "cat/pkg-ver" instead of "cat/pkg" (-v)
	Use     bool // IUSE flags, "-flag" when off (-U, with -v)
}

// FormatPackages prints one line per installed package, as qlist -I does.
func FormatPackages(installed []Installed, o FormatOptions) string {
	var b strings.Builder
	for _, in := range installed {
		p := in.Package
		b.WriteString(p.CP())
		if o.Version {
			b.WriteString("-" + p.Version.String())
		}
		if o.Slot > 0 && p.Slot != "" {
			b.WriteString(":" + p.Slot)
			if o.Slot > 1 && p.SubSlot != "" {
				b.WriteString("/" + p.SubSlot)
			}
		}
		if o.Repo && p.Repo != "" {
			b.WriteString("::" + p.Repo)
		}
		if o.Use {
			on := map[string]bool{}
			for _, u := range in.Use {
				on[u] = true
			}
			iuse := append([]string(nil), in.IUse...)
			sort.Strings(iuse)
			for _, f := range iuse {
				if on[f] {
					b.WriteString(" " + f)
				} else {
					b.WriteString(" -" + f)
				}
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// ContentsOptions selects the CONTENTS entries FormatContents prints,
// after qlist's -d, -o, -s, -v and --showdebug.
type ContentsOptions struct {
	Dirs, Objs, Syms bool // none set: objs and syms, as qlist prints by default
	// Verbose prints a "cat/pkg-ver CONTENTS:" header and symlink targets.
	Verbose bool
	// ShowDebug keeps /usr/lib/debug, which qlist hides by default.
	ShowDebug bool
}

const debugDir = "/usr/lib/debug"

// FormatContents prints the files of one package, as qlist PKG does.
func FormatContents(in Installed, contents []ContentEntry, o ContentsOptions) string {
	if !o.Dirs && !o.Objs && !o.Syms {
		o.Objs, o.Syms = true, true
	}
	var b strings.Builder
	if o.Verbose {
		b.WriteString(in.Package.CP() + "-" + in.Package.Version.String() + " CONTENTS:\n")
	}
	for _, e := range contents {
		if !o.ShowDebug && (e.Path == debugDir || strings.HasPrefix(e.Path, debugDir+"/")) {
			continue
		}
		switch {
		case e.Type == Dir && o.Dirs:
			b.WriteString(e.Path + "/\n")
		case e.Type == Obj && o.Objs:
			b.WriteString(e.Path + "\n")
		case e.Type == Sym && o.Syms:
			b.WriteString(e.Path)
			if o.Verbose {
				b.WriteString(" -> " + e.Target)
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

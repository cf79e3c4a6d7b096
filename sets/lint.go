package sets

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// Severity of a Diagnostic.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Diagnostic is one finding at a precise position of a repository file.
type Diagnostic struct {
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Col      int      `json:"col"`
	Severity Severity `json:"severity"`
	Code     string   `json:"code"` // stable identifier, e.g. "invalid-atom", "missing-reason"
	Message  string   `json:"message"`
}

// Lint codes.
const (
	CodeInvalidAtom    = "invalid-atom"     // entry does not parse (position of the error)
	CodeDuplicate      = "duplicate"        // same cat/pkg (or @set) twice in one set
	CodeMissingReason  = "missing-reason"   // entry without "# reason" or comment block
	CodeUnknownSet     = "unknown-set"      // @set that is neither in the repo nor a Portage set
	CodeArchOnly       = "arch-only"        // on some arches of a version only, reason does not say so
	CodeMissingSet     = "missing-set"      // arch listed in the config without a set file
	CodeNotConfigured  = "not-configured"   // warning: set of a version/arch the config does not list
	CodeNotASet        = "not-a-set"        // warning: file in the sets folder not named like a set
	CodeInvalidName    = "invalid-name"     // set file whose version or os-arch is no valid name (not read)
	CodeTooLarge       = "too-large"        // set file over Limits.FileBytes (not read)
	CodeLongLine       = "long-line"        // line over Limits.LineBytes (file not read)
	CodeTooManyEntries = "too-many-entries" // set over Limits.Entries (not read)
	CodeTooManyFiles   = "too-many-files"   // more set files than Limits.Files (the rest not read)
)

// String is "file:line:col: message" (warnings: "file:line:col: warning:
// message"), the format editors and CI annotations jump to.
func (d Diagnostic) String() string {
	if d.Severity == SeverityWarning {
		return fmt.Sprintf("%s:%d:%d: warning: %s", d.File, d.Line, d.Col, d.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, d.Col, d.Message)
}

// WellKnownSets are the sets Portage itself defines (sets.conf), which an
// "@name" entry may use without the repository having a set of that name.
var WellKnownSets = []string{
	"changed-deps", "changed-slot", "downgrade", "golang-rebuild", "installed",
	"live-rebuild", "module-rebuild", "preserved-rebuild", "profile", "rebuild",
	"rust-rebuild", "security", "selected", "selected-packages", "selected-sets",
	"system", "unavailable", "unavailable-installed", "usersets", "world",
	"x11-module-rebuild",
}

// LintSetFile reports invalid entries, duplicates and entries without a reason.
func LintSetFile(sf *SetFile) []Diagnostic { return lintSetFile(sf, true) }

// lintSetFile lints every list of sf; requireReasons is the repo config's
// choice (EESSI's own lists carry no reasons).
func lintSetFile(sf *SetFile, requireReasons bool) []Diagnostic {
	out := lintEntries(sf, sf.Entries, "", requireReasons)
	out = append(out, lintEntries(sf, sf.PackageSets, "package_sets", requireReasons)...)
	out = append(out, lintEntries(sf, sf.Masks, "mask", requireReasons)...)
	out = append(out, lintEntries(sf, sf.Unmasks, "unmask", requireReasons)...)
	out = append(out, lintEntries(sf, sf.Removals, "removal", requireReasons)...)
	return out
}

func lintEntries(sf *SetFile, entries []Entry, list string, requireReasons bool) []Diagnostic {
	var out []Diagnostic
	seen := map[string]int{}
	where := "this set"
	if list != "" {
		where = "this " + list + " list"
	}
	for _, e := range entries {
		file := sf.EntryFile(e)
		if e.Err != nil {
			col := e.Col
			msg := e.Err.Error()
			if ae, ok := e.Err.(*AtomError); ok {
				col += ae.Col - 1
				msg = fmt.Sprintf("invalid entry %q: %s", ae.Input, ae.Msg)
			}
			out = append(out, Diagnostic{File: file, Line: e.Line, Col: col, Severity: SeverityError, Code: CodeInvalidAtom, Message: msg})
			continue
		}
		key := entryKey(e)
		if list == "mask" || list == "unmask" {
			// package.mask may name one package in several ranges.
			key = e.Token
		}
		if first, dup := seen[key]; dup {
			out = append(out, Diagnostic{File: file, Line: e.Line, Col: e.Col, Severity: SeverityError, Code: CodeDuplicate,
				Message: fmt.Sprintf("%s is already in %s at line %d", key, where, first)})
		} else {
			seen[key] = e.Line
		}
		if requireReasons && e.Reason == "" {
			out = append(out, Diagnostic{File: file, Line: e.Line, Col: e.Col, Severity: SeverityError, Code: CodeMissingReason,
				Message: fmt.Sprintf("%s has no reason: add \"# why it is here\" after it or a comment block above it", e.Token)})
		}
	}
	return out
}

// entryKey identifies the package an entry is about: cat/pkg (with a
// blocker's "!" kept apart), or "@name" for a set reference.
func entryKey(e Entry) string {
	if e.Atom != nil {
		switch e.Atom.Blocker {
		case WeakBlocker:
			return "!" + e.Atom.CP()
		case StrongBlocker:
			return "!!" + e.Atom.CP()
		}
		return e.Atom.CP()
	}
	if e.Err == nil && e.SetRef != "" {
		return "@" + e.SetRef
	}
	return e.Token
}

// Lint checks the whole repository: every set file (LintSetFile), @set
// references, packages on only some arches of a version, and the config's
// arches against the set files. The result is sorted by file, line and
// column, without repeats (YAML lists yield one set per arch from one file).
func Lint(r *Repo) []Diagnostic {
	var out []Diagnostic
	names := map[string]bool{}
	for _, n := range WellKnownSets {
		names[n] = true
	}
	for _, sf := range r.Sets {
		names[sf.Name] = true
	}
	out = append(out, r.Diags...)
	for _, sf := range r.Sets {
		out = append(out, lintSetFile(sf, r.Config.ReasonsRequired())...)
		// PackageSets are not checked: EESSI keeps them in its overlay.
		for _, e := range sf.Entries {
			if e.Err == nil && e.SetRef != "" && !names[e.SetRef] {
				out = append(out, Diagnostic{File: sf.EntryFile(e), Line: e.Line, Col: e.Col + 1, Severity: SeverityError, Code: CodeUnknownSet,
					Message: fmt.Sprintf("@%s is not a set of this repository nor a Portage set (@world, @system, @selected, @profile, ...)", e.SetRef)})
			}
		}
	}
	out = append(out, r.Problems...)
	out = append(out, lintArches(r)...)
	out = append(out, lintConfigArches(r)...)
	for _, p := range r.Skipped {
		out = append(out, Diagnostic{File: p, Line: 1, Col: 1, Severity: SeverityWarning, Code: CodeNotASet,
			Message: "not read: the name is not that of a set file of layout " + layoutName(r.Config)})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Message < b.Message
	})
	return slices.Compact(out)
}

func layoutName(c *Config) string {
	if c == nil || c.Layout == "" {
		return LayoutTree
	}
	return c.Layout
}

// lintArches reports a package that is in some arch sets of a version and
// not in others, unless its reason says so: the reason of the entry (in a
// set that has it) contains the word "only" or names an arch of that
// version ("x86_64" or "linux-x86_64"), or a YAML include_on/exclude_on
// states it. Sets without an arch (eessi-2020.08) take no part.
func lintArches(r *Repo) []Diagnostic {
	var out []Diagnostic
	byVersion := map[string][]*SetFile{}
	for _, sf := range r.Sets {
		// Arches the config does not list get a not-configured warning
		// instead of taking part.
		var listed []string
		if r.Config != nil {
			listed = r.Config.Versions[sf.Version].Arches
		}
		if !sf.Unread && sf.Arch != "" && (len(listed) == 0 || slices.Contains(listed, sf.OS+"-"+sf.Arch)) {
			byVersion[sf.Version] = append(byVersion[sf.Version], sf)
		}
	}
	for _, version := range r.Versions() {
		group := byVersion[version]
		if len(group) < 2 {
			continue
		}
		has := make([]map[string]bool, len(group))
		var archWords []string
		for i, sf := range group {
			has[i] = map[string]bool{}
			for _, e := range sf.Entries {
				has[i][entryKey(e)] = true
			}
			archWords = append(archWords, sf.OS+"-"+sf.Arch, sf.Arch)
		}
		for _, sf := range group {
			for _, e := range sf.Entries {
				if e.Err != nil || e.ArchScoped || explainsArches(e.Reason, archWords) {
					continue
				}
				key := entryKey(e)
				var missing []string
				for j, other := range group {
					if !has[j][key] {
						missing = append(missing, other.OS+"-"+other.Arch)
					}
				}
				if len(missing) == 0 {
					continue
				}
				out = append(out, Diagnostic{File: sf.EntryFile(e), Line: e.Line, Col: e.Col, Severity: SeverityError, Code: CodeArchOnly,
					Message: fmt.Sprintf("%s is on %s-%s but not on %s of version %s; say why in its reason (e.g. \"# %s only: ...\")",
						key, sf.OS, sf.Arch, strings.Join(missing, ", "), version, sf.Arch)})
			}
		}
	}
	return out
}

func explainsArches(reason string, archWords []string) bool {
	if reason == "" {
		return false
	}
	low := strings.ToLower(reason)
	words := strings.FieldsFunc(low, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-')
	})
	for _, w := range words {
		if w == "only" || slices.Contains(archWords, w) {
			return true
		}
	}
	return false
}

// lintConfigArches reports config arches without a set file (at the arch's
// line in the config) and, as warnings, sets of a version or arch the
// config does not list when it lists that version's arches.
func lintConfigArches(r *Repo) []Diagnostic {
	cfg := r.Config
	if cfg == nil || len(cfg.Versions) == 0 {
		return nil
	}
	var out []Diagnostic
	versions := make([]string, 0, len(cfg.Versions))
	for v := range cfg.Versions {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	for _, v := range versions {
		vc := cfg.Versions[v]
		allArches := false
		for _, sf := range r.Sets {
			if sf.Version == v && sf.Arch == "" {
				allArches = true
			}
		}
		for i, a := range vc.Arches {
			osName, arch, _ := strings.Cut(a, "-")
			if allArches || r.Set(Target{Version: v, OS: osName, Arch: arch}) != nil {
				continue
			}
			line := vc.Line
			if i < len(vc.ArchLines) {
				line = vc.ArchLines[i]
			}
			out = append(out, Diagnostic{File: cfg.Path, Line: line, Col: 1, Severity: SeverityError, Code: CodeMissingSet,
				Message: fmt.Sprintf("versions.%s.arches: %s has no set file (want %s)", v, a, expectedSetPath(cfg, v, a))})
		}
	}
	for _, sf := range r.Sets {
		vc, ok := cfg.Versions[sf.Version]
		switch {
		case !ok:
			out = append(out, Diagnostic{File: sf.Path, Line: 1, Col: 1, Severity: SeverityWarning, Code: CodeNotConfigured,
				Message: fmt.Sprintf("version %s is not in %s (its status defaults to open)", sf.Version, cfg.Path)})
		case sf.Arch != "" && len(vc.Arches) > 0 && !slices.Contains(vc.Arches, sf.OS+"-"+sf.Arch):
			out = append(out, Diagnostic{File: sf.Path, Line: 1, Col: 1, Severity: SeverityWarning, Code: CodeNotConfigured,
				Message: fmt.Sprintf("%s-%s is not in versions.%s.arches of %s", sf.OS, sf.Arch, sf.Version, cfg.Path)})
		}
	}
	return out
}

func expectedSetPath(cfg *Config, version, osArch string) string {
	switch cfg.Layout {
	case LayoutEESSI:
		return path.Join(cfg.SetsDir, "eessi-"+version+"-"+osArch)
	case LayoutYAML:
		return "version " + version + " in " + strings.Join(cfg.YAMLFiles, " or ")
	case LayoutEESSIAnsible:
		return "an include_on/exclude_on naming it, or eessi_host_os/eessi_host_arch, for version " + version
	}
	return path.Join(cfg.SetsDir, version, osArch)
}

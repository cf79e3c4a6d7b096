package sets

// Entry is one non-comment line of a set file (or one package of an EESSI
// YAML list, converted to the same model).
type Entry struct {
	Line int // 1-based
	Col  int // 1-based column of the entry's first token
	// Token is the first whitespace-separated token, the only part Portage reads.
	Token string
	// Atom is set when Token parsed as an atom; SetRef when Token is "@name".
	Atom   *Atom
	SetRef string
	// Err is the parse error of Token, kept so lint can report it at Line:Col.
	Err error
	// Reason documents why the entry is in the set: its trailing "# ..."
	// comment, or the comment block right above it. "" when undocumented.
	Reason string
	// Comment is the trailing "# ..." text; Block the comment block above
	// the entry's group (shared by the group's entries) and Group its
	// 1-based number, 0 when no block is above. Format uses them to print
	// the file back.
	Comment string
	Block   []string
	Group   int
	// ArchScoped is set for YAML entries with include_on/exclude_on: the
	// list states on which arches the package is, which is the reason for
	// it being on some arches only.
	ArchScoped bool
	// File is the file the entry was read from when it is not the set's
	// Path: an EESSI Ansible target merges defaults/main.yml with its
	// vars file, so one target's entries come from two files.
	File string
}

// Pin is one thing a target's build is pinned to (the Gentoo commit, an
// overlay's URL, branch and commit): changing it changes every package of
// the target without any list changing, so diff reports it.
type Pin struct {
	Name  string // e.g. "gentoo_git_commit", "overlay eessi"
	Value string // e.g. the commit; an overlay is "url branch=... commit=..."
	File  string
	Line  int
}

// CommentBlock is a comment block that documents no entry (a header, or a
// block followed by a blank line); Format keeps it before entry Before.
type CommentBlock struct {
	Line   int
	Before int
	Lines  []string
}

// SetFile is one parsed set file of the managed repository.
type SetFile struct {
	Path    string // path inside the repository, used in diagnostics
	Name    string // set name as Portage sees it (file base name)
	Version string
	// OS and Arch are "" for a set that applies to every arch of its
	// version (EESSI's old eessi-2020.08 naming).
	OS       string
	Arch     string
	Entries  []Entry
	Detached []CommentBlock
	// Unread is set when the file was over a limit (Limits): it has no
	// entries, a lint error says why, and its target is left out of the
	// diff rather than shown as every package removed.
	Unread bool
	// The other lists of a target, read from EESSI's Ansible role (empty
	// for compatbot's own set files): Portage sets installed as "@name"
	// (SetRef set), package.mask and package.unmask lines, packages
	// unmerged after the install, and the pins of the build.
	PackageSets []Entry
	Masks       []Entry
	Unmasks     []Entry
	Removals    []Entry
	Pins        []Pin
}

// EntryFile is the file entry e of sf was read from.
func (sf *SetFile) EntryFile(e Entry) string {
	if e.File != "" {
		return e.File
	}
	return sf.Path
}

// Target names one version and os-arch, the unit compatbot builds and
// deploys. OS and Arch are "" for a set that applies to all arches.
type Target struct {
	Version string `json:"version"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func (t Target) String() string {
	if t.OS == "" && t.Arch == "" {
		return t.Version + " (all arches)"
	}
	return t.Version + " " + t.OS + "-" + t.Arch
}

// Less orders targets by version, then os, then arch.
func (t Target) Less(o Target) bool {
	if t.Version != o.Version {
		return t.Version < o.Version
	}
	if t.OS != o.OS {
		return t.OS < o.OS
	}
	return t.Arch < o.Arch
}

// Target is the version and os-arch the set is for.
func (sf *SetFile) Target() Target { return Target{Version: sf.Version, OS: sf.OS, Arch: sf.Arch} }

// Key is the package the entry is about, as lint and diff match entries:
// "cat/pkg" ("!cat/pkg"/"!!cat/pkg" for blockers), "@name" for a set
// reference, the raw token when it does not parse.
func (e Entry) Key() string { return entryKey(e) }

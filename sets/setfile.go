package sets

// Entry is one non-comment line of a set file.
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
}

// SetFile is one parsed set file of the managed repository.
type SetFile struct {
	Path    string // path inside the repository, used in diagnostics
	Name    string // set name as Portage sees it (file base name)
	Version string
	OS      string
	Arch    string
	Entries []Entry
}

// Target names one version and os-arch, the unit compatbot builds and deploys.
type Target struct {
	Version string
	OS      string
	Arch    string
}

func (t Target) String() string { return t.Version + " " + t.OS + "-" + t.Arch }

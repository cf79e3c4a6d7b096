package sets

// Operator is an atom's version operator.
type Operator string

const (
	OpNone         Operator = ""
	OpLess         Operator = "<"
	OpLessEqual    Operator = "<="
	OpEqual        Operator = "="
	OpTilde        Operator = "~"
	OpGreaterEqual Operator = ">="
	OpGreater      Operator = ">"
)

// Blocker is the !/!! prefix of a blocker atom.
type Blocker int

const (
	NoBlocker Blocker = iota
	WeakBlocker
	StrongBlocker
)

// UseDep is one entry of an atom's [use,deps].
type UseDep struct {
	Name string
	// Form is how the flag is required: "" (enabled), "-" (disabled),
	// "=" (same as parent), "!=" (opposite), "?" (if parent enabled),
	// "!?" (if parent disabled).
	Form string
	// Default is "+" or "-" for (+)/(-), "" when absent.
	Default string
}

// Atom is a package dependency specification: [!|!!][op]cat/pkg[-ver][*][:slot[/sub]|:*|:=][::repo][use].
type Atom struct {
	Blocker  Blocker
	Op       Operator
	Category string // "" only when parsed without a category (qatom-style input)
	Package  string
	Version  *Version // nil unless Op != OpNone
	Glob     bool     // =cat/pkg-1.2*
	Slot     string
	SubSlot  string
	SlotOp   string // "", "*" or "="
	Repo     string
	Use      []UseDep
}

// Package is one concrete package-version, e.g. as installed:
// cat/pkg-ver[:slot[/sub]][::repo].
type Package struct {
	Category string
	Name     string
	Version  Version
	Slot     string
	SubSlot  string
	Repo     string
}

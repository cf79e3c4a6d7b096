package sets

// ChangeKind classifies a package change between two revisions of a set.
type ChangeKind string

const (
	Added             ChangeKind = "added"
	Removed           ChangeKind = "removed"
	Upgraded          ChangeKind = "upgraded"
	Downgraded        ChangeKind = "downgraded"
	ConstraintChanged ChangeKind = "constraint-changed"
)

// Change is one package's change within one Target's set.
type Change struct {
	Kind    ChangeKind
	Package string // cat/pkg, or @set for set references
	Old     string // entry token in base, "" when added
	New     string // entry token in head, "" when removed
	Line    int    // line in the head set file (base file when removed)
	File    string
}

// TargetDiff is the diff of one version/os-arch.
type TargetDiff struct {
	Target  Target
	File    string
	Changes []Change
}

package sets

// Version is a package version as PMS "Names and versions" defines it:
// numeric components, an optional letter, suffixes and a revision.
type Version struct {
	// Numbers keeps the components as written (leading zeros matter to PMS
	// comparison of all but the first component).
	Numbers  []string
	Letter   byte // 0 when absent
	Suffixes []Suffix
	Revision int // -rN; 0 when absent
	// RevisionGiven records an explicit "-r0" so String round-trips.
	RevisionGiven bool
}

// SuffixKind orders the PMS suffixes: _alpha < _beta < _pre < _rc < (none) < _p.
type SuffixKind int

const (
	SuffixAlpha SuffixKind = iota
	SuffixBeta
	SuffixPre
	SuffixRC
	SuffixNone
	SuffixP
)

// Suffix is one _alphaN, _betaN, _preN, _rcN or _pN; Number is "" when absent.
type Suffix struct {
	Kind   SuffixKind
	Number string
}

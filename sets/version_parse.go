package sets

import (
	"fmt"
	"strings"
)

var suffixNames = [...]struct {
	name string
	kind SuffixKind
}{
	// "pre" before "p" so the longer name wins.
	{"alpha", SuffixAlpha}, {"beta", SuffixBeta}, {"pre", SuffixPre}, {"rc", SuffixRC}, {"p", SuffixP},
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// ParseVersion parses a PMS version: digits(.digits)* [a-z] (_suffix[digits])* [-r digits].
func ParseVersion(s string) (Version, error) {
	var v Version
	i := 0
	for {
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == start {
			return Version{}, fmt.Errorf("invalid version %q: expected a number at column %d", s, i+1)
		}
		v.Numbers = append(v.Numbers, s[start:i])
		if i < len(s) && s[i] == '.' {
			i++
			continue
		}
		break
	}
	if i < len(s) && s[i] >= 'a' && s[i] <= 'z' {
		v.Letter = s[i]
		i++
	}
	for i < len(s) && s[i] == '_' {
		i++
		matched := false
		for _, sn := range suffixNames {
			if strings.HasPrefix(s[i:], sn.name) {
				i += len(sn.name)
				start := i
				for i < len(s) && isDigit(s[i]) {
					i++
				}
				v.Suffixes = append(v.Suffixes, Suffix{Kind: sn.kind, Number: s[start:i]})
				matched = true
				break
			}
		}
		if !matched {
			return Version{}, fmt.Errorf("invalid version %q: unknown suffix at column %d (want _alpha, _beta, _pre, _rc or _p)", s, i+1)
		}
	}
	if strings.HasPrefix(s[i:], "-r") {
		i += 2
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == start {
			return Version{}, fmt.Errorf("invalid version %q: revision needs digits at column %d", s, i+1)
		}
		n, ok := smallInt(s[start:i])
		if !ok {
			return Version{}, fmt.Errorf("invalid version %q: revision too large", s)
		}
		v.Revision, v.RevisionGiven = n, true
	}
	if i != len(s) {
		return Version{}, fmt.Errorf("invalid version %q: unexpected %q at column %d", s, s[i:], i+1)
	}
	return v, nil
}

func smallInt(d string) (int, bool) {
	d = strings.TrimLeft(d, "0")
	if len(d) > 18 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(d); i++ {
		n = n*10 + int(d[i]-'0')
	}
	return n, true
}

// String prints the version as parsed (explicit -r0 kept).
func (v Version) String() string {
	var b strings.Builder
	b.WriteString(strings.Join(v.Numbers, "."))
	if v.Letter != 0 {
		b.WriteByte(v.Letter)
	}
	for _, s := range v.Suffixes {
		b.WriteByte('_')
		b.WriteString(suffixNames[suffixIndex(s.Kind)].name)
		b.WriteString(s.Number)
	}
	if v.RevisionGiven || v.Revision != 0 {
		fmt.Fprintf(&b, "-r%d", v.Revision)
	}
	return b.String()
}

func suffixIndex(k SuffixKind) int {
	for i, sn := range suffixNames {
		if sn.kind == k {
			return i
		}
	}
	return 0
}

// cmpDigits compares decimal strings numerically without overflow.
func cmpDigits(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// Compare orders versions as PMS "Version comparison" specifies
// (Portage's vercmp is the reference): -1, 0 or 1.
func (v Version) Compare(o Version) int {
	if c := v.compareIgnoringRevision(o); c != 0 {
		return c
	}
	return cmpInt(v.Revision, o.Revision)
}

func (v Version) compareIgnoringRevision(o Version) int {
	if c := cmpDigits(v.Numbers[0], o.Numbers[0]); c != 0 {
		return c
	}
	for i := 1; i < len(v.Numbers) && i < len(o.Numbers); i++ {
		a, b := v.Numbers[i], o.Numbers[i]
		if a[0] == '0' || b[0] == '0' {
			// PMS: a component with a leading zero compares as a string
			// with trailing zeros stripped.
			if c := strings.Compare(strings.TrimRight(a, "0"), strings.TrimRight(b, "0")); c != 0 {
				return c
			}
		} else if c := cmpDigits(a, b); c != 0 {
			return c
		}
	}
	if c := cmpInt(len(v.Numbers), len(o.Numbers)); c != 0 {
		return c
	}
	if c := cmpInt(int(v.Letter), int(o.Letter)); c != 0 {
		return c
	}
	for i := 0; i < len(v.Suffixes) && i < len(o.Suffixes); i++ {
		a, b := v.Suffixes[i], o.Suffixes[i]
		if a.Kind != b.Kind {
			return cmpInt(int(a.Kind), int(b.Kind))
		}
		if c := cmpDigits(a.Number, b.Number); c != 0 {
			return c
		}
	}
	// A longer suffix list is greater when its next suffix is _p, smaller
	// otherwise (1.0_alpha < 1.0 < 1.0_p).
	if len(v.Suffixes) > len(o.Suffixes) {
		return cmpInt(int(v.Suffixes[len(o.Suffixes)].Kind), int(SuffixNone))
	}
	if len(o.Suffixes) > len(v.Suffixes) {
		return cmpInt(int(SuffixNone), int(o.Suffixes[len(v.Suffixes)].Kind))
	}
	return 0
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

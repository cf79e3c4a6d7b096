package sets

import (
	"fmt"
	"strings"
)

// AtomError says what is wrong with an atom and where (1-based column
// inside the atom), so set-file lint can point at the exact character.
type AtomError struct {
	Input string
	Col   int
	Msg   string
}

func (e *AtomError) Error() string {
	return fmt.Sprintf("col %d: %s in atom %q", e.Col, e.Msg, e.Input)
}

// ParseAtom parses a full atom; the category is required.
func ParseAtom(s string) (Atom, error) { return parseAtom(s, true) }

// ParseAtomLoose also accepts atoms without a category ("a-1", ">=a-1")
// and a revision after ~, as portage-utils' qatom does.
func ParseAtomLoose(s string) (Atom, error) { return parseAtom(s, false) }

func parseAtom(s string, needCategory bool) (Atom, error) {
	var a Atom
	fail := func(pos int, format string, args ...any) (Atom, error) {
		return Atom{}, &AtomError{Input: s, Col: pos + 1, Msg: fmt.Sprintf(format, args...)}
	}
	i := 0
	if strings.HasPrefix(s, "!!") {
		a.Blocker, i = StrongBlocker, 2
	} else if strings.HasPrefix(s, "!") {
		a.Blocker, i = WeakBlocker, 1
	}
	for _, op := range []Operator{OpLessEqual, OpGreaterEqual, OpLess, OpGreater, OpEqual, OpTilde} {
		if strings.HasPrefix(s[i:], string(op)) {
			a.Op = op
			i += len(op)
			break
		}
	}
	rest := s[i:]
	end := len(rest)
	if k := strings.IndexAny(rest, ":["); k >= 0 {
		end = k
	}
	body := rest[:end]
	if a.Op == OpEqual && strings.HasSuffix(body, "*") {
		a.Glob = true
		body = body[:len(body)-1]
	}
	pkgStart := i
	if slash := strings.IndexByte(body, '/'); slash >= 0 {
		a.Category = body[:slash]
		if err := validName(a.Category, false); err != "" {
			return fail(i, "invalid category %q: %s", a.Category, err)
		}
		body = body[slash+1:]
		pkgStart = i + slash + 1
	} else if needCategory {
		return fail(i, "missing category (want cat/pkg)")
	}
	if a.Op != OpNone {
		h := versionHyphen(body)
		if h < 0 {
			// Point at a malformed version rather than at the name when
			// something after a hyphen starts like one.
			for k := len(body) - 1; k > 0; k-- {
				if body[k] == '-' && k+1 < len(body) && isDigit(body[k+1]) {
					_, err := ParseVersion(body[k+1:])
					return fail(pkgStart+k+1, "%v", err)
				}
			}
			return fail(pkgStart, "operator %q needs a version (e.g. %scat/pkg-1.0)", a.Op, a.Op)
		}
		v, err := ParseVersion(body[h+1:])
		if err != nil {
			return fail(pkgStart+h+1, "%v", err)
		}
		if a.Op == OpTilde && needCategory && (v.Revision != 0 || v.RevisionGiven) {
			return fail(pkgStart+h+1, "~ ignores the revision; drop -r%d", v.Revision)
		}
		a.Version = &v
		body = body[:h]
	} else if versionHyphen(body) >= 0 {
		return fail(pkgStart, "a version needs an operator (e.g. =%s)", rest[:end])
	}
	a.Package = body
	if err := validName(a.Package, true); err != "" {
		return fail(pkgStart, "invalid package name %q: %s", a.Package, err)
	}
	i += end
	// Slot, repo and USE dependencies, in that order.
	if i < len(s) && s[i] == ':' && !strings.HasPrefix(s[i:], "::") {
		j := i + 1
		k := j
		for k < len(s) && s[k] != '[' && s[k] != ':' {
			k++
		}
		slot := s[j:k]
		switch {
		case slot == "*" || slot == "=":
			a.SlotOp = slot
		case slot == "":
			return fail(i, "empty slot")
		default:
			if strings.HasSuffix(slot, "=") {
				a.SlotOp = "="
				slot = slot[:len(slot)-1]
			}
			a.Slot, a.SubSlot, _ = strings.Cut(slot, "/")
			if validName(a.Slot, false) != "" || (strings.Contains(slot, "/") && validName(a.SubSlot, false) != "") {
				return fail(j, "invalid slot %q", slot)
			}
		}
		i = k
	}
	if strings.HasPrefix(s[i:], "::") {
		j := i + 2
		k := j
		for k < len(s) && s[k] != '[' {
			k++
		}
		a.Repo = s[j:k]
		if validName(a.Repo, true) != "" {
			return fail(j, "invalid repository name %q", a.Repo)
		}
		i = k
	}
	if i < len(s) && s[i] == '[' {
		if !strings.HasSuffix(s, "]") {
			return fail(len(s)-1, "unterminated USE dependency list")
		}
		pos := i + 1
		for _, u := range strings.Split(s[i+1:len(s)-1], ",") {
			d, ok := parseUseDep(u)
			if !ok {
				return fail(pos, "invalid USE dependency %q", u)
			}
			a.Use = append(a.Use, d)
			pos += len(u) + 1
		}
		i = len(s)
	}
	if i != len(s) {
		return fail(i, "unexpected %q", s[i:])
	}
	if a.Glob && a.Op != OpEqual {
		return fail(0, "* needs the = operator")
	}
	return a, nil
}

// versionHyphen finds the hyphen that starts the version in "name-ver".
func versionHyphen(s string) int {
	for h := strings.LastIndexByte(s, '-'); h > 0; h = strings.LastIndexByte(s[:h], '-') {
		if _, err := ParseVersion(s[h+1:]); err == nil {
			return h
		}
	}
	return -1
}

// validName checks PMS category/package/slot/repository names; "" when valid.
func validName(n string, noTrailingVersion bool) string {
	if n == "" {
		return "empty"
	}
	if n[0] == '-' || n[0] == '.' || (n[0] == '+' && noTrailingVersion) {
		return "must not start with " + n[:1]
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		// PMS allows '.' in category names but not in package names.
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '_' || c == '-' || c == '+' || c == '.' && !noTrailingVersion) {
			return fmt.Sprintf("character %q not allowed", c)
		}
	}
	if noTrailingVersion && versionHyphen(n) >= 0 {
		return "ends in something that looks like a version"
	}
	return ""
}

func parseUseDep(u string) (UseDep, bool) {
	var d UseDep
	if strings.HasPrefix(u, "!") {
		if strings.HasSuffix(u, "?") {
			d.Form, u = "!?", u[1:len(u)-1]
		} else if strings.HasSuffix(u, "=") {
			d.Form, u = "!=", u[1:len(u)-1]
		} else {
			return d, false
		}
	} else if strings.HasPrefix(u, "-") {
		d.Form, u = "-", u[1:]
	} else if strings.HasSuffix(u, "?") {
		d.Form, u = "?", u[:len(u)-1]
	} else if strings.HasSuffix(u, "=") {
		d.Form, u = "=", u[:len(u)-1]
	}
	if strings.HasSuffix(u, "(+)") || strings.HasSuffix(u, "(-)") {
		d.Default = u[len(u)-2 : len(u)-1]
		u = u[:len(u)-3]
	}
	if u == "" || !(u[0] >= 'a' && u[0] <= 'z' || u[0] >= 'A' && u[0] <= 'Z' || isDigit(u[0])) || validName(u, false) != "" {
		return d, false
	}
	d.Name = u
	return d, true
}

// CP is "cat/pkg".
func (a Atom) CP() string {
	if a.Category == "" {
		return a.Package
	}
	return a.Category + "/" + a.Package
}

// String prints the atom canonically; ParseAtom(a.String()) == a.
func (a Atom) String() string {
	var b strings.Builder
	switch a.Blocker {
	case WeakBlocker:
		b.WriteString("!")
	case StrongBlocker:
		b.WriteString("!!")
	}
	b.WriteString(string(a.Op))
	b.WriteString(a.CP())
	if a.Version != nil {
		b.WriteString("-" + a.Version.String())
	}
	if a.Glob {
		b.WriteString("*")
	}
	if a.Slot != "" {
		b.WriteString(":" + a.Slot)
		if a.SubSlot != "" {
			b.WriteString("/" + a.SubSlot)
		}
		if a.SlotOp == "=" {
			b.WriteString("=")
		}
	} else if a.SlotOp != "" {
		b.WriteString(":" + a.SlotOp)
	}
	if a.Repo != "" {
		b.WriteString("::" + a.Repo)
	}
	if len(a.Use) > 0 {
		b.WriteString("[")
		for i, u := range a.Use {
			if i > 0 {
				b.WriteString(",")
			}
			pre, post := "", ""
			switch u.Form {
			case "-":
				pre = "-"
			case "=", "?":
				post = u.Form
			case "!=", "!?":
				pre, post = "!", u.Form[1:]
			}
			b.WriteString(pre + u.Name)
			if u.Default != "" {
				b.WriteString("(" + u.Default + ")")
			}
			b.WriteString(post)
		}
		b.WriteString("]")
	}
	return b.String()
}

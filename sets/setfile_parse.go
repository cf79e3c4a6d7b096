package sets

import (
	"fmt"
	"strings"
)

// ParseSetFile reads a Portage set file. It never fails on content: a bad
// token is kept as the entry's Err so lint reports it at its line and column.
//
// Reasons: Portage reads only a line's first token, so "atom # reason" stays
// valid. An entry without a trailing reason takes the comment block right
// above it; a comment block covers every entry that follows it up to the next
// blank line, so one comment can document a group.
func ParseSetFile(path string, data []byte) *SetFile {
	sf := &SetFile{Path: path, Name: baseName(path)}
	var block []string
	groupReason := ""
	for n, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			block, groupReason = nil, ""
			continue
		case strings.HasPrefix(trimmed, "#"):
			if groupReason != "" {
				// A comment after entries starts a new group.
				block, groupReason = nil, ""
			}
			block = append(block, strings.TrimSpace(strings.TrimPrefix(trimmed, "#")))
			continue
		}
		if block != nil {
			groupReason = strings.TrimSpace(strings.Join(block, " "))
			block = nil
		}
		col := strings.Index(line, trimmed) + 1
		token := strings.Fields(trimmed)[0]
		e := Entry{Line: n + 1, Col: col, Token: token, Reason: groupReason}
		if rest := strings.TrimSpace(trimmed[len(token):]); strings.HasPrefix(rest, "#") {
			if r := strings.TrimSpace(strings.TrimLeft(rest, "#")); r != "" {
				e.Reason = r
			}
		} else if rest != "" {
			e.Err = fmt.Errorf("unexpected %q after the entry: Portage reads only the first token; start a reason with #", rest)
		}
		if strings.HasPrefix(token, "@") {
			e.SetRef = token[1:]
			if validName(e.SetRef, false) != "" {
				e.Err = &AtomError{Input: token, Col: 2, Msg: "invalid set name"}
			}
		} else if e.Err == nil {
			a, err := ParseAtom(token)
			if err != nil {
				e.Err = err
			} else {
				e.Atom = &a
			}
		}
		sf.Entries = append(sf.Entries, e)
	}
	return sf
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// String is "file:line:col: message", the format editors jump to.
func (d Diagnostic) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, d.Col, d.Message)
}

// LintSetFile reports invalid entries, duplicates and entries without a reason.
func LintSetFile(sf *SetFile) []Diagnostic {
	var out []Diagnostic
	seen := map[string]int{}
	for _, e := range sf.Entries {
		if e.Err != nil {
			col := e.Col
			msg := e.Err.Error()
			if ae, ok := e.Err.(*AtomError); ok {
				col += ae.Col - 1
				msg = fmt.Sprintf("invalid entry %q: %s", e.Token, ae.Msg)
			}
			out = append(out, Diagnostic{File: sf.Path, Line: e.Line, Col: col, Severity: SeverityError, Code: "invalid-atom", Message: msg})
			continue
		}
		key := "@" + e.SetRef
		if e.Atom != nil {
			key = e.Atom.CP()
		}
		if first, dup := seen[key]; dup {
			out = append(out, Diagnostic{File: sf.Path, Line: e.Line, Col: e.Col, Severity: SeverityError, Code: "duplicate",
				Message: fmt.Sprintf("%s is already in this set at line %d", key, first)})
		} else {
			seen[key] = e.Line
		}
		if e.Reason == "" {
			out = append(out, Diagnostic{File: sf.Path, Line: e.Line, Col: e.Col, Severity: SeverityError, Code: "missing-reason",
				Message: fmt.Sprintf("%s has no reason: add \"# why it is here\" after it or a comment block above it", e.Token)})
		}
	}
	return out
}

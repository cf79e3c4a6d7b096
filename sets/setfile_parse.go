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
// blank line or the next comment line, so one comment can document a group.
// A comment block followed by a blank line documents nothing (a header).
func ParseSetFile(path string, data []byte) *SetFile {
	sf := &SetFile{Path: path, Name: baseName(path)}
	var block, group []string
	blockLine, groupID := 0, 0
	inGroup := false
	detach := func() {
		if block != nil {
			sf.Detached = append(sf.Detached, CommentBlock{Line: blockLine, Before: len(sf.Entries), Lines: block})
			block = nil
		}
	}
	for n, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			detach()
			inGroup, group = false, nil
			continue
		case strings.HasPrefix(trimmed, "#"):
			// A comment after entries starts a new block.
			inGroup, group = false, nil
			if block == nil {
				blockLine = n + 1
			}
			block = append(block, strings.TrimSpace(trimmed[1:]))
			continue
		}
		if block != nil {
			groupID++
			group, block, inGroup = block, nil, true
		}
		col := strings.Index(line, trimmed) + 1
		token := strings.Fields(trimmed)[0]
		e := Entry{Line: n + 1, Col: col, Token: token}
		if inGroup {
			e.Block, e.Group = group, groupID
			e.Reason = strings.TrimSpace(strings.Join(group, " "))
		}
		if rest := strings.TrimSpace(trimmed[len(token):]); strings.HasPrefix(rest, "#") {
			if r := strings.TrimSpace(strings.TrimLeft(rest, "#")); r != "" {
				e.Reason, e.Comment = r, r
			}
		} else if rest != "" {
			e.Err = fmt.Errorf("unexpected %q after the entry: Portage reads only the first token; start a reason with #", rest)
		}
		if strings.HasPrefix(token, "@") {
			e.SetRef = token[1:]
			if validName(e.SetRef, false) != "" {
				e.Err = &AtomError{Input: token, Col: 2, Msg: "invalid set name"}
			}
		} else {
			// Parse even after an "unexpected text" error, so diff still
			// knows the package; an error in the token itself comes first.
			a, err := ParseAtom(token)
			if err != nil {
				e.Err = err
			} else {
				e.Atom = &a
			}
		}
		sf.Entries = append(sf.Entries, e)
	}
	detach()
	return sf
}

// Format prints the set file in canonical form: header comments, then each
// group's comment block followed by its entries, a blank line between
// groups, trailing reasons as " # reason". Text after a token that is not a
// comment (which Portage ignores) is dropped. ParseSetFile(Format()) gives
// the same entries, reasons and comments, and formats to the same bytes.
func (sf *SetFile) Format() []byte {
	var b strings.Builder
	needBlank := false
	lastGroup := 0
	blank := func() {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
	}
	comments := func(lines []string) {
		for _, l := range lines {
			if l == "" {
				b.WriteString("#\n")
			} else {
				b.WriteString("# " + l + "\n")
			}
		}
	}
	d := 0
	for i := 0; i <= len(sf.Entries); i++ {
		for ; d < len(sf.Detached) && sf.Detached[d].Before <= i; d++ {
			blank()
			comments(sf.Detached[d].Lines)
			needBlank, lastGroup = true, 0
		}
		if i == len(sf.Entries) {
			break
		}
		e := sf.Entries[i]
		switch {
		case e.Group != 0 && e.Group != lastGroup:
			blank()
			comments(e.Block)
		case e.Group == 0 && (lastGroup != 0 || needBlank):
			blank()
		}
		needBlank, lastGroup = false, e.Group
		b.WriteString(e.Token)
		if e.Comment != "" {
			b.WriteString(" # " + e.Comment)
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

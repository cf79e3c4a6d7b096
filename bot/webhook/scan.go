package webhook

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// scan validates a JSON document and extracts the Info fields in one pass.
// encoding/json validates the whole document and then walks it again to
// decode; at webhook rates that second walk and its allocations were a
// fifth of the intake's CPU. Semantics follow decoding into generic maps:
// for a repeated key the last occurrence wins and replaces the earlier
// value; a value of the wrong type counts as absent. FuzzDecode checks both
// validity and the extracted fields against encoding/json.
type scan struct {
	data  []byte
	pos   int
	depth int
	info  Info
	// PR numbers as seen from each place that can name one; Decode picks
	// by precedence. target is where a number found in the current PR
	// context goes.
	prNumber, issueNumber, checkRunPR, checkSuitePR, topNumber int64
	target                                                     *int64
}

// maxDepth matches encoding/json's nesting limit.
const maxDepth = 10000

// The value contexts the scanner tells apart; everything else is skipped
// (and still validated).
type where int

const (
	whereSkip         where = iota
	whereRoot               // the document
	wherePR                 // pull_request, issue: an object with a number
	whereCheck              // check_run, check_suite: an object with pull_requests
	wherePRList             // .pull_requests
	wherePRFirst            // .pull_requests[0]
	whereRepository         // repository
	whereInstallation       // installation
)

func (s *scan) fail(msg string) error {
	return fmt.Errorf("payload is not valid JSON: %s at offset %d", msg, s.pos)
}

func (s *scan) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// document scans the whole input as one value.
func (s *scan) document() error {
	if err := s.value(whereRoot, nil, nil); err != nil {
		return err
	}
	s.ws()
	if s.pos != len(s.data) {
		return s.fail("data after the top-level value")
	}
	return nil
}

// value scans one value in context w. num and str, when not nil, receive
// the value if it is an integer or a string, and are cleared otherwise.
func (s *scan) value(w where, num *int64, str *string) error {
	if num != nil {
		*num = 0
	}
	if str != nil {
		*str = ""
	}
	s.ws()
	if s.pos >= len(s.data) {
		return s.fail("unexpected end")
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object(w)
	case c == '[':
		return s.array(w)
	case c == '"':
		start := s.pos
		esc, err := s.str()
		if err != nil {
			return err
		}
		if str != nil {
			*str = unquote(s.data[start:s.pos], esc)
		}
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		start := s.pos
		if err := s.number(); err != nil {
			return err
		}
		if num != nil {
			if n, err := strconv.ParseInt(string(s.data[start:s.pos]), 10, 64); err == nil {
				*num = n
			}
		}
		return nil
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(s.data)-s.pos >= len(lit) && string(s.data[s.pos:s.pos+len(lit)]) == lit {
				s.pos += len(lit)
				return nil
			}
		}
		return s.fail(fmt.Sprintf("invalid character %q", c))
	}
}

func (s *scan) enter() error {
	s.depth++
	if s.depth > maxDepth {
		return s.fail("exceeded max depth")
	}
	s.pos++
	return nil
}

func (s *scan) object(w where) error {
	if err := s.enter(); err != nil {
		return err
	}
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		s.depth--
		return nil
	}
	for {
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return s.fail("want a string key")
		}
		start := s.pos
		esc, err := s.str()
		if err != nil {
			return err
		}
		var key string
		if w != whereSkip {
			key = unquote(s.data[start:s.pos], esc)
		}
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return s.fail("want ':' after an object key")
		}
		s.pos++
		if err := s.member(w, key); err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.data) {
			return s.fail("unexpected end in object")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			s.depth--
			return nil
		default:
			return s.fail("want ',' or '}' in object")
		}
	}
}

func (s *scan) array(w where) error {
	if err := s.enter(); err != nil {
		return err
	}
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		s.depth--
		return nil
	}
	for i := 0; ; i++ {
		elem := whereSkip
		if w == wherePRList && i == 0 {
			elem = wherePRFirst
		}
		if err := s.value(elem, nil, nil); err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.data) {
			return s.fail("unexpected end in array")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.depth--
			return nil
		default:
			return s.fail("want ',' or ']' in array")
		}
	}
}

// member scans the value of key inside an object in context w. A key that
// holds a wanted value resets it first (value clears its targets), so the
// last occurrence wins and one of the wrong type leaves it empty.
func (s *scan) member(w where, key string) error {
	switch w {
	case whereRoot:
		switch key {
		case "action":
			return s.value(whereSkip, nil, &s.info.Action)
		case "number":
			return s.value(whereSkip, &s.topNumber, nil)
		case "pull_request":
			return s.context(wherePR, &s.prNumber)
		case "issue":
			return s.context(wherePR, &s.issueNumber)
		case "check_run":
			return s.context(whereCheck, &s.checkRunPR)
		case "check_suite":
			return s.context(whereCheck, &s.checkSuitePR)
		case "repository":
			s.info.Repo = ""
			return s.value(whereRepository, nil, nil)
		case "installation":
			s.info.Installation = 0
			return s.value(whereInstallation, nil, nil)
		}
	case wherePR, wherePRFirst:
		if key == "number" {
			return s.value(whereSkip, s.target, nil)
		}
	case whereCheck:
		if key == "pull_requests" {
			*s.target = 0
			return s.value(wherePRList, nil, nil)
		}
	case whereRepository:
		if key == "full_name" {
			return s.value(whereSkip, nil, &s.info.Repo)
		}
	case whereInstallation:
		if key == "id" {
			return s.value(whereSkip, &s.info.Installation, nil)
		}
	}
	return s.value(whereSkip, nil, nil)
}

func (s *scan) context(w where, target *int64) error {
	*target = 0
	s.target = target
	err := s.value(w, nil, nil)
	s.target = nil
	return err
}

// str scans a string token, reporting whether it has escapes.
func (s *scan) str() (escaped bool, err error) {
	s.pos++ // opening quote
	for s.pos < len(s.data) {
		// Most of a payload is string bytes (PR bodies, URLs): skip the
		// plain ones in a tight loop.
		for s.pos < len(s.data) && !strSpecial[s.data[s.pos]] {
			s.pos++
		}
		if s.pos >= len(s.data) {
			break
		}
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return escaped, nil
		case c == '\\':
			escaped = true
			if s.pos+1 >= len(s.data) {
				return false, s.fail("unexpected end in string escape")
			}
			switch s.data[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if s.pos+6 > len(s.data) {
					return false, s.fail("unexpected end in \\u escape")
				}
				for _, h := range s.data[s.pos+2 : s.pos+6] {
					if !isHex(h) {
						return false, s.fail("invalid \\u escape")
					}
				}
				s.pos += 6
			default:
				return false, s.fail("invalid escape in string")
			}
		case c < 0x20:
			return false, s.fail("control character in string")
		default:
			s.pos++
		}
	}
	return false, s.fail("unterminated string")
}

// strSpecial marks the bytes a string scan must stop at.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scan) number() error {
	d := s.data
	if d[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(d) && d[s.pos] == '0':
		s.pos++
	case s.pos < len(d) && isDigit(d[s.pos]):
		for s.pos < len(d) && isDigit(d[s.pos]) {
			s.pos++
		}
	default:
		return s.fail("invalid number")
	}
	if s.pos < len(d) && d[s.pos] == '.' {
		s.pos++
		if s.pos >= len(d) || !isDigit(d[s.pos]) {
			return s.fail("invalid number: no digits after '.'")
		}
		for s.pos < len(d) && isDigit(d[s.pos]) {
			s.pos++
		}
	}
	if s.pos < len(d) && (d[s.pos] == 'e' || d[s.pos] == 'E') {
		s.pos++
		if s.pos < len(d) && (d[s.pos] == '+' || d[s.pos] == '-') {
			s.pos++
		}
		if s.pos >= len(d) || !isDigit(d[s.pos]) {
			return s.fail("invalid number: no digits in exponent")
		}
		for s.pos < len(d) && isDigit(d[s.pos]) {
			s.pos++
		}
	}
	return nil
}

// unquote turns a string token (with its quotes) into its value; the slow
// path, for escapes or invalid UTF-8, is encoding/json's own so the result
// is the same (invalid bytes become U+FFFD).
func unquote(tok []byte, escaped bool) string {
	inner := tok[1 : len(tok)-1]
	if !escaped && utf8.Valid(inner) {
		return string(inner)
	}
	var v string
	if err := json.Unmarshal(tok, &v); err != nil {
		return ""
	}
	return v
}

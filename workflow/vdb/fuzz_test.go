package vdb

import (
	"strings"
	"testing"
)

// FuzzParseContents: CONTENTS files come from builds of PR content, so
// parsing must never panic, and what it accepts must hold together.
func FuzzParseContents(f *testing.F) {
	for _, s := range []string{
		"dir /usr\nobj /usr/bin/a 0123 17\nsym /usr/bin/b -> a 18\n",
		"obj /a file with spaces 0123 17\n", "sym /a -> b c 1\n", "fif /run/x\n", "obj\n", "sym /a -> \n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		es, err := ParseContents("CONTENTS", []byte(s))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "CONTENTS") {
				t.Errorf("error without position: %v", err)
			}
			return
		}
		for _, e := range es {
			if e.Path == "" || (e.Type == Sym && strings.Contains(e.Path, " -> ") && e.Target == "") {
				t.Errorf("accepted %q as %+v", s, e)
			}
		}
	})
}

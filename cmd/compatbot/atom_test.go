package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func TestAtomCompare(t *testing.T) {
	for _, tc := range []struct {
		args []string
		out  string
		code int
	}{
		{[]string{"compare", "a-1", "a-1-r1"}, "a-1 < a-1-r1\n", 0},
		{[]string{"compare", "a-1", ">=a-1"}, "a-1 == >=a-1\n", 0},
		{[]string{"compare", "a-1", "=a-1.0*"}, "a-1 != =a-1.0*\n", 0},
		{[]string{"compare", "a-1.x", "a-1"}, "", 2},
		{[]string{"compare", "a/b", "b-1"}, "a/b == b-1\n", 0}, // qatom: no version = any version
		{[]string{"compare", "a-1"}, "", 2},
	} {
		var out, errb bytes.Buffer
		code := atomCmd(tc.args, &out, &errb)
		if code != tc.code || out.String() != tc.out {
			t.Errorf("atom %v = %d %q (stderr %q), want %d %q", tc.args, code, out.String(), errb.String(), tc.code, tc.out)
		}
		if code == 2 && errb.Len() == 0 {
			t.Errorf("atom %v: exit 2 without a message", tc.args)
		}
	}
}

func TestAtomParseJSONFromStdin(t *testing.T) {
	defer func(old io.Reader) { stdin = old }(stdin)
	stdin = strings.NewReader(">=dev-lang/python-3.11.7-r1:3.11/t::gentoo\nnot an atom\n")
	var out, errb bytes.Buffer
	if code := atomCmd([]string{"parse", "--json"}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1 (one line failed)", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines: %q", len(lines), out.String())
	}
	var got atomJSON
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	want := atomJSON{Input: ">=dev-lang/python-3.11.7-r1:3.11/t::gentoo", Category: "dev-lang", Package: "python", Version: "3.11.7", Revision: 1, Slot: "3.11", SubSlot: "t", Repo: "gentoo", Operator: ">="}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	var bad atomJSON
	json.Unmarshal([]byte(lines[1]), &bad)
	if bad.Error == "" || bad.Input != "not an atom" {
		t.Errorf("bad line = %+v", bad)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{args: nil, code: 0, out: "module:   github.com/compatbot/compatbot\n"},
		{args: []string{"--json"}, code: 0, out: `"Module": "github.com/compatbot/compatbot"`},
		{args: []string{"extra"}, code: 2, err: `unexpected argument "extra"`},
		{args: []string{"--nope"}, code: 2, err: "flag provided but not defined"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(append([]string{"version"}, tc.args...), &out, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, errb.String())
			}
			if !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.err) {
				t.Errorf("stdout %q (want %q), stderr %q (want %q)", out.String(), tc.out, errb.String(), tc.err)
			}
			if len(tc.args) == 1 && tc.args[0] == "--json" {
				var v map[string]any
				if err := json.Unmarshal(out.Bytes(), &v); err != nil {
					t.Errorf("--json output is not JSON: %v", err)
				}
			}
		})
	}
}

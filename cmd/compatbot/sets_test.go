package main

import (
	"bytes"
	"testing"
)

func TestSetsLintExampleRepo(t *testing.T) {
	tests := []struct {
		repo string
		code int
		want string
	}{
		{"../../testdata/compat-layer/base", 0, ""},
		{"../../testdata/compat-layer/pr", 1, "sets/2026.06/linux-x86_64:16:1: app-arch/zstd has no reason: add \"# why it is here\" after it or a comment block above it\n"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := setsCmd([]string{"lint", "--repo", tt.repo}, &out, &errb)
		if code != tt.code || out.String() != tt.want {
			t.Errorf("%s: exit %d, output:\n%s\nwant exit %d:\n%s\nstderr: %s", tt.repo, code, out.String(), tt.code, tt.want, errb.String())
		}
	}
}

func TestSetsLintMissingRepo(t *testing.T) {
	var out, errb bytes.Buffer
	if code := setsCmd([]string{"lint", "--repo", t.TempDir()}, &out, &errb); code != 2 || errb.Len() == 0 {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

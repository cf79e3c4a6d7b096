package main

import (
	"bytes"
	"testing"
)

func TestSetsLintExampleRepo(t *testing.T) {
	var out, errb bytes.Buffer
	code := setsCmd([]string{"lint", "--repo", "../../testdata/compat-layer"}, &out, &errb)
	want := "sets/2026.06/linux-aarch64:10:1: app-arch/zstd has no reason: add \"# why it is here\" after it or a comment block above it\n" +
		"sets/2026.06/linux-x86_64:10:1: app-arch/zstd has no reason: add \"# why it is here\" after it or a comment block above it\n"
	if code != 1 || out.String() != want {
		t.Errorf("exit %d, output:\n%s\nwant:\n%s", code, out.String(), want)
	}
}

func TestSetsLintMissingRepo(t *testing.T) {
	var out, errb bytes.Buffer
	if code := setsCmd([]string{"lint", "--repo", t.TempDir()}, &out, &errb); code != 2 || errb.Len() == 0 {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

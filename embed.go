// Package compatbot holds what the compatbot binary embeds from the
// repository root: the example compat-layer repository. Go's embed cannot
// reach parent directories, so this file sits next to testdata/.
package compatbot

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"
	"testing/fstest"
)

// exampleFiles is "all:" so .github/compatbot.yml is included.
//
//go:embed all:testdata/compat-layer/base all:testdata/compat-layer/pr
var exampleFiles embed.FS

// ExampleBase is the example repository's default branch tree, ExampleHead
// the tree at the head of its example pull request.
var ExampleBase, ExampleHead fs.FS = mustSub("testdata/compat-layer/base"), mustSub("testdata/compat-layer/pr")

func mustSub(dir string) fs.FS {
	f, err := fs.Sub(exampleFiles, dir)
	if err != nil {
		panic(err) // dir is a constant matched by the embed pattern
	}
	return f
}

// ExampleHeadLintError is ExampleHead with the one lint error a PR can
// have: app-arch/zstd on linux-x86_64 without a reason (its comment block
// removed, so it stands on line 16). Tests use it for a failing PR; it is
// an error, not a panic, if the example no longer has that block.
func ExampleHeadLintError() (fs.FS, error) {
	const path = "sets/2026.06/linux-x86_64"
	const withReason, without = "\n# EasyBuild unpacks .tar.zst sources\napp-arch/zstd\n", "app-arch/zstd\n"
	m := fstest.MapFS{}
	err := fs.WalkDir(ExampleHead, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(ExampleHead, p)
		m[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return err
	})
	if err != nil {
		return nil, err
	}
	f, ok := m[path]
	if !ok || !strings.Contains(string(f.Data), withReason) {
		return nil, fmt.Errorf("example PR: %s has no commented app-arch/zstd entry to strip", path)
	}
	f.Data = []byte(strings.Replace(string(f.Data), withReason, without, 1))
	return m, nil
}

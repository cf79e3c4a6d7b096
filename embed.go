// Package compatbot holds what the compatbot binary embeds from the
// repository root: the example compat-layer repository and the fake
// installer its builds run, so an installed binary (go install) runs
// `compatbot check --example` in any directory. Go's embed cannot reach
// parent directories, so this file sits next to testdata/.
package compatbot

import (
	"embed"
	"io/fs"
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

// portageExampleFiles is the example for real Portage (check --example
// --portage PATH): its repository's two trees, the ebuild repository its
// sets use and the sources of those ebuilds (compatbot's test ebuild
// repository and distfiles).
//
//go:embed all:testdata/portage/example/base all:testdata/portage/example/pr testdata/portage/repo testdata/portage/distfiles
var portageExampleFiles embed.FS

// PortageExampleBase and PortageExampleHead are the real-Portage example's
// default branch and pull request head; PortageRepo is the ebuild
// repository (compatbot-test) and PortageDistfiles its sources.
var (
	PortageExampleBase = mustSubOf(portageExampleFiles, "testdata/portage/example/base")
	PortageExampleHead = mustSubOf(portageExampleFiles, "testdata/portage/example/pr")
	PortageRepo        = mustSubOf(portageExampleFiles, "testdata/portage/repo")
	PortageDistfiles   = mustSubOf(portageExampleFiles, "testdata/portage/distfiles")
)

// fakeEmergeFiles is the fake installer (a test double of emerge) with the
// catalogue and @system set it reads beside itself.
//
//go:embed testdata/fakeemerge/fakeemerge testdata/fakeemerge/catalog testdata/fakeemerge/system
var fakeEmergeFiles embed.FS

// FakeEmerge holds fakeemerge, catalog and system.
var FakeEmerge fs.FS = mustSubOf(fakeEmergeFiles, "testdata/fakeemerge")

func mustSubOf(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // dir is a constant matched by the embed pattern
	}
	return s
}

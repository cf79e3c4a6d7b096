package portage

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/compatbot/compatbot/workflow/mirror"
)

// FetchHelper is the name under which this executable answers Portage's
// FETCHCOMMAND. emerge looks for every source in compatbot's mirror first
// (GENTOO_MIRRORS is the mirror's distfiles/); only for a file that is not
// there yet does it run the helper, which takes the file from the
// configured source (never from the ebuild's SRC_URI), verifies it against
// the repositories' Manifests (BLAKE2B and SHA512), puts it into the
// mirror and hands the mirror's copy to Portage. So every source enters the
// mirror verified before emerge uses it, without a separate dependency
// resolution to list them first (which cost more than 5 % of a small
// build).
const FetchHelper = "compatbot-mirror-fetch"

// Environment of the helper (set in the build's environment; Portage
// passes it through to FETCHCOMMAND).
const (
	envMirrorDir = "COMPATBOT_MIRROR_DIR"
	envSource    = "COMPATBOT_DISTFILES"
	envRepos     = "COMPATBOT_REPOS"
)

func init() {
	if filepath.Base(os.Args[0]) != FetchHelper {
		return
	}
	os.Exit(fetchMain(os.Args[1:], os.Stderr))
}

// fetchMain is the helper: args are URI DISTDIR FILE, as FETCHCOMMAND
// passes them. Its messages start with "compatbot: " so the check run's
// title can name the file.
func fetchMain(args []string, stderr io.Writer) int {
	if len(args) != 3 {
		fmt.Fprintf(stderr, "compatbot: %s: want URI DISTDIR FILE, got %q\n", FetchHelper, args)
		return 2
	}
	// Portage downloads into FILE = "<distfile>.__download__" and renames
	// it after checking; the Manifest knows the distfile's own name.
	uri, distdir, file := args[0], args[1], args[2]
	name := strings.TrimSuffix(file, ".__download__")
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "compatbot: "+format+"\n", a...)
		return 1
	}
	if err := mirror.ValidName(name); err != nil {
		return fail("distfile %s: %v", name, err)
	}
	mdir := os.Getenv(envMirrorDir)
	if mdir == "" {
		return fail("distfile %s: not in compatbot's mirror, and this build has no mirror to fetch into (%s unset); not fetching %s", name, envMirrorDir, uri)
	}
	manifests, err := mirror.RepoManifests(filepath.SplitList(os.Getenv(envRepos))...)
	if err != nil {
		return fail("distfile %s: %v", name, err)
	}
	e, ok := manifests[name]
	if !ok {
		return fail("distfile %s: no Manifest of the ebuild repositories lists it, so it cannot be verified", name)
	}
	m := &mirror.Mirror{Dir: mdir}
	src := os.Getenv(envSource)
	if _, err := m.Ingest(context.Background(), []mirror.Entry{e}, src); err != nil {
		return fail("%v", err)
	}
	in, err := os.Open(filepath.Join(m.DistfilesDir(), name))
	if err != nil {
		return fail("distfile %s: %v", name, err)
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(distdir, file))
	if err != nil {
		return fail("distfile %s: %v", name, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fail("distfile %s: %v", name, err)
	}
	if err := out.Close(); err != nil {
		return fail("distfile %s: %v", name, err)
	}
	fmt.Fprintf(stderr, "compatbot: distfile %s entered the mirror from %s, verified (size, BLAKE2B, SHA512)\n", name, strings.TrimRight(src, "/"))
	return 0
}

// helperEnv is the helper's part of the build environment.
func (r *Runner) helperEnv(c Config) map[string]string {
	return map[string]string{
		envMirrorDir: r.Mirror.Dir,
		envSource:    r.Distfiles,
		envRepos:     strings.Join(c.repoDirs(), string(filepath.ListSeparator)),
	}
}

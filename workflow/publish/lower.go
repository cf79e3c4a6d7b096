package publish

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/compatbot/compatbot/sets"
)

// TargetPath is where a version/os-arch lives in a repository, in EESSI's
// layout: <version>/compat/<os>/<arch>.
func TargetPath(t sets.Target) (string, error) {
	for _, f := range []struct{ name, v string }{{"version", t.Version}, {"os", t.OS}, {"arch", t.Arch}} {
		if f.v == "" {
			return "", fmt.Errorf("target %q: %s is empty", t, f.name)
		}
		if err := validRepoName(f.v); err != nil || f.v == "." || f.v == ".." {
			return "", fmt.Errorf("target %q: %s %q is not a plain name", t, f.name, f.v)
		}
	}
	return t.Version + "/compat/" + t.OS + "/" + t.Arch, nil
}

// Lower adapts a Publisher to the build pipeline's lower layer: the
// target's subtree of the current published revision, read-only. For the
// local backend that is inside an immutable revisions/<n> directory, so a
// publish during the build does not change the build's view.
type Lower struct {
	P Publisher
	// Empty is an empty directory to return for a target that was never
	// published (default: <tmp>/compatbot-empty-lower, created if needed).
	Empty string
}

// Current returns the target's published directory and the revision.
func (lw Lower) Current(ctx context.Context, t sets.Target) (string, string, error) {
	p, err := TargetPath(t)
	if err != nil {
		return "", "", err
	}
	dir, rev, err := lw.P.Current(ctx)
	if err != nil {
		return "", "", err
	}
	sub := filepath.Join(dir, filepath.FromSlash(p))
	fi, err := os.Stat(sub)
	switch {
	case err == nil && fi.IsDir():
		return sub, strconv.FormatUint(uint64(rev), 10), nil
	case err == nil:
		return "", "", fmt.Errorf("published %s at revision %d is not a directory", p, rev)
	case !errors.Is(err, fs.ErrNotExist):
		return "", "", err
	}
	empty := lw.Empty
	if empty == "" {
		empty = filepath.Join(os.TempDir(), "compatbot-empty-lower")
	}
	if err := os.MkdirAll(empty, 0o755); err != nil {
		return "", "", err
	}
	return empty, strconv.FormatUint(uint64(rev), 10), nil
}

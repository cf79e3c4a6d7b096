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

// ValidTargetName checks a target's version, os or arch: it must be usable
// both as a path element and as part of a CVMFS tag, since these strings
// come from set file names in a PR.
func ValidTargetName(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	if s[0] == '.' || s[0] == '-' {
		// No hidden directories, nothing a tool could read as an option.
		return fmt.Errorf("%q: must not start with '.' or '-'", s)
	}
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%q: character %q at offset %d is not allowed (only A-Z a-z 0-9 - _ .)", s, r, i)
		}
	}
	return nil
}

// Lower adapts a Publisher to the build pipeline's lower layer: the
// target's subtree of the current published revision, read-only. For the
// local backend that is inside an immutable revisions/<n> directory, so a
// publish during the build does not change the build's view.
type Lower struct {
	P Publisher
	// Layout is where the publisher keeps a target's tree (the zero
	// Layout is DefaultLayout); the same as the deploys' (deploy.Options.Layouts).
	Layout Layout
	// Empty is an empty directory to return for a target that was never
	// published (default: <tmp>/compatbot-empty-lower, created if needed).
	Empty string
}

// Current returns the target's published directory and the revision.
func (lw Lower) Current(ctx context.Context, t sets.Target) (string, string, error) {
	p, err := lw.Layout.Path(t)
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

// Package safefile serves files from under a directory without following
// symlinks: what lies under the data directory is partly written by builds
// of pull requests, and a build.log replaced by a link to the App's key
// or to /etc/shadow must not be served.
package safefile

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// ErrLink is returned for a path with a symlink in it.
var ErrLink = errors.New("path goes through a symlink")

// Open opens rel (slash-separated, relative) under dir for reading. No
// component of rel may be a symlink, and the file is opened through an
// os.Root, so even a link swapped in between the checks and the open
// cannot lead out of dir. Only regular files are opened.
func Open(dir, rel string) (*os.File, error) {
	if rel == "" || filepath.IsAbs(rel) || !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("%q: not a local path", rel)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for i := range parts {
		fi, err := root.Lstat(filepath.Join(parts[:i+1]...))
		if err != nil {
			return nil, err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s: %w", rel, ErrLink)
		}
	}
	f, err := root.Open(rel)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: not a regular file", rel)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Serve answers r with the file rel under dir (see Open), 404 when it
// cannot be opened that way. The caller sets Content-Type.
func Serve(w http.ResponseWriter, r *http.Request, dir, rel string) {
	f, err := Open(dir, rel)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, filepath.Base(rel), fi.ModTime(), f)
}

package mirror

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The mirror's distfiles in Gentoo's own mirror layout, beside the
// content-addressed store:
//
//	distfiles/layout.conf   [structure] 0=flat
//	distfiles/<name>        the verified distfile
//
// A stock Gentoo client uses it served over http(s) with
// GENTOO_MIRRORS="https://host/" (Portage fetches
// https://host/distfiles/layout.conf, then https://host/distfiles/<name>),
// or locally with GENTOO_MIRRORS="<Dir>/distfiles" (a local mirror path
// is the directory holding layout.conf and the files).

// LayoutConf is the distfiles/layout.conf compatbot writes: every file
// directly in distfiles/ (GLEP 75's "flat" structure).
const LayoutConf = "[structure]\n0=flat\n"

// DistfilesDir is the Gentoo-layout directory of the mirror. Portage takes
// a local mirror as the directory holding the files and its layout.conf,
// so GENTOO_MIRRORS is this path for local builds.
func (m *Mirror) DistfilesDir() string { return filepath.Join(m.Dir, "distfiles") }

// Ingest makes every entry available, verified, in DistfilesDir: a file
// already there is checked against its Manifest size, BLAKE2B and SHA512;
// a missing one is taken from src (a directory, or an http(s) URL whose
// <url>/<name> serves it), verified while copying and only then renamed
// into place. Each problem names the distfile: a source that is missing
// or does not match stops the build before emerge runs. It returns the
// names it had to fetch.
func (m *Mirror) Ingest(ctx context.Context, entries []Entry, src string) ([]string, error) {
	dir := m.DistfilesDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	lc := filepath.Join(dir, "layout.conf")
	if b, err := os.ReadFile(lc); err != nil || string(b) != LayoutConf {
		if err := os.WriteFile(lc, []byte(LayoutConf), 0o644); err != nil {
			return nil, fmt.Errorf("mirror: %w", err)
		}
	}
	var fetched []string
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return fetched, err
		}
		if err := ValidName(e.Name); err != nil {
			return fetched, err
		}
		dst := filepath.Join(dir, e.Name)
		if f, err := os.Open(dst); err == nil {
			err = verify(e, f)
			f.Close()
			if err != nil {
				return fetched, fmt.Errorf("distfile %s: the mirror's copy %s is corrupt: %v", e.Name, dst, err)
			}
			continue
		}
		if src == "" {
			return fetched, fmt.Errorf("distfile %s: not in the mirror %s and no source (--distfiles) to fetch it from", e.Name, dir)
		}
		if err := m.fetchInto(ctx, e, src, dst); err != nil {
			return fetched, err
		}
		fetched = append(fetched, e.Name)
	}
	return fetched, nil
}

func (m *Mirror) fetchInto(ctx context.Context, e Entry, src, dst string) error {
	var r io.ReadCloser
	from := strings.TrimRight(src, "/") + "/" + e.Name
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, from, nil)
		if err != nil {
			return fmt.Errorf("distfile %s: %w", e.Name, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("distfile %s: fetching %s: %w", e.Name, from, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("distfile %s: fetching %s: %s", e.Name, from, resp.Status)
		}
		r = resp.Body
	} else {
		from = filepath.Join(src, e.Name)
		f, err := os.Open(from)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("distfile %s: missing from the source %s", e.Name, src)
		}
		if err != nil {
			return fmt.Errorf("distfile %s: %w", e.Name, err)
		}
		r = f
	}
	defer r.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".incoming-*")
	if err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = verify(e, io.TeeReader(r, tmp))
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("distfile %s from %s does not match the ebuild repository's Manifest: %v", e.Name, from, err)
	}
	return os.Rename(tmp.Name(), dst)
}

// verify reads r to the end and compares size, BLAKE2B and SHA512 with e.
func verify(e Entry, r io.Reader) error {
	b2, s5 := newHashes()
	n, err := io.Copy(io.MultiWriter(b2, s5), r)
	if err != nil {
		return err
	}
	switch {
	case e.BLAKE2B == "" || e.SHA512 == "":
		return errors.New("its Manifest entry lacks BLAKE2B or SHA512; both are required")
	case n != e.Size:
		return fmt.Errorf("size %d, Manifest says %d", n, e.Size)
	case hex.EncodeToString(b2.Sum(nil)) != e.BLAKE2B:
		return fmt.Errorf("BLAKE2B %s…, Manifest says %s…", hex.EncodeToString(b2.Sum(nil))[:16], e.BLAKE2B[:min(16, len(e.BLAKE2B))])
	case hex.EncodeToString(s5.Sum(nil)) != e.SHA512:
		return fmt.Errorf("SHA512 %s…, Manifest says %s…", hex.EncodeToString(s5.Sum(nil))[:16], e.SHA512[:min(16, len(e.SHA512))])
	}
	return nil
}

// RepoManifests reads the DIST lines of every package Manifest in the
// ebuild repositories (<repo>/<cat>/<pn>/Manifest), keyed by distfile
// name. Two packages naming one distfile with different checksums is an
// error (Portage would reject one of them).
func RepoManifests(repos ...string) (map[string]Entry, error) {
	out := map[string]Entry{}
	for _, repo := range repos {
		paths, err := filepath.Glob(filepath.Join(repo, "*", "*", "Manifest"))
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			es, err := ParseManifest(p, data)
			if err != nil {
				return nil, err
			}
			for _, e := range es {
				if old, ok := out[e.Name]; ok && old != e {
					return nil, fmt.Errorf("%s: distfile %s has other checksums than in another Manifest", p, e.Name)
				}
				out[e.Name] = e
			}
		}
	}
	return out, nil
}

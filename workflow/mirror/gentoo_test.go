package mirror

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/blake2b"
)

func entryOf(name, content string) Entry {
	b := blake2b.Sum512([]byte(content))
	s := sha512.Sum512([]byte(content))
	return Entry{Name: name, Size: int64(len(content)), BLAKE2B: hex.EncodeToString(b[:]), SHA512: hex.EncodeToString(s[:])}
}

// TestIngest brings sources into the Gentoo-layout mirror from a directory
// and from a real http server, verifying them against their Manifest
// entries; every failure names the distfile.
func TestIngest(t *testing.T) {
	src := t.TempDir()
	write(t, src, "a-1.tar.gz", "source of a")
	write(t, src, "b-2.tar.gz", "source of b, changed upstream") // Manifest has other bytes
	srv := httptest.NewServer(http.FileServer(http.Dir(src)))
	defer srv.Close()
	good := entryOf("a-1.tar.gz", "source of a")
	for _, tc := range []struct {
		name     string
		src      string
		inMirror map[string]string // files already in distfiles/
		entries  []Entry
		fetched  []string
		wantErr  string
	}{
		{name: "from a directory", src: src, entries: []Entry{good}, fetched: []string{"a-1.tar.gz"}},
		{name: "from http", src: srv.URL + "/", entries: []Entry{good}, fetched: []string{"a-1.tar.gz"}},
		{name: "already mirrored: verified, not fetched", src: "", inMirror: map[string]string{"a-1.tar.gz": "source of a"}, entries: []Entry{good}},
		{name: "missing from the source", src: src, entries: []Entry{entryOf("c-3.tar.gz", "x")},
			wantErr: "distfile c-3.tar.gz: missing from the source " + src},
		{name: "missing over http", src: srv.URL, entries: []Entry{entryOf("c-3.tar.gz", "x")},
			wantErr: "distfile c-3.tar.gz: fetching " + srv.URL + "/c-3.tar.gz: 404 Not Found"},
		{name: "source does not match the Manifest", src: src, entries: []Entry{entryOf("b-2.tar.gz", "source of b")},
			wantErr: "distfile b-2.tar.gz from " + src + "/b-2.tar.gz does not match the ebuild repository's Manifest: size 29, Manifest says 11"},
		{name: "same size, other bytes", src: src, entries: []Entry{entryOf("b-2.tar.gz", "source of b, changed upstreaM")},
			wantErr: "does not match the ebuild repository's Manifest: BLAKE2B"},
		{name: "mirror copy corrupt", src: src, inMirror: map[string]string{"a-1.tar.gz": "source of A"}, entries: []Entry{good},
			wantErr: "distfile a-1.tar.gz: the mirror's copy"},
		{name: "no source for a missing file", src: "", entries: []Entry{good},
			wantErr: "distfile a-1.tar.gz: not in the mirror"},
		{name: "Manifest without SHA512", src: src, entries: []Entry{{Name: good.Name, Size: good.Size, BLAKE2B: good.BLAKE2B}},
			wantErr: "lacks BLAKE2B or SHA512"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Mirror{Dir: t.TempDir()}
			for n, c := range tc.inMirror {
				write(t, m.DistfilesDir(), n, c)
			}
			fetched, err := m.Ingest(context.Background(), tc.entries, tc.src)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				for _, e := range tc.entries {
					if _, ok := tc.inMirror[e.Name]; ok {
						continue
					}
					if _, err := os.Stat(filepath.Join(m.DistfilesDir(), e.Name)); err == nil {
						t.Errorf("%s entered the mirror after failing", e.Name)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(fetched, tc.fetched) {
				t.Errorf("fetched %q, want %q", fetched, tc.fetched)
			}
			if b, _ := os.ReadFile(filepath.Join(m.DistfilesDir(), "a-1.tar.gz")); string(b) != "source of a" {
				t.Errorf("mirrored a-1.tar.gz = %q", b)
			}
			if b, _ := os.ReadFile(filepath.Join(m.DistfilesDir(), "layout.conf")); string(b) != LayoutConf {
				t.Errorf("layout.conf = %q, want %q", b, LayoutConf)
			}
			left, _ := filepath.Glob(filepath.Join(m.DistfilesDir(), ".incoming-*"))
			if len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func TestRepoManifests(t *testing.T) {
	got, err := RepoManifests("../../testdata/portage/repo")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range got {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"broken-1.0.tar.gz", "fastmath-1.0.tar.gz", "hello-1.0.tar.gz", "libgreet-1.0.tar.gz", "libgreet-1.1.tar.gz", "oldtool-1.0.tar.gz"}
	if !slices.Equal(names, want) {
		t.Fatalf("names %q, want %q", names, want)
	}
	// The Manifests match the test distfiles byte for byte.
	m := &Mirror{Dir: t.TempDir()}
	var es []Entry
	for _, n := range names {
		es = append(es, got[n])
	}
	if _, err := m.Ingest(context.Background(), es, "../../testdata/portage/distfiles"); err != nil {
		t.Fatal(err)
	}

	conflict := t.TempDir()
	write(t, conflict, "a/x/Manifest", entryOf("f.tar.gz", "one").DistLine()+"\n")
	write(t, conflict, "b/y/Manifest", entryOf("f.tar.gz", "two").DistLine()+"\n")
	if _, err := RepoManifests(conflict); err == nil || !strings.Contains(err.Error(), "b/y/Manifest: distfile f.tar.gz has other checksums") {
		t.Errorf("conflicting Manifests: err = %v", err)
	}
}

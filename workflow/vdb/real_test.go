package vdb

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// testdata/real/pkg is a package database exactly as Portage 3.0.82 wrote
// it (copied from a build of testdata/portage/repo, see README "Building
// with real Portage"): every file Portage writes, environment.bz2 included.
func TestReadRealPortageDB(t *testing.T) {
	got, err := ReadDB("testdata/real/pkg")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range got {
		names = append(names, i.Package.CP()+"-"+i.Package.Version.String()+":"+i.Package.Slot+"/"+i.Package.SubSlot+"::"+i.Package.Repo)
	}
	want := []string{"app-misc/hello-1.0:0/::compatbot-test", "dev-libs/libgreet-1.0:0/1::compatbot-test"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("packages %q, want %q", names, want)
	}
	hello, greet := got[0], got[1]
	ep := readOne(t, hello.Dir, "EPREFIX")

	for _, tc := range []struct {
		pkg   Installed
		check func(Meta) string
	}{
		{hello, func(m Meta) string {
			if m.EPrefix != ep || m.Counter <= 0 || m.BuildTime < 1.7e9 {
				return "EPREFIX/COUNTER/BUILD_TIME"
			}
			if !reflect.DeepEqual(m.Requires, map[string][]string{"x86_64": {"libc.so.6"}}) || m.Provides != nil {
				return "REQUIRES/PROVIDES"
			}
			return ""
		}},
		{greet, func(m Meta) string {
			if m.Requires != nil || m.Provides != nil {
				return "a static library requires and provides no soname"
			}
			return ""
		}},
	} {
		m, err := tc.pkg.ReadMeta()
		if err != nil {
			t.Fatal(err)
		}
		if msg := tc.check(m); msg != "" {
			t.Errorf("%s: %s: %+v", tc.pkg.Package.CP(), msg, m)
		}
	}
	hm, _ := hello.ReadMeta()
	gm, _ := greet.ReadMeta()
	if gm.Counter >= hm.Counter {
		t.Errorf("COUNTER: libgreet (%d) was merged before hello (%d)", gm.Counter, hm.Counter)
	}

	contents, err := hello.ReadContents()
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]ContentEntry{}
	for _, c := range contents {
		if !strings.HasPrefix(c.Path, ep+"/") {
			t.Errorf("CONTENTS path %s is not under the EPREFIX %s", c.Path, ep)
		}
		byPath[strings.TrimPrefix(c.Path, ep)] = c
	}
	if c := byPath["/usr/bin/hello"]; c.Type != Obj || len(c.MD5) != 32 || c.MTime < 1.7e9 {
		t.Errorf("usr/bin/hello: %+v, want obj with md5 and mtime", c)
	}
	if c := byPath["/usr/bin/hi"]; c.Type != Sym || c.Target != "hello" || c.MTime < 1.7e9 {
		t.Errorf("usr/bin/hi: %+v, want sym -> hello with mtime", c)
	}
	if c := byPath["/usr/share/hello"]; c.Type != Dir {
		t.Errorf("usr/share/hello: %+v, want dir", c)
	}
}

func readOne(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestParseSonames(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    map[string][]string
		wantErr string
	}{
		{"", nil, ""},
		{"x86_64: libc.so.6 libm.so.6\n", map[string][]string{"x86_64": {"libc.so.6", "libm.so.6"}}, ""},
		{"x86_32: libc.so.6 x86_64: libc.so.6", map[string][]string{"x86_32": {"libc.so.6"}, "x86_64": {"libc.so.6"}}, ""},
		{"libc.so.6", nil, `soname "libc.so.6" before any "CATEGORY:"`},
	} {
		got, err := parseSonames(tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

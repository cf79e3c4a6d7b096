package vdb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/sets"
)

const qlistDir = "../../../shared/testdata/gentoo/portage-utils/qlist"

func fixture(t *testing.T) []Installed {
	t.Helper()
	got, err := ReadDB(filepath.Join(qlistDir, "vdb"))
	if err != nil {
		t.Fatalf("reading the qlist fixture (it must exist; see ../shared/testdata/gentoo/README.md): %v", err)
	}
	return got
}

func good(t *testing.T, n string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(qlistDir, "list"+n+".good"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// filter keeps the packages an atom matches, as qlist does with its
// package argument.
func filter(t *testing.T, in []Installed, atom string) []Installed {
	t.Helper()
	a, err := sets.ParseAtomLoose(atom)
	if err != nil {
		t.Fatal(err)
	}
	var out []Installed
	for _, i := range in {
		if a.Matches(i.Package) {
			out = append(out, i)
		}
	}
	return out
}

func TestPackagesLikeQlist(t *testing.T) {
	all := fixture(t)
	for _, tc := range []struct {
		list, cmd string
		atom      string // "" for all
		opts      FormatOptions
	}{
		{"01", "qlist -I", "", FormatOptions{}},
		{"07", "qlist -IS", "", FormatOptions{Slot: 1}},
		{"10", "qlist -Iv =mtools-4*", "=mtools-4*", FormatOptions{Version: true}},
		{"11", "qlist -IR", "", FormatOptions{Repo: true}},
		{"12", "qlist -ISR", "", FormatOptions{Slot: 1, Repo: true}},
		{"14", "qlist -ISS", "", FormatOptions{Slot: 2}},
		{"16", "qlist -ISS virtual/sub-2:1", "=virtual/sub-2:1", FormatOptions{Slot: 2}},
		{"17", "qlist -IUv mtools", "mtools", FormatOptions{Version: true, Use: true}},
		{"15", "a query with no match", "=virtual/none-1", FormatOptions{}},
	} {
		t.Run(tc.list, func(t *testing.T) {
			in := all
			if tc.atom != "" {
				in = filter(t, all, tc.atom)
			}
			if got, want := FormatPackages(in, tc.opts), good(t, tc.list); got != want {
				t.Errorf("%s:\ngot:\n%s\nwant:\n%s", tc.cmd, got, want)
			}
		})
	}
}

func TestContentsLikeQlist(t *testing.T) {
	all := fixture(t)
	for _, tc := range []struct {
		list, cmd, pkg string
		opts           ContentsOptions
	}{
		{"02", "qlist --showdebug cpio", "cpio", ContentsOptions{ShowDebug: true}},
		{"03", "qlist --showdebug mtools -e -v", "mtools", ContentsOptions{ShowDebug: true, Verbose: true}},
		{"04", "qlist --showdebug mtools -d", "mtools", ContentsOptions{ShowDebug: true, Dirs: true}},
		{"05", "qlist --showdebug mtools -o", "mtools", ContentsOptions{ShowDebug: true, Objs: true}},
		{"06", "qlist --showdebug mtools -s", "mtools", ContentsOptions{ShowDebug: true, Syms: true}},
		{"08", "qlist cpio", "cpio", ContentsOptions{}},
		{"09", "qlist mtools -d", "mtools", ContentsOptions{Dirs: true}},
		{"13", "qlist --showdebug cpio", "cpio", ContentsOptions{ShowDebug: true}},
	} {
		t.Run(tc.list, func(t *testing.T) {
			in := filter(t, all, tc.pkg)
			if len(in) != 1 {
				t.Fatalf("%s matches %d packages, want 1", tc.pkg, len(in))
			}
			contents, err := in[0].ReadContents()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := FormatContents(in[0], contents, tc.opts), good(t, tc.list); got != want {
				t.Errorf("%s:\ngot:\n%s\nwant:\n%s", tc.cmd, got, want)
			}
		})
	}
}

func TestFixtureDetails(t *testing.T) {
	all := fixture(t)
	if len(all) != 6 {
		t.Fatalf("got %d packages, want 6 (the -merge-foo temp dir skipped)", len(all))
	}
	var mtools Installed
	for _, i := range all {
		if i.Package.Name == "mtools" {
			mtools = i
		}
	}
	var sym, obj ContentEntry
	contents, err := mtools.ReadContents()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range contents {
		if e.Path == "/usr/bin/lz" {
			sym = e
		}
		if e.Path == "/usr/bin/tgz" {
			obj = e
		}
	}
	if sym.Type != Sym || sym.Target != "uz" || sym.MTime == 0 {
		t.Errorf("sym /usr/bin/lz = %+v", sym)
	}
	if obj.Type != Obj || obj.MD5 != "69d1895cc03b650c9cccdd69570a55b8" || obj.MTime != 1287601290 {
		t.Errorf("obj /usr/bin/tgz = %+v", obj)
	}
}

func TestRead(t *testing.T) {
	root := t.TempDir()
	got, err := Read(root)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty prefix: %v, %v; want nothing installed, no error", got, err)
	}
	write := func(rel, data string) {
		p := filepath.Join(root, DBPath, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sys-libs/glibc-2.41-r6/SLOT", "2.2\n")
	write("sys-libs/glibc-2.41-r6/repository", "gentoo\n")
	write("sys-libs/glibc-2.41-r6/CONTENTS", "dir /usr\nobj /usr/lib/a file with spaces.so 0123 17\nsym /usr/lib/x y -> a b 18\n")
	write("sys-libs/-MERGING-glibc-2.42/CONTENTS", "")
	write("dev-lang/.hidden/SLOT", "0")
	got, err = Read(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Package.String() != "sys-libs/glibc-2.41-r6:2.2::gentoo" {
		t.Fatalf("got %+v", got)
	}
	c, err := got[0].ReadContents()
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != 3 || c[1].Path != "/usr/lib/a file with spaces.so" || c[2].Path != "/usr/lib/x y" || c[2].Target != "a b" {
		t.Errorf("contents with spaces: %+v", c)
	}

	write("sys-libs/notaversion/SLOT", "0")
	if _, err := Read(root); err == nil || !strings.Contains(err.Error(), "notaversion") {
		t.Errorf("invalid package dir: err = %v, want one naming it", err)
	}
}

func TestParseContentsErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"obj /a\n", "CONTENTS:1: want \"obj PATH MD5 MTIME\""},
		{"dir /a\nobj /a b x\n", "CONTENTS:2: invalid mtime"},
		{"sym /a b 1\n", "CONTENTS:1: want \"sym PATH -> TARGET MTIME\""},
		{"sym /a -> b\n", "CONTENTS:1: missing mtime"},
		{"lnk /a\n", "CONTENTS:1: unknown entry type \"lnk\""},
		{"dir\n", "CONTENTS:1: missing path"},
	} {
		_, err := ParseContents("CONTENTS", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseContents(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

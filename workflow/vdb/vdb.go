// Package vdb reads Portage's installed-package database, the
// <prefix>/var/db/pkg/<category>/<name>-<version>/ directories a build
// leaves behind, so the compat tests can say what a Prefix really contains
// rather than what the set asked for.
package vdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/compatbot/compatbot/sets"
)

// DBPath is where a Prefix keeps its package database, relative to its root.
const DBPath = "var/db/pkg"

// Content types of CONTENTS lines, with Portage's names.
const (
	Dir = "dir"
	Obj = "obj"
	Sym = "sym"
	Fif = "fif"
	Dev = "dev"
)

// ContentEntry is one line of a package's CONTENTS file.
type ContentEntry struct {
	Type   string // dir, obj, sym, fif, dev
	Path   string // absolute inside the Prefix, e.g. /usr/bin/mtools
	MD5    string // obj only
	MTime  int64  // obj and sym
	Target string // sym only
}

// Installed is one package-version recorded in the database.
type Installed struct {
	Package sets.Package
	Use     []string // USE: flags enabled when it was built
	IUse    []string // IUSE without +/- defaults
	Dir     string   // the package's database directory
}

// Read reads the database of the Prefix at root. A Prefix with no database
// yet (an empty lower layer before the first build) has nothing installed;
// that is not an error.
func Read(root string) ([]Installed, error) {
	db := filepath.Join(root, DBPath)
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return ReadDB(db)
}

// ReadDB reads a package database directory (the var/db/pkg directory
// itself). Entries Portage itself ignores are skipped: names starting with
// "-" (its "-MERGING-" temp dirs while a merge runs, and stray "-merge-"
// leftovers) or "." (editor and rsync droppings). Anything else that does
// not name a package-version is an error naming the directory, since a
// database the tests cannot read must not pass as "nothing installed".
func ReadDB(db string) ([]Installed, error) {
	cats, err := os.ReadDir(db)
	if err != nil {
		return nil, fmt.Errorf("vdb: %w", err)
	}
	var out []Installed
	for _, c := range cats {
		if !c.IsDir() || skipName(c.Name()) {
			continue
		}
		catDir := filepath.Join(db, c.Name())
		pkgs, err := os.ReadDir(catDir)
		if err != nil {
			return nil, fmt.Errorf("vdb: %w", err)
		}
		for _, p := range pkgs {
			if !p.IsDir() || skipName(p.Name()) {
				continue
			}
			inst, err := readPackage(filepath.Join(catDir, p.Name()), c.Name(), p.Name())
			if err != nil {
				return nil, err
			}
			out = append(out, inst)
		}
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i].Package, out[j].Package) })
	return out, nil
}

func skipName(n string) bool { return strings.HasPrefix(n, "-") || strings.HasPrefix(n, ".") }

func less(a, b sets.Package) bool {
	if a.Category != b.Category {
		return a.Category < b.Category
	}
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	return a.Version.Compare(b.Version) < 0
}

func readPackage(dir, cat, pv string) (Installed, error) {
	pkg, err := sets.ParsePackage(cat + "/" + pv)
	if err != nil {
		return Installed{}, fmt.Errorf("vdb: %s: not a package-version directory: %v", dir, err)
	}
	inst := Installed{Dir: dir}
	slot, err := readField(dir, "SLOT")
	if err != nil {
		return Installed{}, err
	}
	if slot == "" {
		// PMS: SLOT is mandatory; Portage treats a missing one as "0".
		slot = "0"
	}
	pkg.Slot, pkg.SubSlot, _ = strings.Cut(slot, "/")
	if pkg.Repo, err = readField(dir, "repository"); err != nil {
		return Installed{}, err
	}
	inst.Package = pkg
	use, err := readField(dir, "USE")
	if err != nil {
		return Installed{}, err
	}
	inst.Use = strings.Fields(use)
	iuse, err := readField(dir, "IUSE")
	if err != nil {
		return Installed{}, err
	}
	for _, f := range strings.Fields(iuse) {
		inst.IUse = append(inst.IUse, strings.TrimLeft(f, "+-"))
	}
	return inst, nil
}

// ReadContents reads the package's CONTENTS (the files it installed).
// Read leaves them out: they are most of a database's bytes (tens of
// lines per package, thousands of packages) and what the compat tests ask
// of an installed package is its name, version, slot, repository and USE.
func (i Installed) ReadContents() ([]ContentEntry, error) {
	return readContents(filepath.Join(i.Dir, "CONTENTS"))
}

// readField returns a one-line metadata file trimmed, "" when absent.
func readField(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("vdb: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func readContents(path string) ([]ContentEntry, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vdb: %w", err)
	}
	return ParseContents(path, b)
}

// ParseContents parses a CONTENTS file. Paths may contain spaces, so the
// fixed trailing fields (md5 and mtime, or "-> target mtime") are taken from
// the right, as Portage does.
func ParseContents(path string, data []byte) ([]ContentEntry, error) {
	var out []ContentEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		bad := func(msg string) error {
			return fmt.Errorf("%s:%d: %s in CONTENTS line %q", path, line, msg, text)
		}
		typ, rest, ok := strings.Cut(text, " ")
		if !ok || rest == "" {
			return nil, bad("missing path")
		}
		e := ContentEntry{Type: typ}
		switch typ {
		case Dir, Fif, Dev:
			e.Path = rest
		case Obj:
			i := strings.LastIndexByte(rest, ' ')
			j := -1
			if i > 0 {
				j = strings.LastIndexByte(rest[:i], ' ')
			}
			if j <= 0 {
				return nil, bad("want \"obj PATH MD5 MTIME\"")
			}
			mt, err := strconv.ParseInt(rest[i+1:], 10, 64)
			if err != nil {
				return nil, bad("invalid mtime")
			}
			e.Path, e.MD5, e.MTime = rest[:j], rest[j+1:i], mt
		case Sym:
			k := strings.LastIndex(rest, " -> ")
			if k <= 0 {
				return nil, bad("want \"sym PATH -> TARGET MTIME\"")
			}
			e.Path = rest[:k]
			tgt := rest[k+4:]
			if i := strings.LastIndexByte(tgt, ' '); i > 0 {
				mt, err := strconv.ParseInt(tgt[i+1:], 10, 64)
				if err != nil {
					return nil, bad("invalid mtime")
				}
				e.Target, e.MTime = tgt[:i], mt
			} else {
				return nil, bad("missing mtime")
			}
		default:
			return nil, bad(fmt.Sprintf("unknown entry type %q", typ))
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// Meta is what Portage records about a merge besides name, slot and USE:
// read on demand (ReadMeta), since Read must stay fast for thousands of
// packages.
type Meta struct {
	// Counter orders merges (Portage's global COUNTER at merge time).
	Counter int64
	// BuildTime is when the package was built, in Unix seconds.
	BuildTime int64
	// EPrefix is the EPREFIX it was built for; CONTENTS paths start with it.
	EPrefix string
	// Provides and Requires are the sonames it provides and needs, by
	// multilib category (e.g. "x86_64": ["libc.so.6"]), from PROVIDES and
	// REQUIRES (written when pax-utils' scanelf is present at merge time).
	Provides, Requires map[string][]string
}

// ReadMeta reads COUNTER, BUILD_TIME, EPREFIX, PROVIDES and REQUIRES. A
// missing file leaves its field zero (older Portage, no scanelf); a
// malformed one is an error naming the file.
func (i Installed) ReadMeta() (Meta, error) {
	var m Meta
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"COUNTER", &m.Counter}, {"BUILD_TIME", &m.BuildTime}} {
		s, err := readField(i.Dir, f.name)
		if err != nil {
			return Meta{}, err
		}
		if s == "" {
			continue
		}
		if *f.dst, err = strconv.ParseInt(s, 10, 64); err != nil {
			return Meta{}, fmt.Errorf("vdb: %s: %q is not a number", filepath.Join(i.Dir, f.name), s)
		}
	}
	var err error
	if m.EPrefix, err = readField(i.Dir, "EPREFIX"); err != nil {
		return Meta{}, err
	}
	for _, f := range []struct {
		name string
		dst  *map[string][]string
	}{{"PROVIDES", &m.Provides}, {"REQUIRES", &m.Requires}} {
		s, err := readField(i.Dir, f.name)
		if err != nil {
			return Meta{}, err
		}
		if *f.dst, err = parseSonames(s); err != nil {
			return Meta{}, fmt.Errorf("vdb: %s: %v", filepath.Join(i.Dir, f.name), err)
		}
	}
	return m, nil
}

// parseSonames reads PROVIDES/REQUIRES: "CATEGORY: soname soname ..."
// groups, several per line possible ("x86_64: libc.so.6 x86_32: libc.so.6").
func parseSonames(s string) (map[string][]string, error) {
	if s == "" {
		return nil, nil
	}
	out := map[string][]string{}
	cat := ""
	for _, f := range strings.Fields(s) {
		if c, ok := strings.CutSuffix(f, ":"); ok {
			cat = c
			out[cat] = out[cat][:0:0]
			continue
		}
		if cat == "" {
			return nil, fmt.Errorf("soname %q before any \"CATEGORY:\"", f)
		}
		out[cat] = append(out[cat], f)
	}
	return out, nil
}

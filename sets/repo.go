package sets

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Repo is the set files of one revision of the managed repository.
type Repo struct {
	Config *Config
	// Sets are sorted by version, os, arch and path.
	Sets []*SetFile
	// Skipped lists files under the sets folder that are not named like a
	// set file of the layout (README.md, a stray file); lint warns on them.
	Skipped []string
	// Problems are lint errors found while loading: a file whose name is
	// no valid version or os-arch (not loaded: it would become a build
	// request), and files over the Limits (loaded without entries, marked
	// Unread).
	Problems []Diagnostic
	limits   Limits
	files    int // set files met so far, for Limits.Files
	// Diags are problems found while reading (invalid YAML, a vars file
	// whose eessi_version is not its name); Lint reports them first.
	Diags []Diagnostic
	// Unreadable holds the versions whose files could not be parsed ("" =
	// every version, e.g. a broken defaults/main.yml): Diff leaves them
	// out rather than report their lists as removed, and lint fails.
	Unreadable map[string]bool
}

// NoLayoutError is returned for a repository without .github/compatbot.yml
// in which compatbot finds no layout it can read. It must stop the check:
// reading such a repository as "no sets" would be a false green.
type NoLayoutError struct{}

func (*NoLayoutError) Error() string {
	return fmt.Sprintf("no %s and no layout compatbot knows: no sets/ folder (layout tree) and no EESSI Ansible role (%s/defaults/main.yml); "+
		"add %s with layout: tree, eessi, yaml or eessi-ansible", DefaultConfigPath, RoleDirs[0], DefaultConfigPath)
}

// DetectLayout resolves layout "auto" (a repository without config): the
// first tree that has a sets folder makes it tree, else the first with
// EESSI's Ansible role makes it eessi-ansible. Several trees may be given
// (a PR's base, then its head) so the PR that adds the first sets is read
// with them. Any other layout is returned as is. The result is a copy.
func DetectLayout(cfg *Config, trees ...fs.FS) (*Config, error) {
	if cfg == nil {
		cfg = DefaultConfig()
		cfg.Layout = LayoutAuto
	}
	if cfg.Layout != LayoutAuto {
		return cfg, nil
	}
	c := *cfg
	c.Detected = true
	for _, fsys := range trees {
		if st, err := fs.Stat(fsys, c.SetsDir); err == nil && st.IsDir() {
			c.Layout = LayoutTree
			return &c, nil
		}
	}
	for _, fsys := range trees {
		if findRole(fsys) != "" {
			c.Layout = LayoutEESSIAnsible
			return &c, nil
		}
	}
	return nil, &NoLayoutError{}
}

// LoadRepoConfig reads DefaultConfigPath from fsys, or returns DefaultConfig
// with layout "auto" (see DetectLayout) when the file does not exist. Pass the base branch's tree: the config that
// judges a PR must never come from the PR itself.
func LoadRepoConfig(fsys fs.FS) (*Config, error) {
	data, err := fs.ReadFile(fsys, DefaultConfigPath)
	if errors.Is(err, fs.ErrNotExist) {
		cfg := DefaultConfig()
		cfg.Layout = LayoutAuto
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", DefaultConfigPath, err)
	}
	return ParseConfig(DefaultConfigPath, data)
}

// LoadRepo reads every set file of cfg's layout from fsys (a nil cfg means
// DefaultConfig with layout "auto": see DetectLayout). A missing sets folder is an empty repository, not an
// error, so a diff against a revision from before the first set works.
// Read errors and malformed YAML lists are errors naming the file; content
// problems of set files are left to Lint.
func LoadRepo(fsys fs.FS, cfg *Config) (*Repo, error) {
	return LoadRepoLimited(fsys, cfg, CurrentLimits())
}

// LoadRepoLimited is LoadRepo with the given limits instead of the current
// ones.
func LoadRepoLimited(fsys fs.FS, cfg *Config, l Limits) (*Repo, error) {
	if cfg == nil {
		cfg = DefaultConfig()
		cfg.Layout = LayoutAuto
	}
	if cfg.Layout == LayoutAuto {
		var err error
		if cfg, err = DetectLayout(cfg, fsys); err != nil {
			return nil, err
		}
	}
	r := &Repo{Config: cfg, limits: l, Unreadable: map[string]bool{}}
	var err error
	switch cfg.Layout {
	case LayoutTree, "":
		err = r.loadTree(fsys, cfg.SetsDir)
	case LayoutEESSI:
		err = r.loadEESSI(fsys, cfg.SetsDir)
	case LayoutYAML:
		err = r.loadYAML(fsys, cfg)
	case LayoutEESSIAnsible:
		err = r.loadRole(fsys, cfg)
	default:
		err = fmt.Errorf("unknown layout %q", cfg.Layout)
	}
	if err != nil {
		return nil, err
	}
	sort.SliceStable(r.Sets, func(i, j int) bool {
		a, b := r.Sets[i], r.Sets[j]
		if a.Target() != b.Target() {
			return a.Target().Less(b.Target())
		}
		return a.Path < b.Path
	})
	sort.Strings(r.Skipped)
	return r, nil
}

func readDir(fsys fs.FS, dir string) ([]fs.DirEntry, bool, error) {
	ents, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", dir, err)
	}
	return ents, true, nil
}

func ignorable(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".md") || strings.HasSuffix(name, ".txt")
}

// loadTree reads <dir>/<version>/<os>-<arch>; os-arch splits at the first "-".
func (r *Repo) loadTree(fsys fs.FS, dir string) error {
	versions, _, err := readDir(fsys, dir)
	if err != nil {
		return err
	}
	for _, v := range versions {
		vdir := path.Join(dir, v.Name())
		if !v.IsDir() {
			if !ignorable(v.Name()) {
				r.Skipped = append(r.Skipped, vdir)
			}
			continue
		}
		if strings.HasPrefix(v.Name(), ".") {
			continue
		}
		files, _, err := readDir(fsys, vdir)
		if err != nil {
			return err
		}
		for _, f := range files {
			p := path.Join(vdir, f.Name())
			osName, arch, ok := strings.Cut(f.Name(), "-")
			if ignorable(f.Name()) {
				continue
			}
			if f.IsDir() || !ok || osName == "" || arch == "" {
				r.Skipped = append(r.Skipped, p)
				continue
			}
			if err := r.addFile(fsys, p, v.Name(), osName, arch); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadEESSI reads <dir>/eessi-<version>-<os>-<arch>. EESSI's oldest sets
// (eessi-2020.08) name no arch: they apply to every arch of their version
// and get a Target with empty OS and Arch.
func (r *Repo) loadEESSI(fsys fs.FS, dir string) error {
	files, _, err := readDir(fsys, dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		p := path.Join(dir, f.Name())
		if ignorable(f.Name()) {
			continue
		}
		rest, ok := strings.CutPrefix(f.Name(), "eessi-")
		version, osArch, _ := strings.Cut(rest, "-")
		osName, arch, _ := strings.Cut(osArch, "-")
		if f.IsDir() || !ok || version == "" || (osArch != "" && (osName == "" || arch == "")) {
			r.Skipped = append(r.Skipped, p)
			continue
		}
		if err := r.addFile(fsys, p, version, osName, arch); err != nil {
			return err
		}
	}
	return nil
}

// addFile reads and parses one set file within the limits. A file over a
// limit is kept as an Unread set (its target exists, so the config's
// arches are still matched) with its problem recorded.
func (r *Repo) addFile(fsys fs.FS, p, version, osName, arch string) error {
	if msg := checkTargetName(version, osName, arch); msg != "" {
		r.problem(p, CodeInvalidName, "not read: %s", msg)
		return nil
	}
	sf, err := r.parseLimited(fsys, p)
	if err != nil {
		return err
	}
	if sf == nil {
		sf = &SetFile{Path: p, Name: baseName(p), Unread: true}
	}
	sf.Version, sf.OS, sf.Arch = version, osName, arch
	r.Sets = append(r.Sets, sf)
	return nil
}

// parseLimited parses p, or returns nil with a problem recorded when it is
// over one of the limits.
func (r *Repo) parseLimited(fsys fs.FS, p string) (*SetFile, error) {
	l := r.limits
	if r.files++; r.files > l.Files {
		if r.files == l.Files+1 {
			r.problem(p, CodeTooManyFiles, "more than %d set files; this one and the ones after it are not read", l.Files)
		}
		return nil, nil
	}
	data, ok, err := r.readLimited(fsys, p, l)
	if err != nil || !ok {
		return nil, err
	}
	if n, length := longLine(data, l.LineBytes); n > 0 {
		r.Problems = append(r.Problems, Diagnostic{File: p, Line: n, Col: 1, Severity: SeverityError, Code: CodeLongLine,
			Message: fmt.Sprintf("line of %d bytes, more than the limit of %d; file not read", length, l.LineBytes)})
		return nil, nil
	}
	sf := ParseSetFile(p, data)
	if len(sf.Entries) > l.Entries {
		r.Problems = append(r.Problems, Diagnostic{File: p, Line: sf.Entries[l.Entries].Line, Col: 1, Severity: SeverityError, Code: CodeTooManyEntries,
			Message: fmt.Sprintf("%d entries, more than the limit of %d; file not read", len(sf.Entries), l.Entries)})
		return nil, nil
	}
	return sf, nil
}

// Set returns the set file of target t, nil when there is none.
func (r *Repo) Set(t Target) *SetFile {
	for _, sf := range r.Sets {
		if sf.Target() == t {
			return sf
		}
	}
	return nil
}

// Targets lists the repository's targets in order.
func (r *Repo) Targets() []Target {
	var out []Target
	for _, sf := range r.Sets {
		if len(out) == 0 || out[len(out)-1] != sf.Target() {
			out = append(out, sf.Target())
		}
	}
	return out
}

// Versions lists the versions that have sets, in order.
func (r *Repo) Versions() []string {
	var out []string
	for _, sf := range r.Sets {
		if len(out) == 0 || out[len(out)-1] != sf.Version {
			out = append(out, sf.Version)
		}
	}
	return out
}

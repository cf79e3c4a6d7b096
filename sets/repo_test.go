package sets

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func tokens(sf *SetFile) []string {
	var out []string
	for _, e := range sf.Entries {
		out = append(out, e.Token)
	}
	return out
}

func TestLoadRepoTree(t *testing.T) {
	fsys := fstest.MapFS{
		".github/compatbot.yml":       {Data: []byte("versions:\n  2025.06: {status: frozen}\n")},
		"sets/README.md":              {Data: []byte("docs\n")},
		"sets/2025.06/linux-x86_64":   {Data: []byte("sys-libs/glibc # C library\n")},
		"sets/2025.06/linux-aarch64":  {Data: []byte("sys-libs/glibc # C library\n")},
		"sets/2025.06/notes":          {Data: []byte("x\n")},
		"sets/2025.06/.hidden-x":      {Data: []byte("x\n")},
		"sets/2026.06/linux-x86_64":   {Data: []byte("")},
		"sets/2026.06/macos-arm64/x":  {Data: []byte("")},
		"sets/stray-file-at-top":      {Data: []byte("")},
		"sets/2024.01/linux-x86-64-v": {Data: []byte("a/b # c\n")},
	}
	cfg, err := LoadRepoConfig(fsys)
	if err != nil {
		t.Fatal(err)
	}
	r, err := LoadRepo(fsys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []Target{
		{"2024.01", "linux", "x86-64-v"},
		{"2025.06", "linux", "aarch64"},
		{"2025.06", "linux", "x86_64"},
		{"2026.06", "linux", "x86_64"},
	}
	if d := cmp.Diff(want, r.Targets()); d != "" {
		t.Errorf("targets (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"sets/2025.06/notes", "sets/2026.06/macos-arm64", "sets/stray-file-at-top"}, r.Skipped); d != "" {
		t.Errorf("skipped (-want +got):\n%s", d)
	}
	sf := r.Set(Target{"2025.06", "linux", "aarch64"})
	if sf == nil || sf.Path != "sets/2025.06/linux-aarch64" || sf.Entries[0].Reason != "C library" {
		t.Errorf("Set lookup: %+v", sf)
	}
	if r.Set(Target{"2025.06", "linux", "riscv64"}) != nil {
		t.Error("Set of a missing target must be nil")
	}
	if r.Config.VersionStatus("2025.06") != StatusFrozen {
		t.Error("config not used")
	}
	// A revision from before the first set is an empty repository when
	// the layout is known (the check detects it on base or head)...
	empty, err := LoadRepo(fstest.MapFS{}, DefaultConfig())
	if err != nil || len(empty.Sets) != 0 {
		t.Errorf("empty repo: %v %v", empty, err)
	}
	// ...but with no config and nothing to detect, loading fails.
	if _, err := LoadRepo(fstest.MapFS{}, nil); err == nil {
		t.Error("no config, no layout: loaded")
	}
}

func TestLoadRepoConfigError(t *testing.T) {
	_, err := LoadRepoConfig(fstest.MapFS{".github/compatbot.yml": {Data: []byte("layout: x\n")}})
	if err == nil || err.Error() != `.github/compatbot.yml:1: layout: must be tree, eessi, yaml or eessi-ansible, not "x"` {
		t.Errorf("got %v", err)
	}
}

// TestLoadExampleRepo reads the project's example compat-layer repository.
func TestLoadExampleRepo(t *testing.T) {
	fsys := os.DirFS("../testdata/compat-layer/base")
	cfg, err := LoadRepoConfig(fsys)
	if err != nil {
		t.Fatal(err)
	}
	r, err := LoadRepo(fsys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Sets) < 4 {
		t.Fatalf("example repo has %d sets, want at least 4", len(r.Sets))
	}
}

func eessiFS(t *testing.T) (string, fs.FS) {
	dir := filepath.Join(gentooData, "eessi")
	if _, err := os.Stat(filepath.Join(dir, "eessi_sets.yml")); err != nil {
		t.Fatalf("EESSI test data missing: %v", err)
	}
	return dir, os.DirFS(dir)
}

func TestLoadRepoEESSISets(t *testing.T) {
	_, fsys := eessiFS(t)
	cfg := DefaultConfig()
	cfg.Layout = LayoutEESSI
	r, err := LoadRepo(fsys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Sets) != 27 || len(r.Skipped) != 0 {
		t.Fatalf("%d sets, skipped %v", len(r.Sets), r.Skipped)
	}
	// The arch-less eessi-2020.08 applies to every arch of its version.
	all := r.Set(Target{Version: "2020.08"})
	if all == nil || all.Name != "eessi-2020.08" || len(all.Entries) != 4 {
		t.Errorf("eessi-2020.08: %+v", all)
	}
	x := r.Set(Target{"2025.06", "linux", "x86_64"})
	if x == nil || x.Path != "sets/eessi-2025.06-linux-x86_64" || x.Entries[0].Token != "=app-arch/xz-utils-5.8.2::eessi" {
		t.Errorf("2025.06 x86_64: %+v", x)
	}
}

// TestLoadRepoEESSIYAML checks that the YAML lists give exactly the set
// files EESSI generated from them, per version and arch, in order.
func TestLoadRepoEESSIYAML(t *testing.T) {
	dir, fsys := eessiFS(t)
	cfg, err := ParseConfig("c.yml", []byte("layout: yaml\nyaml_files: [eessi_sets.yml, compat-layer-vars/2026.06.yml]\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := LoadRepo(fsys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 2023.06, 2025.06 and 2026.06, each on aarch64, riscv64 and x86_64.
	if len(r.Sets) != 9 {
		t.Fatalf("%d sets: %v", len(r.Sets), r.Targets())
	}
	compared := 0
	for _, sf := range r.Sets {
		if sf.Version == "2026.06" {
			if sf.Path != "compat-layer-vars/2026.06.yml" || len(sf.Entries) < 20 {
				t.Errorf("2026.06 %s: %d entries from %s", sf.Arch, len(sf.Entries), sf.Path)
			}
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, "sets", sf.Name))
		if err != nil {
			t.Fatalf("%s: no generated set file to compare with: %v", sf.Name, err)
		}
		want := tokens(ParseSetFile(sf.Name, data))
		if d := cmp.Diff(want, tokens(sf)); d != "" {
			t.Errorf("%s from YAML differs from EESSI's set file (-want +got):\n%s", sf.Name, d)
		}
		compared++
		for _, e := range sf.Entries {
			if e.Err != nil || e.Atom == nil {
				t.Errorf("%s: %v", e.Token, e.Err)
			}
		}
	}
	if compared != 6 {
		t.Errorf("compared %d sets", compared)
	}
	// Positions point at the package's name in the YAML.
	x := r.Set(Target{"2025.06", "linux", "x86_64"})
	if e := x.Entries[0]; e.Line != 55 || e.Col != 15 || e.Token != "=app-arch/xz-utils-5.8.2::eessi" {
		t.Errorf("first 2025.06 entry at %d:%d %q", e.Line, e.Col, e.Token)
	}
}

func TestLoadRepoYAMLReasonsAndErrors(t *testing.T) {
	src := `eessi_archs: [linux-x86_64, linux-aarch64]
eessi_sets:
  - name: eessi-2025.06
    packages:
      # Lmod provides the module command
      - name: sys-cluster/lmod
      - name: sys-apps/dbus   # session bus for desktop tools
      - name: dev-util/direnv
        version: 2.36.0
        overlay: eessi
        reason: users asked for it
      - name: sys-fabric/opa-psm2
        include_on: [linux-x86_64]
        reason: Omni-Path
      - name: bad
      - name: dev-util/x
        version: 1.0.0.x
      - name: dev-util/y
        colour: blue
      - version: "1"
`
	r, err := LoadRepo(fstest.MapFS{"l.yml": {Data: []byte(src)}}, &Config{Layout: LayoutYAML, YAMLFiles: []string{"l.yml"}})
	if err != nil {
		t.Fatal(err)
	}
	x := r.Set(Target{"2025.06", "linux", "x86_64"})
	a := r.Set(Target{"2025.06", "linux", "aarch64"})
	if x == nil || a == nil || len(x.Entries) != 8 || len(a.Entries) != 7 {
		t.Fatalf("sets: %v", r.Targets())
	}
	type got struct {
		Line, Col int
		Token     string
		Reason    string
		Err       string
	}
	var g []got
	for _, e := range x.Entries {
		es := ""
		if e.Err != nil {
			es = e.Err.Error()
		}
		g = append(g, got{e.Line, e.Col, e.Token, e.Reason, es})
	}
	want := []got{
		{6, 15, "sys-cluster/lmod", "Lmod provides the module command", ""},
		{7, 15, "sys-apps/dbus", "session bus for desktop tools", ""},
		{8, 15, "=dev-util/direnv-2.36.0::eessi", "users asked for it", ""},
		{12, 15, "sys-fabric/opa-psm2", "Omni-Path", ""},
		{15, 15, "bad", "", `col 1: missing category (want cat/pkg) in atom "bad"`},
		{17, 18, "=dev-util/x-1.0.0.x", "", `version "1.0.0.x": ` + versionErr("1.0.0.x")},
		{19, 9, "dev-util/y", "", `unknown key "colour" (known: name, version, overlay, include_on, exclude_on, reason)`},
		{20, 9, "", "", "package has no name"},
	}
	if d := cmp.Diff(want, g); d != "" {
		t.Errorf("entries (-want +got):\n%s", d)
	}

	for _, tc := range []struct{ src, want string }{
		{"eessi_sets: {a: b}\n", "l.yml:1: eessi_sets: want a list of {name, packages}, got a mapping"},
		{"eessi_sets:\n  - name: eessi-1\n    packages: x\n", `l.yml:3: eessi_sets[0].packages: want a list of packages, got "x"`},
		{"eessi_sets:\n  - name: eessi-1\n    pkgs: []\n", "l.yml:3: eessi_sets[0].pkgs: unknown key (known: name, packages)"},
		{"prefix_packages: []\n", "l.yml:1: prefix_packages needs a literal eessi_version in the same file"},
		{"foo: 1\n", "l.yml: no eessi_sets or prefix_packages"},
		{"- 1\n", "l.yml:1: want a mapping with eessi_sets or prefix_packages, got a list"},
		{"eessi_sets:\n  - name: eessi-1\n  - name: eessi-1\n", "l.yml:3: version 1 is already defined in l.yml:2"},
	} {
		_, err := LoadRepo(fstest.MapFS{"l.yml": {Data: []byte(tc.src)}}, &Config{Layout: LayoutYAML, YAMLFiles: []string{"l.yml"}})
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: got %v, want %s", tc.src, err, tc.want)
		}
	}
	// A missing file is a revision from before it (a new version): no
	// sets from it, no load error, and a lint error on that revision.
	r, err = LoadRepo(fstest.MapFS{}, &Config{Layout: LayoutYAML, YAMLFiles: []string{"nope.yml"}})
	if err != nil || len(r.Sets) != 0 {
		t.Fatalf("missing file: %v, %d sets", err, len(r.Sets))
	}
	if d := Lint(r); len(d) != 1 || d[0].String() != ".github/compatbot.yml:1:1: yaml_files: nope.yml does not exist" {
		t.Errorf("missing file lint: %v", d)
	}
}

func versionErr(s string) string {
	_, err := ParseVersion(s)
	return err.Error()
}

// failFS fails to open one file, as a broken git object or permission would.
type failFS struct {
	fs.FS
	bad string
}

func (f failFS) Open(name string) (fs.File, error) {
	if name == f.bad {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return f.FS.Open(name)
}

func TestLoadRepoReadErrorNamesFile(t *testing.T) {
	m := fstest.MapFS{"sets/2025.06/linux-x86_64": {Data: []byte("a/b # c\n")}}
	_, err := LoadRepo(failFS{m, "sets/2025.06/linux-x86_64"}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "sets/2025.06/linux-x86_64: ") {
		t.Errorf("got %v", err)
	}
	_, err = LoadRepo(failFS{m, "sets/2025.06"}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "sets/2025.06: ") {
		t.Errorf("got %v", err)
	}
	_, err = LoadRepoConfig(failFS{m, DefaultConfigPath})
	if err == nil || !strings.HasPrefix(err.Error(), ".github/compatbot.yml: ") {
		t.Errorf("got %v", err)
	}
}

func TestTargetString(t *testing.T) {
	if s := (Target{"2025.06", "linux", "x86_64"}).String(); s != "2025.06 linux-x86_64" {
		t.Error(s)
	}
	if s := (Target{Version: "2020.08"}).String(); s != "2020.08 (all arches)" {
		t.Error(s)
	}
}

// TestLoadRepoYAMLWithoutArches: an Ansible vars file alone names no arch
// (eessi_host_arch is a template), so its version gets one all-arches set
// without the packages limited by include_on.
func TestLoadRepoYAMLWithoutArches(t *testing.T) {
	_, fsys := eessiFS(t)
	r, err := LoadRepo(fsys, &Config{Layout: LayoutYAML, YAMLFiles: []string{"compat-layer-vars/2026.06.yml"}})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Target{{Version: "2026.06"}}, r.Targets()); d != "" {
		t.Fatalf("targets (-want +got):\n%s", d)
	}
	has := map[string]bool{}
	for _, e := range r.Sets[0].Entries {
		has[e.Atom.CP()] = true
	}
	if has["sys-fabric/opa-psm2"] || !has["sys-cluster/rdma-core"] || !has["app-arch/7zip"] {
		t.Errorf("entries: %v", tokens(r.Sets[0]))
	}
	// With the config's arches, include_on applies again.
	cfg := &Config{Layout: LayoutYAML, YAMLFiles: []string{"compat-layer-vars/2026.06.yml"},
		Versions: map[string]VersionConfig{"2026.06": {Arches: []string{"linux-x86_64", "linux-aarch64"}}}}
	r, err = LoadRepo(fsys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	x, a := r.Set(Target{"2026.06", "linux", "x86_64"}), r.Set(Target{"2026.06", "linux", "aarch64"})
	if x == nil || a == nil || len(x.Entries) != len(a.Entries)+1 {
		t.Errorf("targets %v", r.Targets())
	}
}

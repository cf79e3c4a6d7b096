package sets

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// The fixture testdata/eessi-role/ is a history of a repository in the
// layout of EESSI's compatibility-layer repository (written for these tests
// from the layout's description, not copied): one folder per commit.
//
//	01-defaults     one version (2025.06) in defaults/main.yml only
//	02-vars         the split: defaults + vars/2025.06.yml (same lists, so no
//	                change for 2025.06) + vars/2026.06.yml (a new version)
//	03-bump         pins bumped, a package up, one in, one out, an arch scope
//	                and an overlay changed, mask, unmask, removal, package set;
//	                the defaults' overlay URL changed (2025.06 only: 2026.06
//	                has its own custom_overlays)
//	04-invalid      vars/2026.06.yml does not parse; 2025.06 gets a mask
//	05-new-version  2026.06 fixed (with a comment reason), so all additions
//	                after the unreadable base; a new vars/2027.06.yml
const roleFixture = "testdata/eessi-role"

func roleSteps(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(roleFixture)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) != 5 {
		t.Fatalf("fixture steps: %v", out)
	}
	return out
}

func changeCount(diffs []TargetDiff) int {
	n := 0
	for _, d := range diffs {
		n += len(d.Changes)
	}
	return n
}

// TestEESSIRoleHistoryGolden reads every commit of the fixture with no
// config (the layout is detected) and checks lint and the diff of each
// commit against the one before, in all three formats.
func TestEESSIRoleHistoryGolden(t *testing.T) {
	var text, md, lint strings.Builder
	var js []any
	var prev *Repo
	repos := map[string]*Repo{}
	diffs := map[string][]TargetDiff{}
	for _, step := range roleSteps(t) {
		r := loadDirRepo(t, filepath.Join(roleFixture, step))
		if r.Config.Layout != LayoutEESSIAnsible || !r.Config.Detected {
			t.Fatalf("%s: layout %q detected=%v", step, r.Config.Layout, r.Config.Detected)
		}
		d := Diff(prev, r)
		repos[step], diffs[step] = r, d
		fmt.Fprintf(&text, "== %s\n%s\n", step, FormatDiffText(d))
		fmt.Fprintf(&md, "## %s\n\n%s\n", step, FormatDiffMarkdown(d))
		js = append(js, map[string]any{"step": step, "diffs": d})
		fmt.Fprintf(&lint, "== %s\n%s", step, diagText(Lint(r)))
		prev = r
	}
	golden(t, "eessi-role/diff.txt", []byte(text.String()))
	golden(t, "eessi-role/diff.md", []byte(md.String()))
	b, err := json.MarshalIndent(js, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "eessi-role/diff.json", append(b, '\n'))
	golden(t, "eessi-role/lint.golden", []byte(lint.String()))

	// Every commit of the fixture changes some list: none may be silent.
	for step, d := range diffs {
		if changeCount(d) == 0 && step != "02-vars" {
			t.Errorf("%s: no changes reported", step)
		}
	}
	// 02: moving 2025.06's lists from the defaults to its vars file is no
	// change for 2025.06 (Ansible's merge gives the same lists)...
	for _, d := range diffs["02-vars"] {
		if d.Target.Version == "2025.06" {
			t.Errorf("02-vars: the split changed 2025.06: %+v", d.Changes)
		}
	}
	// ...and the new version 2026.06 is all additions, on the arches its
	// include_on/exclude_on name (its host arch is a template).
	var targets []string
	for _, d := range diffs["02-vars"] {
		targets = append(targets, d.Target.String())
		for _, c := range d.Changes {
			if c.Kind != Added {
				t.Errorf("02-vars: %s: %+v is not an addition", d.Target, c)
			}
		}
	}
	if d := cmp.Diff([]string{"2026.06 linux-riscv64", "2026.06 linux-x86_64"}, targets); d != "" {
		t.Errorf("02-vars targets (-want +got):\n%s", d)
	}
	// The include_on-only package is in its arch's target only.
	r2 := repos["02-vars"]
	if !hasToken(r2.Set(Target{"2026.06", "linux", "x86_64"}), "=sys-fabric/opa-psm2-12.0.1::eessi") ||
		hasToken(r2.Set(Target{"2026.06", "linux", "riscv64"}), "=sys-fabric/opa-psm2-12.0.1::eessi") {
		t.Error("opa-psm2 (include_on linux-x86_64) is not on exactly linux-x86_64")
	}
	if hasToken(r2.Set(Target{"2026.06", "linux", "riscv64"}), "sys-cluster/rdma-core") {
		t.Error("rdma-core (exclude_on linux-riscv64) is on linux-riscv64")
	}

	// 03: the pin bump is in every target of 2026.06 with both commits.
	for _, osArch := range []string{"linux-riscv64", "linux-x86_64"} {
		o, a, _ := strings.Cut(osArch, "-")
		c := findChange(diffs["03-bump"], Target{"2026.06", o, a}, ListPin, "gentoo_git_commit")
		if c == nil || c.Kind != Changed || !strings.HasPrefix(c.Old, "2222") || !strings.HasPrefix(c.New, "3333") {
			t.Errorf("03-bump %s: gentoo_git_commit change %+v", osArch, c)
		}
	}
	// The defaults' overlay changed only the version that does not set
	// its own custom_overlays.
	if c := findChange(diffs["03-bump"], Target{"2025.06", "linux", "x86_64"}, ListPin, "overlay eessi"); c == nil || !strings.Contains(c.New, "overlay-v2") {
		t.Errorf("03-bump 2025.06 overlay: %+v", c)
	}
	if c := findChange(diffs["03-bump"], Target{"2026.06", "linux", "x86_64"}, ListPin, "overlay eessi"); c == nil || strings.Contains(c.New, "overlay-v2") || !strings.Contains(c.New, "commit=bbbb") {
		t.Errorf("03-bump 2026.06 overlay: %+v", c)
	}
	// The arch scope: opa-psm2 now also on riscv64.
	if c := findChange(diffs["03-bump"], Target{"2026.06", "linux", "riscv64"}, "", "sys-fabric/opa-psm2"); c == nil || c.Kind != Added {
		t.Errorf("03-bump riscv64 opa-psm2: %+v", c)
	}

	// 04: the broken file is a lint error at file:line:col with the
	// parser's message; its version is left out of the diff (not reported
	// as all removed), the other version's change is still reported.
	var yamlErr *Diagnostic
	for _, d := range Lint(repos["04-invalid"]) {
		if d.Code == CodeInvalidYAML {
			yamlErr = &d
		}
	}
	if yamlErr == nil || yamlErr.Severity != SeverityError || !strings.HasSuffix(yamlErr.File, "vars/2026.06.yml") || yamlErr.Line < 1 || yamlErr.Col < 1 ||
		!strings.Contains(yamlErr.Message, "invalid YAML: ") {
		t.Errorf("04-invalid: YAML error %+v", yamlErr)
	}
	for _, d := range diffs["04-invalid"] {
		if d.Target.Version == "2026.06" {
			t.Errorf("04-invalid: unreadable 2026.06 diffed: %+v", d.Changes)
		}
	}
	if c := findChange(diffs["04-invalid"], Target{"2025.06", "linux", "x86_64"}, ListMask, "=dev-libs/openssl-3.5.0"); c == nil || c.Kind != Added || c.Reason != "a broken release" {
		t.Errorf("04-invalid: 2025.06 mask: %+v", c)
	}

	// 05: the new vars file is all additions; the comment above an entry
	// is its reason, as is a comment beside it.
	for _, d := range diffs["05-new-version"] {
		if d.Target.Version != "2027.06" {
			continue
		}
		for _, c := range d.Changes {
			if c.Kind != Added {
				t.Errorf("05: 2027.06 %+v is not an addition", c)
			}
		}
	}
	var lfs *Entry
	for _, e := range repos["05-new-version"].Set(Target{"2026.06", "linux", "x86_64"}).Entries {
		if e.Token == "=dev-vcs/git-lfs-3.6.0" {
			lfs = &e
		}
	}
	if lfs == nil || lfs.Reason != "large files in the software layer's repositories" {
		t.Errorf("05: git-lfs entry: %+v", lfs)
	}
	// 2026.06 was unreadable in the base (04): it had no lists there, so
	// the head's are all additions, shown rather than hidden.
	if c := findChange(diffs["05-new-version"], Target{"2026.06", "linux", "x86_64"}, "", "dev-vcs/git-lfs"); c == nil || c.Kind != Added {
		t.Errorf("05: 2026.06 after an unreadable base: %+v", c)
	}
	if c := findChange(diffs["05-new-version"], Target{"2027.06", "linux", "x86_64"}, "", "app-arch/zstd"); c == nil || c.Reason != "the compressor of the layer's artifacts" {
		t.Errorf("05: zstd reason: %+v", c)
	}
}

func hasToken(sf *SetFile, tok string) bool {
	if sf == nil {
		return false
	}
	for _, e := range sf.Entries {
		if e.Token == tok {
			return true
		}
	}
	return false
}

func findChange(diffs []TargetDiff, t Target, list, pkg string) *Change {
	for _, d := range diffs {
		if d.Target != t {
			continue
		}
		for _, c := range d.Changes {
			if c.List == list && (c.Package == pkg || c.New == pkg || c.Old == pkg) {
				return &c
			}
		}
	}
	return nil
}

const testRole = "ansible/playbooks/roles/compatibility_layer/"

func roleFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for p, s := range files {
		m[testRole+p] = &fstest.MapFile{Data: []byte(s)}
	}
	return m
}

// TestRoleKeyForms covers the forms the keys took over EESSI's history and
// what each becomes in the model.
func TestRoleKeyForms(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		check func(t *testing.T, r *Repo)
	}{
		{"2020: no eessi_version, plain package strings, pkg_set",
			map[string]string{"defaults/main.yml": "prefix_packages:\n  - dev-lang/tcl\n  - app-admin/Lmod\npkg_set: '@2020'\ncustom_overlay_name: eessi\ncustom_overlay_url: https://x/o.git\n"},
			func(t *testing.T, r *Repo) {
				sf := r.Set(Target{Version: "default"})
				if sf == nil {
					t.Fatalf("targets %v", r.Targets())
				}
				if d := cmp.Diff([]string{"dev-lang/tcl", "app-admin/Lmod"}, tokens(sf)); d != "" {
					t.Error(d)
				}
				if len(sf.PackageSets) != 1 || sf.PackageSets[0].Token != "@2020" || sf.PackageSets[0].SetRef != "2020" {
					t.Errorf("package sets %+v", sf.PackageSets)
				}
				if d := cmp.Diff([]Pin{{Name: "overlay eessi", Value: "https://x/o.git", File: testRole + "defaults/main.yml", Line: 6}}, sf.Pins); d != "" {
					t.Error(d)
				}
			}},
		{"unquoted set names keep their text; custom_overlays as a mapping; snapshots",
			map[string]string{"defaults/main.yml": "eessi_version: '2020.12'\npackage_sets: [2020.08, \"{{eessi_version}}\"]\n" +
				"custom_overlays:\n  eessi: {source: git, url: https://x/o.git}\nprefix_snapshot: portage-20201126.tar.bz2\nprefix_snapshot_version: 20210121\n"},
			func(t *testing.T, r *Repo) {
				sf := r.Set(Target{Version: "2020.12"})
				if sf == nil {
					t.Fatalf("targets %v", r.Targets())
				}
				var names []string
				for _, e := range sf.PackageSets {
					names = append(names, e.Token)
				}
				if d := cmp.Diff([]string{"@2020.08", "@2020.12"}, names); d != "" {
					t.Error(d)
				}
				var pins []string
				for _, p := range sf.Pins {
					pins = append(pins, p.Name+"="+p.Value)
				}
				if d := cmp.Diff([]string{"overlay eessi=https://x/o.git source=git", "prefix_snapshot=portage-20201126.tar.bz2", "prefix_snapshot_version=20210121"}, pins); d != "" {
					t.Error(d)
				}
			}},
		{"a vars key replaces the default as a whole",
			map[string]string{
				"defaults/main.yml":  "eessi_version: '1'\neessi_host_os: linux\neessi_host_arch: x86_64\npackage_sets: [a, b]\nprefix_remove_packages: [x/y]\n",
				"vars/1.yml":         "eessi_version: '1'\npackage_sets: []\n",
				"vars/2.yml":         "eessi_version: '2'\nprefix_remove_packages: [z/w]\n",
				"vars/README.md":     "not a vars file\n",
				"vars/main.yml":      "prefix_mask_packages: '>=a/b-2'\n",
				"vars/sub/other.yml": "x: 1\n",
			},
			func(t *testing.T, r *Repo) {
				one, two := r.Set(Target{"1", "linux", "x86_64"}), r.Set(Target{"2", "linux", "x86_64"})
				if one == nil || two == nil || len(r.Sets) != 2 {
					t.Fatalf("targets %v", r.Targets())
				}
				if len(one.PackageSets) != 0 || len(two.PackageSets) != 2 {
					t.Errorf("package sets: %v, %v", one.PackageSets, two.PackageSets)
				}
				if len(one.Removals) != 1 || one.Removals[0].Token != "x/y" || len(two.Removals) != 1 || two.Removals[0].Token != "z/w" {
					t.Errorf("removals: %+v, %+v", one.Removals, two.Removals)
				}
				if len(one.Masks) != 1 || one.Masks[0].Token != ">=a/b-2" || one.Masks[0].File != testRole+"vars/main.yml" || one.Masks[0].Col != 24 {
					t.Errorf("vars/main.yml mask: %+v", one.Masks)
				}
			}},
		{"masks: lines, comments as reasons, positions in the YAML file",
			map[string]string{"defaults/main.yml": "eessi_version: '1'\nprefix_mask_packages: |\n    # too new\n    >=sys-devel/gcc-15\n\n    =dev-libs/a-1 # broken\n    not an atom\n"},
			func(t *testing.T, r *Repo) {
				sf := r.Sets[0]
				var got []string
				for _, e := range sf.Masks {
					got = append(got, fmt.Sprintf("%d:%d %s (%s) err=%v", e.Line, e.Col, e.Token, e.Reason, e.Err != nil))
				}
				want := []string{"4:5 >=sys-devel/gcc-15 (too new) err=false", "6:5 =dev-libs/a-1 (broken) err=false", "7:5 not () err=true"}
				if d := cmp.Diff(want, got); d != "" {
					t.Error(d)
				}
			}},
		{"wrong shapes are lint errors at their line, not load errors",
			map[string]string{
				"defaults/main.yml": "eessi_version: '1'\nprefix_packages: {a: b}\npackage_sets: x\nprefix_mask_packages: [[x]]\nprefix_remove_packages: [{a: b}]\n",
				"vars/2.yml":        "eessi_version: '3'\n",
			},
			func(t *testing.T, r *Repo) {
				var got []string
				for _, d := range Lint(r) {
					got = append(got, fmt.Sprintf("%s:%d:%d %s", filepath.Base(d.File), d.Line, d.Col, d.Code))
				}
				want := []string{"main.yml:2:18 invalid-value", "main.yml:3:15 invalid-value", "main.yml:4:24 invalid-atom", "main.yml:5:26 invalid-atom", "2.yml:1:16 invalid-value"}
				if d := cmp.Diff(want, got); d != "" {
					t.Error(d)
				}
			}},
		{"a template compatbot cannot expand is kept and warned about",
			map[string]string{"defaults/main.yml": "eessi_version: '1'\npackage_sets: [\"s-{{ eessi_host_arch | upper }}\"]\n"},
			func(t *testing.T, r *Repo) {
				if sf := r.Sets[0]; len(sf.PackageSets) != 1 || sf.PackageSets[0].Token != "@s-{{ eessi_host_arch | upper }}" {
					t.Errorf("%+v", sf.PackageSets)
				}
				if d := Lint(r); len(d) != 1 || d[0].Code != CodeTemplate || d[0].Severity != SeverityWarning {
					t.Errorf("lint %v", d)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := LoadRepo(roleFS(tt.files), nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
		})
	}
}

// TestRoleArchesAndReasons: the config's arches decide the targets when
// given, and a package whose include_on names none of them is warned about;
// require_reasons makes EESSI's reason-less lists fail lint.
func TestRoleArchesAndReasons(t *testing.T) {
	files := roleFS(map[string]string{"defaults/main.yml": "eessi_version: '1'\nprefix_packages:\n  - name: a/b\n  - name: c/d\n    include_on: [linux-riscv64]\n"})
	r, err := LoadRepo(files, &Config{Layout: LayoutEESSIAnsible, Versions: map[string]VersionConfig{"1": {Arches: []string{"linux-x86_64", "linux-aarch64"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Target{{"1", "linux", "aarch64"}, {"1", "linux", "x86_64"}}, r.Targets()); d != "" {
		t.Error(d)
	}
	diags := Lint(r)
	if len(diags) != 1 || diags[0].Code != CodeNotConfigured || diags[0].Line != 4 || !strings.Contains(diags[0].Message, "in no target") {
		t.Errorf("dropped include_on: %v", diags)
	}
	yes := true
	r, err = LoadRepo(files, &Config{Layout: LayoutEESSIAnsible, RequireReasons: &yes})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range Lint(r) {
		if d.Code == CodeMissingReason {
			n++
		}
	}
	// a/b on both arches (the files name only linux-riscv64), c/d once.
	if n != 2 {
		t.Errorf("%d missing-reason errors, want 2: %v", n, Lint(r))
	}
	cfg, err := ParseConfig("c.yml", []byte("layout: eessi-ansible\nrole_dir: roles/x\nrequire_reasons: true\n"))
	if err != nil || cfg.RoleDir != "roles/x" || !cfg.ReasonsRequired() {
		t.Errorf("config: %+v, %v", cfg, err)
	}
	if !DefaultConfig().ReasonsRequired() || (&Config{Layout: LayoutEESSIAnsible}).ReasonsRequired() {
		t.Error("default require_reasons: on for compatbot's layouts, off for eessi-ansible")
	}
	// role_dir is read as given, not searched.
	other := fstest.MapFS{"roles/x/defaults/main.yml": {Data: []byte("eessi_version: '9'\n")}}
	r, err = LoadRepo(other, cfg)
	if err != nil || len(r.Targets()) != 1 || r.Targets()[0].Version != "9" {
		t.Errorf("role_dir: %v, %v", r, err)
	}
}

func TestDetectLayout(t *testing.T) {
	tree := fstest.MapFS{"sets/1/linux-x86_64": {Data: []byte("a/b # c\n")}}
	role := roleFS(map[string]string{"defaults/main.yml": "eessi_version: '1'\n"})
	oldRole := fstest.MapFS{"playbooks/roles/compatibility-layer/defaults/main.yml": {Data: []byte("prefix_packages: [a/b]\n")}}
	empty := fstest.MapFS{"README.md": {Data: []byte("hi\n")}}
	auto := func() *Config { c := DefaultConfig(); c.Layout = LayoutAuto; return c }
	tests := []struct {
		name  string
		trees []fstest.MapFS
		want  string
	}{
		{"tree", []fstest.MapFS{tree}, LayoutTree},
		{"role", []fstest.MapFS{role}, LayoutEESSIAnsible},
		{"2020's role path", []fstest.MapFS{oldRole}, LayoutEESSIAnsible},
		{"base empty, head has the role", []fstest.MapFS{empty, role}, LayoutEESSIAnsible},
		{"nothing", []fstest.MapFS{empty, empty}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var trees []fs.FS
			for _, m := range tt.trees {
				trees = append(trees, m)
			}
			cfg, err := DetectLayout(auto(), trees...)
			if tt.want == "" {
				var nl *NoLayoutError
				if !errors.As(err, &nl) || !strings.Contains(err.Error(), "no layout compatbot knows") {
					t.Errorf("got %v, %v", cfg, err)
				}
				if _, err := LoadRepo(tt.trees[0], auto()); !errors.As(err, &nl) {
					t.Errorf("LoadRepo: %v", err)
				}
				return
			}
			if err != nil || cfg.Layout != tt.want || !cfg.Detected {
				t.Errorf("got %+v, %v", cfg, err)
			}
		})
	}
	// A config that names the layout is never second-guessed.
	cfg, err := DetectLayout(&Config{Layout: LayoutTree}, role)
	if err != nil || cfg.Layout != LayoutTree {
		t.Errorf("explicit layout: %+v, %v", cfg, err)
	}
	if cfg, err := LoadRepoConfig(empty); err != nil || cfg.Layout != LayoutAuto {
		t.Errorf("no config: %+v, %v", cfg, err)
	}
}

func TestExpandJinja(t *testing.T) {
	vars := map[string]string{"eessi_version": "2026.06", "eessi_host_os": "linux", "eessi_host_arch": "x86_64", "p": "/cvmfs/{{ eessi_version }}"}
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"eessi-{{ eessi_version }}-{{ eessi_host_os }}-{{ eessi_host_arch }}", "eessi-2026.06-linux-x86_64", true},
		{"eessi-{{eessi_version}}-{{   eessi_host_os}}-{{eessi_host_arch   }}", "eessi-2026.06-linux-x86_64", true},
		{"{{- eessi_version -}}", "2026.06", true},
		{"{{ p }}/compat", "/cvmfs/2026.06/compat", true},
		{"plain", "plain", true},
		{"{{ ansible_architecture }}", "{{ ansible_architecture }}", false},
		{"{{ eessi_version | replace('.', '') }}", "{{ eessi_version | replace('.', '') }}", false},
		{"{% if x %}a{% endif %}", "{% if x %}a{% endif %}", false},
	}
	for _, tt := range tests {
		got, ok := ExpandJinja(tt.in, vars)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ExpandJinja(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	// A variable that names itself does not loop.
	if got, ok := ExpandJinja("{{ a }}", map[string]string{"a": "{{ a }}"}); ok || got != "{{ a }}" {
		t.Errorf("self reference: %q %v", got, ok)
	}
}

// FuzzEESSIRole: any defaults and vars files load (problems become
// diagnostics, never a load error or a panic), and lint, diff and the
// build files run on what loads.
func FuzzEESSIRole(f *testing.F) {
	for _, step := range []string{"02-vars", "03-bump"} {
		d, err1 := os.ReadFile(filepath.Join(roleFixture, step, testRole, "defaults/main.yml"))
		v, err2 := os.ReadFile(filepath.Join(roleFixture, step, testRole, "vars/2026.06.yml"))
		if err1 == nil && err2 == nil {
			f.Add(d, v)
		}
	}
	f.Add([]byte("eessi_version: '1'\npackage_sets: [\"{{ eessi_version }}\"]\n"), []byte("prefix_mask_packages: |\n  >=a/b-1\n"))
	f.Add([]byte("a: &x [*x]\n"), []byte("- 1\n"))
	f.Add([]byte("custom_overlays: {e: {url: u}}\nprefix_packages: [x, {name: a/b, include_on: [l-x]}]\n"), []byte("{{"))
	f.Fuzz(func(t *testing.T, defaults, vars []byte) {
		m := roleFS(map[string]string{"defaults/main.yml": string(defaults), "vars/2026.06.yml": string(vars)})
		r, err := LoadRepo(m, &Config{Layout: LayoutEESSIAnsible})
		if err != nil {
			t.Fatalf("load error: %v", err)
		}
		for _, d := range Lint(r) {
			if d.File == "" || d.Line < 1 || d.Col < 1 {
				t.Fatalf("diagnostic without a position: %+v", d)
			}
		}
		_ = Diff(nil, r)
		_ = Diff(r, r)
		for _, sf := range r.Sets {
			_ = sf.BuildFiles()
		}
	})
}

// TestRoleOverlayBooleans: Ansible reads YAML 1.1, where "no" is false, so
// "autosync: no" -> "autosync: false" is no change; a real setting change is.
func TestRoleOverlayBooleans(t *testing.T) {
	load := func(v string) *Repo {
		r, err := LoadRepo(roleFS(map[string]string{"defaults/main.yml": "eessi_version: '1'\ncustom_overlays:\n  - {name: e, url: u, autosync: " + v + "}\n"}), nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if d := Diff(load("no"), load("false")); len(d) != 0 {
		t.Errorf("no -> false: %+v", d)
	}
	if d := Diff(load("no"), load("yes")); changeCount(d) != 1 {
		t.Errorf("no -> yes: %+v", d)
	}
}

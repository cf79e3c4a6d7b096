package sets

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfigExample(t *testing.T) {
	data, err := os.ReadFile("testdata/compatbot.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(".github/compatbot.yml", data)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Path:    ".github/compatbot.yml",
		Layout:  "tree",
		SetsDir: "sets",
		Versions: map[string]VersionConfig{
			// Unquoted 2025.06 is a YAML float; the key must keep its text.
			"2025.06": {Status: "frozen", Arches: []string{"linux-x86_64", "linux-aarch64"}, Line: 5, ArchLines: []int{7, 7}},
			"2026.06": {Status: "open", Arches: []string{"linux-x86_64", "linux-aarch64"}, Line: 8, ArchLines: []int{11, 12}},
		},
		Risky: []string{"glibc", "sys-devel/gcc", "python"},
		Deploy: DeployPolicy{
			Test:     Permission{Level: "write"},
			Prod:     Permission{Level: "maintain", Users: []string{"alice"}, Teams: []string{"eessi/compat-maintainers"}},
			Rebuild:  Permission{Level: "write"},
			Rollback: Permission{Level: "maintain"},
		},
		Tests: [][]string{{"python3", "-c", "import ssl"}, {"lmod", "--version"}},
		Targets: map[string]TargetConfig{
			"2026.06": {PackageUse: []string{"# EESSI's glibc has no multiarch", "sys-libs/glibc -multiarch"}, Line: 26},
			"2026.06/linux-x86_64": {
				PackageMask:   []string{"# 3.13 breaks EasyBuild's hooks", ">=dev-lang/python-3.13"},
				PackageUnmask: []string{"=sys-devel/gcc-14.3.0"},
				PackageUse:    []string{"dev-lang/python PYTHON_TARGETS: python3_12 -tk"},
				Line:          29,
			},
		},
		Tools: []string{"bash", "python3", "lmod", "gcc", "g++"},
	}
	if d := cmp.Diff(want, cfg); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
	if cfg.VersionStatus("2025.06") != "frozen" || cfg.VersionStatus("2099.01") != "open" {
		t.Error("VersionStatus")
	}
	// A target gets its version's lines, then its own.
	got := cfg.PortageFor(Target{Version: "2026.06", OS: "linux", Arch: "x86_64"})
	wantPC := PortageConfig{
		Mask:   []string{"# from .github/compatbot.yml:29, targets.2026.06/linux-x86_64", "# 3.13 breaks EasyBuild's hooks", ">=dev-lang/python-3.13"},
		Unmask: []string{"# from .github/compatbot.yml:29, targets.2026.06/linux-x86_64", "=sys-devel/gcc-14.3.0"},
		Use: []string{"# from .github/compatbot.yml:26, targets.2026.06", "# EESSI's glibc has no multiarch", "sys-libs/glibc -multiarch",
			"# from .github/compatbot.yml:29, targets.2026.06/linux-x86_64", "dev-lang/python PYTHON_TARGETS: python3_12 -tk"},
	}
	if d := cmp.Diff(wantPC, got); d != "" {
		t.Errorf("PortageFor 2026.06/linux-x86_64 (-want +got):\n%s", d)
	}
	arm := cfg.PortageFor(Target{Version: "2026.06", OS: "linux", Arch: "aarch64"})
	if len(arm.Mask) != 0 || len(arm.Unmask) != 0 || len(arm.Use) != 3 {
		t.Errorf("PortageFor 2026.06/linux-aarch64 = %+v, want the version's package_use only", arm)
	}
	if pc := cfg.PortageFor(Target{Version: "2025.06", OS: "linux", Arch: "x86_64"}); len(pc.Mask)+len(pc.Unmask)+len(pc.Use) != 0 {
		t.Errorf("PortageFor 2025.06 = %+v, want nothing", pc)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	for _, src := range []string{"", "# nothing\n", "---\n"} {
		cfg, err := ParseConfig("c.yml", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		def := DefaultConfig()
		def.Path = "c.yml"
		if d := cmp.Diff(def, cfg); d != "" {
			t.Errorf("%q (-want +got):\n%s", src, d)
		}
	}
	cfg, err := ParseConfig("c.yml", []byte("layout: yaml\n"))
	if err != nil || len(cfg.YAMLFiles) != 1 || cfg.YAMLFiles[0] != "eessi_sets.yml" {
		t.Errorf("yaml layout default files: %v %v", cfg, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		src  string
		want []string
	}{
		{"layot: tree\n", []string{"c.yml:1: layot: unknown key (known: layout, sets_dir, yaml_files, role_dir, require_reasons, versions, risky, deploy, tests, targets, tools)"}},
		{"layout: flat\n", []string{`c.yml:1: layout: must be tree, eessi, yaml or eessi-ansible, not "flat"`}},
		{"layout: [tree]\n", []string{"c.yml:1: layout: want a string, got a list"}},
		{"sets_dir: ../other\n", []string{`c.yml:1: sets_dir: want a relative path inside the repository without .. (like sets), not "../other"`}},
		{"sets_dir: /etc\n", []string{`c.yml:1: sets_dir: want a relative path inside the repository without .. (like sets), not "/etc"`}},
		{"versions:\n  2025.06:\n    status: closed\n    arche: []\n", []string{
			`c.yml:3: versions.2025.06.status: must be open or frozen, not "closed"`,
			"c.yml:4: versions.2025.06.arche: unknown key (known: status, arches)",
		}},
		{"versions:\n  2025.06: {arches: [x86_64, linux-x86_64, linux-x86_64]}\n", []string{
			`c.yml:2: versions.2025.06.arches[0]: want <os>-<arch> like linux-x86_64, not "x86_64"`,
			"c.yml:2: versions.2025.06.arches[2]: linux-x86_64 is listed twice",
		}},
		{"versions: [2025.06]\n", []string{"c.yml:1: versions: want a mapping, got a list"}},
		{"risky: glibc\n", []string{`c.yml:1: risky: want a list, got "glibc"`}},
		{"risky: [\"sys-libs/glibc:2.2\"]\n", []string{`c.yml:1: risky[0]: want a package name like glibc or cat/pkg, not "sys-libs/glibc:2.2"`}},
		{"deploy:\n  prod: {permission: root, teams: [eessi]}\n  staging: {}\n  allow_self_prod: yes please\n", []string{
			`c.yml:2: deploy.prod.permission: must be write, maintain or admin, not "root"`,
			`c.yml:2: deploy.prod.teams[0]: want org/team-slug, not "eessi"`,
			"c.yml:3: deploy.staging: unknown key (known: test, prod, rebuild, rollback, allow_self_prod)",
			`c.yml:4: deploy.allow_self_prod: want true or false, got "yes please"`,
		}},
		{"tests:\n  - python3 -c 1\n  - []\n", []string{
			`c.yml:2: tests[0]: want a list, got "python3 -c 1"`,
			`c.yml:2: tests[0]: want a non-empty argv list like ["python3", "-c", "import ssl"]`,
			`c.yml:3: tests[1]: want a non-empty argv list like ["python3", "-c", "import ssl"]`,
		}},
		{"layout: tree\nlayout: eessi\n", []string{"c.yml:2: layout: repeated key (first at line 1)"}},
		{"targets:\n  2026.06/linux-x86_64:\n    package_mask: [\">=dev-lang/python-3.13\", \"dev-lang/python 3.13\", \"!sys-libs/glibc\", \"python\"]\n    package_unmask: \">=dev-lang/python-3.13\"\n    package_use:\n      - dev-lang/python\n      - \"dev-lang/python tk,ssl\"\n      - \"dev-lang/python PYTHON_TARGETS:\"\n    package_keywords: []\n", []string{
			`c.yml:3: targets.2026.06/linux-x86_64.package_mask[1]: want one atom like >=dev-lang/python-3.13, not "dev-lang/python 3.13"`,
			`c.yml:3: targets.2026.06/linux-x86_64.package_mask[2]: "!sys-libs/glibc": a blocker is no package.mask line`,
			`c.yml:3: targets.2026.06/linux-x86_64.package_mask[3]: col 1: missing category (want cat/pkg) in atom "python"`,
			`c.yml:4: targets.2026.06/linux-x86_64.package_unmask: want a list, got ">=dev-lang/python-3.13"`,
			`c.yml:6: targets.2026.06/linux-x86_64.package_use[0]: want an atom and its USE flags like "sys-libs/glibc -multiarch", not "dev-lang/python"`,
			`c.yml:7: targets.2026.06/linux-x86_64.package_use[1]: "tk,ssl" in "dev-lang/python tk,ssl" is no USE flag (like ssl or -ssl) or USE_EXPAND prefix (like PYTHON_TARGETS:)`,
			`c.yml:8: targets.2026.06/linux-x86_64.package_use[2]: "dev-lang/python PYTHON_TARGETS:" sets no USE flag`,
			"c.yml:9: targets.2026.06/linux-x86_64.package_keywords: unknown key (known: package_mask, package_unmask, package_use)",
		}},
		{"targets:\n  2026.06/linux-aarch64: {package_use: [\"a/b x\"]}\n  2026.06/x86_64: {}\n  \"\": {}\n  2027.01/linux-riscv64: {}\n  2026.06/linux-ppc64le: {}\nversions:\n  2026.06: {arches: [linux-x86_64]}\n", []string{
			"c.yml:2: targets.2026.06/linux-aarch64: linux-aarch64 is not among versions.2026.06.arches (linux-x86_64)",
			"c.yml:3: targets.2026.06/x86_64: want <version> or <version>/<os>-<arch> like 2025.06/linux-x86_64",
			"c.yml:4: targets.: want <version> or <version>/<os>-<arch> like 2025.06/linux-x86_64",
			"c.yml:6: targets.2026.06/linux-ppc64le: linux-ppc64le is not among versions.2026.06.arches (linux-x86_64)",
		}},
		{"tools: [bash, ../bin/sh, -rf, bash, \"\"]\n", []string{
			`c.yml:1: tools[1]: want a program name like python3 or g++ (letters, digits, . _ + -), not "../bin/sh"`,
			`c.yml:1: tools[2]: want a program name like python3 or g++ (letters, digits, . _ + -), not "-rf"`,
			"c.yml:1: tools[3]: bash is listed twice (first at line 1)",
			`c.yml:1: tools[4]: want a program name like python3 or g++ (letters, digits, . _ + -), not ""`,
		}},
		{"tools: []\n", []string{"c.yml:1: tools: want at least one tool; leave tools out for the built-in list"}},
		{"tools: bash\n", []string{`c.yml:1: tools: want a list, got "bash"`}},
		{"- a\n", []string{"c.yml:1: want a mapping, got a list"}},
	}
	for _, tc := range tests {
		cfg, err := ParseConfig("c.yml", []byte(tc.src))
		if err == nil {
			t.Errorf("%q: no error, got %+v", tc.src, cfg)
			continue
		}
		var got []string
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var ce *ConfigError
			if !errors.As(e, &ce) {
				t.Errorf("%q: %T is not a *ConfigError", tc.src, e)
			}
			got = append(got, e.Error())
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%q (-want +got):\n%s", tc.src, d)
		}
	}
	// Malformed YAML names the file and the line the YAML parser reports.
	_, err := ParseConfig("c.yml", []byte("versions: {2025.06: [\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "c.yml: yaml: line") {
		t.Errorf("syntax error: %v", err)
	}
}

func TestIsRisky(t *testing.T) {
	cfg := DefaultConfig()
	for cp, want := range map[string]bool{
		"sys-libs/glibc": true, "dev-build/cmake": true, "dev-util/cmake": true, "dev-lang/python": true,
		"dev-python/pip": false, "sys-apps/glibc-utils": false,
	} {
		if cfg.IsRisky(cp) != want {
			t.Errorf("IsRisky(%s) = %v", cp, !want)
		}
	}
	cfg.Risky = []string{"sys-devel/gcc"}
	if !cfg.IsRisky("sys-devel/gcc") || cfg.IsRisky("cross/gcc") {
		t.Error("cat/pkg risky entries must match only that category")
	}
}

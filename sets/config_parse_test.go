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
	}
	if d := cmp.Diff(want, cfg); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
	if cfg.VersionStatus("2025.06") != "frozen" || cfg.VersionStatus("2099.01") != "open" {
		t.Error("VersionStatus")
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
		{"layot: tree\n", []string{"c.yml:1: layot: unknown key (known: layout, sets_dir, yaml_files, role_dir, require_reasons, versions, risky, deploy, tests)"}},
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

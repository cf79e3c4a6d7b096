package sets

import (
	"os"
	"testing"
	"testing/fstest"
)

// FuzzParseConfig: any bytes give a config or an error, never a panic, and
// a config that parses has only valid values.
func FuzzParseConfig(f *testing.F) {
	if data, err := os.ReadFile("testdata/compatbot.yml"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{"", "layout: yaml\n", "versions: {2025.06: {arches: [a-b]}}\n", "a: &x [*x]\n", "deploy: {prod: {teams: [a/b]}}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("c.yml", data)
		if err != nil {
			return
		}
		if cfg.Layout != LayoutTree && cfg.Layout != LayoutEESSI && cfg.Layout != LayoutYAML && cfg.Layout != LayoutEESSIAnsible {
			t.Fatalf("layout %q accepted", cfg.Layout)
		}
		for v, vc := range cfg.Versions {
			if vc.Status != StatusOpen && vc.Status != StatusFrozen {
				t.Fatalf("%s: status %q accepted", v, vc.Status)
			}
		}
	})
}

// FuzzEESSIYAML: any YAML list loads or fails with an error, never panics,
// and lint and diff run on what loads.
func FuzzEESSIYAML(f *testing.F) {
	if data, err := os.ReadFile(gentooData + "/eessi/eessi_sets.yml"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{"eessi_sets: [{name: eessi-1, packages: [{name: a/b, version: '1', include_on: [linux-x]}]}]\n",
		"eessi_version: '1'\nprefix_packages: [a/b, {name: c/d}, [x]]\n", "eessi_sets: [{name: x, packages: [*a]}]\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := LoadRepo(fstest.MapFS{"l.yml": {Data: data}}, &Config{Layout: LayoutYAML, YAMLFiles: []string{"l.yml"}})
		if err != nil {
			return
		}
		_ = Lint(r)
		_ = Diff(r, r)
	})
}

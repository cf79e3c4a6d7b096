package sets

import "strings"

// DefaultConfigPath is where the managed repository keeps compatbot's config.
// It is always read from the base (default) branch, never from a PR: a PR
// must not be able to unfreeze a version, shorten the risky list or grant
// itself deploy rights.
const DefaultConfigPath = ".github/compatbot.yml"

// DefaultRisky lists packages whose in-place update may break the layer.
// Plain names match in any category, so a package that moves category
// (dev-util/cmake became dev-build/cmake) stays covered.
var DefaultRisky = []string{"glibc", "binutils", "gcc", "bison", "flex", "cmake", "python"}

// DefaultYAMLFiles are read by layout "yaml" when yaml_files is not set.
var DefaultYAMLFiles = []string{"eessi_sets.yml"}

// Layouts of the managed repository.
const (
	LayoutTree  = "tree"  // <sets_dir>/<version>/<os>-<arch>
	LayoutEESSI = "eessi" // <sets_dir>/eessi-<version>[-<os>-<arch>]
	LayoutYAML  = "yaml"  // EESSI YAML package lists (yaml_files)
)

// Version statuses.
const (
	StatusOpen   = "open"
	StatusFrozen = "frozen"
)

// Config is the managed repository's .github/compatbot.yml.
type Config struct {
	// Path is the file the config was read from ("" for DefaultConfig).
	Path string
	// Layout is "tree" (sets/<version>/<os>-<arch>), "eessi"
	// (<dir>/eessi-<version>-<os>-<arch>) or "yaml" (EESSI package lists).
	Layout  string
	SetsDir string
	// YAMLFiles are the EESSI YAML files of layout "yaml", relative to the
	// repository root: files with eessi_sets/eessi_archs (eessi_sets.yml)
	// and Ansible vars files with eessi_version/prefix_packages.
	YAMLFiles []string
	Versions  map[string]VersionConfig
	Risky     []string
	Deploy    DeployPolicy
	// Tests are extra commands run in the built Prefix (issue 4), as argv.
	Tests [][]string
}

// VersionConfig is the per-version part of Config.
type VersionConfig struct {
	Status string   // "open" or "frozen"
	Arches []string // "linux-x86_64", ...
	// Line is the config line of the version's key; ArchLines the line of
	// each arch, so lint can point at an arch that has no set file.
	Line      int
	ArchLines []int
}

// DeployPolicy says who may deploy where.
type DeployPolicy struct {
	Test, Prod, Rebuild, Rollback Permission
	// AllowSelfProd lets a PR's author /deploy prod their own PR.
	AllowSelfProd bool
}

// Permission grants a command by GitHub permission level or by name.
type Permission struct {
	Level string // "write", "maintain" or "admin"; "" means the default for the command
	Users []string
	Teams []string // "org/team-slug"
}

// DefaultConfig is what a repository without .github/compatbot.yml gets:
// tree layout under sets/, every version open, the default risky list, test
// deploys for anyone with write access and production for maintainers.
func DefaultConfig() *Config {
	return &Config{
		Layout:   LayoutTree,
		SetsDir:  "sets",
		Versions: map[string]VersionConfig{},
		Risky:    append([]string(nil), DefaultRisky...),
		Deploy: DeployPolicy{
			Test:     Permission{Level: "write"},
			Prod:     Permission{Level: "maintain"},
			Rebuild:  Permission{Level: "write"},
			Rollback: Permission{Level: "maintain"},
		},
	}
}

// VersionStatus is the configured status of version v; "open" when the
// config does not mention it.
func (c *Config) VersionStatus(v string) string {
	if c != nil {
		if vc, ok := c.Versions[v]; ok && vc.Status != "" {
			return vc.Status
		}
	}
	return StatusOpen
}

// IsRisky reports whether cp ("cat/pkg") is on the risky list: an entry
// with a "/" must equal cp, a plain name matches the package in any category.
func (c *Config) IsRisky(cp string) bool {
	risky := DefaultRisky
	if c != nil {
		risky = c.Risky
	}
	name := cp
	if i := strings.LastIndexByte(cp, '/'); i >= 0 {
		name = cp[i+1:]
	}
	for _, r := range risky {
		if r == cp || r == name {
			return true
		}
	}
	return false
}

package sets

import (
	"fmt"
	"strings"
)

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
	// LayoutEESSIAnsible is EESSI's compatibility-layer repository as it
	// is: the Ansible role's defaults/main.yml and vars/<version>.yml.
	LayoutEESSIAnsible = "eessi-ansible"
	// LayoutAuto is what a repository without .github/compatbot.yml gets:
	// LoadRepo (or DetectLayout) picks tree when the sets folder exists,
	// else eessi-ansible when EESSI's role exists, else fails, so a
	// repository compatbot cannot read is never judged "sets OK".
	LayoutAuto = "auto"
)

// RoleDirs are where EESSI's compatibility-layer repository has kept its
// Ansible role over its history (it moved twice in 2020); layout
// eessi-ansible without role_dir looks for the first that exists.
var RoleDirs = []string{
	"ansible/playbooks/roles/compatibility_layer",
	"ansible/playbooks/roles/compatibility-layer",
	"playbooks/roles/compatibility-layer",
	"playbooks/roles/compatibility_layer",
	"roles/compatibility_layer",
	"roles/compatibility-layer",
}

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
	// RoleDir is the Ansible role of layout eessi-ansible; "" finds it in
	// each revision among RoleDirs, so a revision that moved it still reads.
	RoleDir string
	// RequireReasons makes an entry without a reason a lint error; nil
	// means the layout's default (ReasonsRequired).
	RequireReasons *bool
	// Detected is set when no config file named the layout and LoadRepo
	// or DetectLayout found it.
	Detected bool
	Versions map[string]VersionConfig
	Risky    []string
	Deploy   DeployPolicy
	// Tests are extra commands run in the built Prefix (issue 4), as argv.
	Tests [][]string
	// Targets is the Portage configuration of builds ("targets:"), keyed
	// by "<version>" (every arch of the version) or
	// "<version>/<os>-<arch>"; PortageFor merges them for one target.
	Targets map[string]TargetConfig
	// Tools are the programs the compat tests require in every built
	// Prefix ("tools:"); nil means the built-in list (bash, python3, lmod,
	// gcc, g++, ld, make, patch, emerge).
	Tools []string
}

// TargetConfig is the Portage configuration the repo config gives the
// builds of a version or a version/os-arch: lines for the Prefix's
// etc/portage/package.mask, package.unmask and package.use. A line's YAML
// comment, if any, is kept as a comment line above it.
type TargetConfig struct {
	PackageMask, PackageUnmask, PackageUse []string
	// Line is the config line of the key.
	Line int
}

// PortageConfig is what a build of one target gets from the repo config:
// its package.mask, package.unmask and package.use lines.
type PortageConfig struct {
	Mask, Unmask, Use []string
}

// PortageFor merges the targets: entries that apply to t, the version's
// first and then the version/os-arch's (in package.use a later line wins),
// each group under a comment naming where it comes from.
func (c *Config) PortageFor(t Target) PortageConfig {
	var pc PortageConfig
	if c == nil {
		return pc
	}
	file := c.Path
	if file == "" {
		file = DefaultConfigPath
	}
	for _, key := range []string{t.Version, t.Version + "/" + t.OS + "-" + t.Arch} {
		tc, ok := c.Targets[key]
		if !ok {
			continue
		}
		from := fmt.Sprintf("# from %s:%d, targets.%s", file, tc.Line, key)
		add := func(dst *[]string, lines []string) {
			if len(lines) > 0 {
				*dst = append(append(*dst, from), lines...)
			}
		}
		add(&pc.Mask, tc.PackageMask)
		add(&pc.Unmask, tc.PackageUnmask)
		add(&pc.Use, tc.PackageUse)
	}
	return pc
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

// ReasonsRequired says whether lint wants a reason on every entry: the
// config's require_reasons, else true except for layout eessi-ansible,
// whose lists (EESSI's own) carry no reasons.
func (c *Config) ReasonsRequired() bool {
	if c == nil {
		return true
	}
	if c.RequireReasons != nil {
		return *c.RequireReasons
	}
	return c.Layout != LayoutEESSIAnsible
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

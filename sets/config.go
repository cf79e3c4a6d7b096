package sets

// DefaultConfigPath is where the managed repository keeps compatbot's config;
// it is always read from the base (default) branch, never from a PR.
const DefaultConfigPath = ".github/compatbot.yml"

// DefaultRisky lists packages whose in-place update may break the layer.
var DefaultRisky = []string{"sys-libs/glibc", "sys-devel/binutils", "sys-devel/gcc", "sys-devel/bison", "sys-devel/flex", "dev-build/cmake", "dev-lang/python"}

// Config is the managed repository's .github/compatbot.yml.
type Config struct {
	// Layout is "tree" (sets/<version>/<os>-<arch>), "eessi"
	// (<dir>/eessi-<version>-<os>-<arch>) or "yaml" (EESSI package lists).
	Layout   string
	SetsDir  string
	Versions map[string]VersionConfig
	Risky    []string
	Deploy   DeployPolicy
	// Tests are extra commands run in the built Prefix (issue 4).
	Tests [][]string
}

// VersionConfig is the per-version part of Config.
type VersionConfig struct {
	Status string   // "open" or "frozen"
	Arches []string // "linux-x86_64", ...
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

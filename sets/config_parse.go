package sets

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// ConfigError is one problem in the repo config, at the line of the key.
type ConfigError struct {
	File string
	Line int
	Key  string // dotted path, e.g. "versions.2025.06.status"
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
}

// ParseConfig reads .github/compatbot.yml. Keys left out keep DefaultConfig's
// values; an empty file is the default config. Unknown keys, wrong types and
// bad values are errors naming file:line and the key, all of them at once
// (errors.Join of *ConfigError).
func ParseConfig(path string, data []byte) (*Config, error) {
	cfg := DefaultConfig()
	cfg.Path = path
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(doc.Content) == 0 {
		return cfg, nil
	}
	p := &cfgParser{file: path}
	root := deref(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return cfg, nil
	}
	p.mapping(root, "", func(key string, k, v *yaml.Node) {
		switch k.Value {
		case "layout":
			if s, ok := p.str(v, key); ok {
				switch s {
				case LayoutTree, LayoutEESSI, LayoutYAML, LayoutEESSIAnsible:
					cfg.Layout = s
				default:
					p.fail(v, key, "must be tree, eessi, yaml or eessi-ansible, not %q", s)
				}
			}
		case "sets_dir":
			if s, ok := p.relPath(v, key); ok {
				cfg.SetsDir = s
			}
		case "yaml_files":
			cfg.YAMLFiles = nil
			for i, n := range p.seq(v, key) {
				if s, ok := p.relPath(n, fmt.Sprintf("%s[%d]", key, i)); ok {
					cfg.YAMLFiles = append(cfg.YAMLFiles, s)
				}
			}
		case "role_dir":
			if s, ok := p.relPath(v, key); ok {
				cfg.RoleDir = s
			}
		case "require_reasons":
			if b, ok := p.boolean(v, key); ok {
				cfg.RequireReasons = &b
			}
		case "versions":
			p.mapping(v, key, func(vkey string, vk, vv *yaml.Node) {
				cfg.Versions[vk.Value] = p.version(vk, vv, vkey)
			})
		case "risky":
			cfg.Risky = []string{}
			for i, n := range p.seq(v, key) {
				k := fmt.Sprintf("%s[%d]", key, i)
				if s, ok := p.str(n, k); ok {
					if s == "" || strings.ContainsAny(s, " \t*:@[") || strings.Count(s, "/") > 1 {
						p.fail(n, k, "want a package name like glibc or cat/pkg, not %q", s)
						continue
					}
					cfg.Risky = append(cfg.Risky, s)
				}
			}
		case "deploy":
			p.mapping(v, key, func(dkey string, dk, dv *yaml.Node) {
				switch dk.Value {
				case "test":
					p.permission(dv, dkey, &cfg.Deploy.Test)
				case "prod":
					p.permission(dv, dkey, &cfg.Deploy.Prod)
				case "rebuild":
					p.permission(dv, dkey, &cfg.Deploy.Rebuild)
				case "rollback":
					p.permission(dv, dkey, &cfg.Deploy.Rollback)
				case "allow_self_prod":
					if b, ok := p.boolean(dv, dkey); ok {
						cfg.Deploy.AllowSelfProd = b
					}
				default:
					p.unknown(dk, dkey, "test, prod, rebuild, rollback, allow_self_prod")
				}
			})
		case "tests":
			cfg.Tests = nil
			for i, n := range p.seq(v, key) {
				k := fmt.Sprintf("%s[%d]", key, i)
				var argv []string
				for j, a := range p.seq(n, k) {
					if s, ok := p.str(a, fmt.Sprintf("%s[%d]", k, j)); ok {
						argv = append(argv, s)
					}
				}
				if len(argv) == 0 || argv[0] == "" {
					p.fail(n, k, "want a non-empty argv list like [\"python3\", \"-c\", \"import ssl\"]")
					continue
				}
				cfg.Tests = append(cfg.Tests, argv)
			}
		case "targets":
			cfg.Targets = map[string]TargetConfig{}
			p.mapping(v, key, func(tkey string, tk, tv *yaml.Node) {
				cfg.Targets[tk.Value] = p.target(tk, tv, tkey)
			})
		case "tools":
			cfg.Tools = []string{}
			seen := map[string]int{}
			items := p.seq(v, key)
			if len(items) == 0 && (deref(v).Kind == yaml.SequenceNode || deref(v).Tag == "!!null") {
				p.fail(v, key, "want at least one tool; leave tools out for the built-in list")
			}
			for i, n := range items {
				k := fmt.Sprintf("%s[%d]", key, i)
				s, ok := p.str(n, k)
				if !ok {
					continue
				}
				if !toolName.MatchString(s) || strings.Contains(s, "..") {
					p.fail(n, k, "want a program name like python3 or g++ (letters, digits, . _ + -), not %q", s)
					continue
				}
				if first, dup := seen[s]; dup {
					p.fail(n, k, "%s is listed twice (first at line %d)", s, first)
					continue
				}
				seen[s] = n.Line
				cfg.Tools = append(cfg.Tools, s)
			}
		default:
			p.unknown(k, key, "layout, sets_dir, yaml_files, role_dir, require_reasons, versions, risky, deploy, tests, targets, tools")
		}
	})
	// A target key must name a version/os-arch the versions list allows,
	// wherever in the file the two keys are (in file order).
	keys := make([]string, 0, len(cfg.Targets))
	for key := range cfg.Targets {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool { return cfg.Targets[keys[i]].Line < cfg.Targets[keys[j]].Line })
	for _, key := range keys {
		v, osArch, _ := strings.Cut(key, "/")
		vc, ok := cfg.Versions[v]
		if o, a, _ := strings.Cut(osArch, "-"); o == "" || a == "" || !ok || len(vc.Arches) == 0 || slices.Contains(vc.Arches, osArch) {
			continue
		}
		p.errs = append(p.errs, &ConfigError{File: path, Line: cfg.Targets[key].Line, Key: "targets." + key,
			Msg: fmt.Sprintf("%s is not among versions.%s.arches (%s)", osArch, v, strings.Join(vc.Arches, ", "))})
	}
	if cfg.Layout == LayoutYAML && len(cfg.YAMLFiles) == 0 {
		cfg.YAMLFiles = append([]string(nil), DefaultYAMLFiles...)
	}
	if len(p.errs) > 0 {
		// In file order, whichever check found them.
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].(*ConfigError).Line < p.errs[j].(*ConfigError).Line })
		return nil, errors.Join(p.errs...)
	}
	return cfg, nil
}

// toolName is what a tool may be called: it becomes a path in the Prefix
// (usr/bin/<name>), so no "/" and nothing option-like.
var toolName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]*$`)

// useFlag is a USE flag as package.use takes it, optionally "-" to turn
// it off; useExpand a USE_EXPAND prefix such as "PYTHON_TARGETS:".
var (
	useFlag   = regexp.MustCompile(`^-?[A-Za-z0-9][A-Za-z0-9+_@-]*$`)
	useExpand = regexp.MustCompile(`^[A-Z][A-Z0-9_]*:$`)
)

// target reads one entry of targets: its key (<version> or
// <version>/<os>-<arch>) and its package_mask, package_unmask and
// package_use lines, each checked the way Portage reads that file.
func (p *cfgParser) target(k, v *yaml.Node, key string) TargetConfig {
	tc := TargetConfig{Line: k.Line}
	ver, osArch, hasArch := strings.Cut(k.Value, "/")
	if ver == "" || strings.ContainsAny(ver, " \t") {
		p.fail(k, key, "want <version> or <version>/<os>-<arch> like 2025.06/linux-x86_64")
	} else if hasArch {
		if o, a, ok := strings.Cut(osArch, "-"); !ok || o == "" || a == "" || strings.ContainsAny(osArch, "/ \t") {
			p.fail(k, key, "want <version> or <version>/<os>-<arch> like 2025.06/linux-x86_64")
		}
	}
	p.mapping(v, key, func(lkey string, lk, lv *yaml.Node) {
		var dst *[]string
		var check func(string) string
		switch lk.Value {
		case "package_mask":
			dst, check = &tc.PackageMask, maskLine
		case "package_unmask":
			dst, check = &tc.PackageUnmask, maskLine
		case "package_use":
			dst, check = &tc.PackageUse, useLine
		default:
			p.unknown(lk, lkey, "package_mask, package_unmask, package_use")
			return
		}
		*dst = nil
		for i, n := range p.seq(lv, lkey) {
			ik := fmt.Sprintf("%s[%d]", lkey, i)
			s, ok := p.str(n, ik)
			if !ok {
				continue
			}
			s = strings.Join(strings.Fields(s), " ")
			if msg := check(s); msg != "" {
				p.fail(n, ik, "%s", msg)
				continue
			}
			// The YAML comment on or above the line says why: keep it
			// where Portage's own files keep reasons, above the line.
			if c := yamlComment(n); c != "" {
				*dst = append(*dst, "# "+c)
			}
			*dst = append(*dst, s)
		}
	})
	return tc
}

// maskLine checks a package.mask or package.unmask line: one atom with a
// category, no blocker.
func maskLine(s string) string {
	if s == "" || strings.ContainsAny(s, " #") {
		return fmt.Sprintf("want one atom like >=dev-lang/python-3.13, not %q", s)
	}
	a, err := ParseAtom(s)
	if err != nil {
		return err.Error()
	}
	if a.Blocker != NoBlocker {
		return fmt.Sprintf("%q: a blocker is no package.mask line", s)
	}
	return ""
}

// useLine checks a package.use line: an atom, then USE flags ("flag",
// "-flag"), optionally after a USE_EXPAND prefix ("PYTHON_TARGETS:").
func useLine(s string) string {
	fields := strings.Fields(s)
	if len(fields) < 2 || strings.Contains(s, "#") {
		return fmt.Sprintf("want an atom and its USE flags like \"sys-libs/glibc -multiarch\", not %q", s)
	}
	if msg := maskLine(fields[0]); msg != "" {
		return msg
	}
	flags := 0
	for _, f := range fields[1:] {
		switch {
		case useExpand.MatchString(f):
		case useFlag.MatchString(f):
			flags++
		default:
			return fmt.Sprintf("%q in %q is no USE flag (like ssl or -ssl) or USE_EXPAND prefix (like PYTHON_TARGETS:)", f, s)
		}
	}
	if flags == 0 {
		return fmt.Sprintf("%q sets no USE flag", s)
	}
	return ""
}

// yamlComment is the text of the comment on a node's line, else of the
// comment block right above it.
func yamlComment(n *yaml.Node) string {
	c := n.LineComment
	if c == "" {
		c = n.HeadComment
	}
	var parts []string
	for _, l := range strings.Split(c, "\n") {
		if l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#")); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

type cfgParser struct {
	file string
	errs []error
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func (p *cfgParser) fail(n *yaml.Node, key, format string, args ...any) {
	p.errs = append(p.errs, &ConfigError{File: p.file, Line: n.Line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (p *cfgParser) unknown(k *yaml.Node, key, known string) {
	p.fail(k, key, "unknown key (known: %s)", known)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// mapping calls f for each key of n, rejecting non-scalar and repeated keys.
func (p *cfgParser) mapping(n *yaml.Node, key string, f func(key string, k, v *yaml.Node)) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.fail(n, key, "want a mapping, got %s", kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.fail(k, key, "keys must be plain strings")
			continue
		}
		sub := k.Value
		if key != "" {
			sub = key + "." + k.Value
		}
		if first, dup := seen[k.Value]; dup {
			p.fail(k, sub, "repeated key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		f(sub, k, v)
	}
}

func (p *cfgParser) seq(n *yaml.Node, key string) []*yaml.Node {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(n, key, "want a list, got %s", kindName(n))
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = deref(c)
	}
	return out
}

func (p *cfgParser) str(n *yaml.Node, key string) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.fail(n, key, "want a string, got %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

func (p *cfgParser) boolean(n *yaml.Node, key string) (bool, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		p.fail(n, key, "want true or false, got %s", kindName(n))
		return false, false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		p.fail(n, key, "%v", err)
		return false, false
	}
	return b, true
}

// relPath accepts a slash-separated path inside the repository: the config
// must not make compatbot read outside the checkout.
func (p *cfgParser) relPath(n *yaml.Node, key string) (string, bool) {
	s, ok := p.str(n, key)
	if !ok {
		return "", false
	}
	s = strings.TrimSuffix(s, "/")
	if s == "" {
		s = "."
	}
	if !fs.ValidPath(s) {
		p.fail(n, key, "want a relative path inside the repository without .. (like sets), not %q", s)
		return "", false
	}
	return s, true
}

func (p *cfgParser) version(k, v *yaml.Node, key string) VersionConfig {
	vc := VersionConfig{Status: StatusOpen, Line: k.Line}
	if k.Value == "" || strings.ContainsAny(k.Value, "/ \t") {
		p.fail(k, key, "invalid version name")
	}
	p.mapping(v, key, func(skey string, sk, sv *yaml.Node) {
		switch sk.Value {
		case "status":
			if s, ok := p.str(sv, skey); ok {
				if s != StatusOpen && s != StatusFrozen {
					p.fail(sv, skey, "must be open or frozen, not %q", s)
				} else {
					vc.Status = s
				}
			}
		case "arches":
			seen := map[string]bool{}
			for i, n := range p.seq(sv, skey) {
				ak := fmt.Sprintf("%s[%d]", skey, i)
				s, ok := p.str(n, ak)
				if !ok {
					continue
				}
				if os, arch, ok := strings.Cut(s, "-"); !ok || os == "" || arch == "" || strings.ContainsAny(s, "/ \t") {
					p.fail(n, ak, "want <os>-<arch> like linux-x86_64, not %q", s)
					continue
				}
				if seen[s] {
					p.fail(n, ak, "%s is listed twice", s)
					continue
				}
				seen[s] = true
				vc.Arches = append(vc.Arches, s)
				vc.ArchLines = append(vc.ArchLines, n.Line)
			}
		default:
			p.unknown(sk, skey, "status, arches")
		}
	})
	return vc
}

func (p *cfgParser) permission(n *yaml.Node, key string, perm *Permission) {
	p.mapping(n, key, func(pkey string, pk, pv *yaml.Node) {
		switch pk.Value {
		case "permission":
			if s, ok := p.str(pv, pkey); ok {
				switch s {
				case "write", "maintain", "admin":
					perm.Level = s
				default:
					p.fail(pv, pkey, "must be write, maintain or admin, not %q", s)
				}
			}
		case "users", "teams":
			var list []string
			for i, u := range p.seq(pv, pkey) {
				uk := fmt.Sprintf("%s[%d]", pkey, i)
				s, ok := p.str(u, uk)
				if !ok {
					continue
				}
				if pk.Value == "teams" && strings.Count(s, "/") != 1 {
					p.fail(u, uk, "want org/team-slug, not %q", s)
					continue
				}
				if s == "" || strings.ContainsAny(s, " \t") {
					p.fail(u, uk, "invalid name %q", s)
					continue
				}
				list = append(list, s)
			}
			if pk.Value == "users" {
				perm.Users = list
			} else {
				perm.Teams = list
			}
		default:
			p.unknown(pk, pkey, "permission, users, teams")
		}
	})
}

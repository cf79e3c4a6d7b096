package sets

import (
	"errors"
	"fmt"
	"io/fs"
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
		default:
			p.unknown(k, key, "layout, sets_dir, yaml_files, role_dir, require_reasons, versions, risky, deploy, tests")
		}
	})
	if cfg.Layout == LayoutYAML && len(cfg.YAMLFiles) == 0 {
		cfg.YAMLFiles = append([]string(nil), DefaultYAMLFiles...)
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return cfg, nil
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

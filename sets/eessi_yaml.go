package sets

import (
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlSet is one version's package list from an EESSI YAML file.
type yamlSet struct {
	file     string
	version  string
	line     int
	packages []*yaml.Node
	arches   []string // eessi_archs / eessi_host_os-arch of the same file
}

// loadYAML reads the EESSI package lists named by cfg.YAMLFiles:
//   - eessi_sets.yml: eessi_archs: [os-arch...] and
//     eessi_sets: [{name: eessi-<version>, packages: [...]}]
//   - Ansible vars (compat-layer-vars/<version>.yml): eessi_version and
//     prefix_packages: [...]
//
// Each package is {name, version, overlay, include_on, exclude_on, reason};
// it becomes the entry "=name-version::overlay" (or "name" without a version)
// of the set of every arch it applies to, with Line/Col at its name.
//
// The arches of a version are, in order of preference: the config's
// versions.<v>.arches, the file's eessi_archs, the file's literal
// eessi_host_os/eessi_host_arch, the eessi_archs of the other YAML files.
// When none is known the version gets one set for all arches that leaves
// out packages limited by include_on.
func (r *Repo) loadYAML(fsys fs.FS, cfg *Config) error {
	var all []yamlSet
	var anyArches []string
	for _, file := range cfg.YAMLFiles {
		data, ok, err := r.readLimited(fsys, file, r.limits)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		sets, err := parseEESSIYAML(file, data)
		if err != nil {
			return err
		}
		for _, s := range sets {
			for _, a := range s.arches {
				if !slices.Contains(anyArches, a) {
					anyArches = append(anyArches, a)
				}
			}
		}
		all = append(all, sets...)
	}
	sort.Strings(anyArches)
	seen := map[string]string{}
	for _, s := range all {
		if first, dup := seen[s.version]; dup {
			return fmt.Errorf("%s:%d: version %s is already defined in %s", s.file, s.line, s.version, first)
		}
		seen[s.version] = fmt.Sprintf("%s:%d", s.file, s.line)
		arches := cfg.Versions[s.version].Arches
		if len(arches) == 0 {
			arches = s.arches
		}
		if len(arches) == 0 {
			arches = anyArches
		}
		if msg := checkTargetName(s.version, "", ""); msg != "" {
			r.Problems = append(r.Problems, Diagnostic{File: s.file, Line: s.line, Col: 1, Severity: SeverityError, Code: CodeInvalidName, Message: "not read: " + msg})
			continue
		}
		over := len(s.packages) > r.limits.Entries
		if over {
			r.Problems = append(r.Problems, Diagnostic{File: s.file, Line: s.line, Col: 1, Severity: SeverityError, Code: CodeTooManyEntries,
				Message: fmt.Sprintf("version %s: %d packages, more than the limit of %d; not read", s.version, len(s.packages), r.limits.Entries)})
			s.packages = nil
		}
		add := func(a string) {
			sf := yamlSetFile(s, a)
			sf.Unread = over
			r.Sets = append(r.Sets, sf)
		}
		if len(arches) == 0 {
			add("")
		}
		for _, a := range arches {
			osName, arch, _ := strings.Cut(a, "-")
			if msg := checkTargetName(s.version, osName, arch); msg != "" {
				r.Problems = append(r.Problems, Diagnostic{File: s.file, Line: s.line, Col: 1, Severity: SeverityError, Code: CodeInvalidName, Message: "not read for that arch: " + msg})
				continue
			}
			add(a)
		}
	}
	return nil
}

// parseEESSIYAML finds the package lists of one YAML file. Structural
// problems (a list where a mapping belongs) are errors naming file:line;
// problems of single packages are kept on the entries for lint.
func parseEESSIYAML(file string, data []byte) ([]yamlSet, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty file, want eessi_sets or prefix_packages", file)
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: want a mapping with eessi_sets or prefix_packages, got %s", file, root.Line, kindName(root))
	}
	top := map[string]*yaml.Node{}
	topLine := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := deref(root.Content[i])
		top[k.Value] = deref(root.Content[i+1])
		topLine[k.Value] = k.Line
	}
	var arches []string
	if n, ok := top["eessi_archs"]; ok {
		if n.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("%s:%d: eessi_archs: want a list of os-arch, got %s", file, n.Line, kindName(n))
		}
		for _, a := range n.Content {
			a = deref(a)
			if a.Kind != yaml.ScalarNode || !strings.Contains(a.Value, "-") {
				return nil, fmt.Errorf("%s:%d: eessi_archs: want os-arch like linux-x86_64, got %s", file, a.Line, kindName(a))
			}
			arches = append(arches, a.Value)
		}
	} else if o, a := literal(top["eessi_host_os"]), literal(top["eessi_host_arch"]); o != "" && a != "" {
		arches = []string{o + "-" + a}
	}
	var out []yamlSet
	if n, ok := top["eessi_sets"]; ok {
		if n.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("%s:%d: eessi_sets: want a list of {name, packages}, got %s", file, n.Line, kindName(n))
		}
		for i, s := range n.Content {
			s = deref(s)
			if s.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("%s:%d: eessi_sets[%d]: want {name, packages}, got %s", file, s.Line, i, kindName(s))
			}
			ys := yamlSet{file: file, line: s.Line, arches: arches}
			for j := 0; j+1 < len(s.Content); j += 2 {
				k, v := deref(s.Content[j]), deref(s.Content[j+1])
				switch k.Value {
				case "name":
					if v.Kind != yaml.ScalarNode || v.Value == "" {
						return nil, fmt.Errorf("%s:%d: eessi_sets[%d].name: want eessi-<version>, got %s", file, v.Line, i, kindName(v))
					}
					ys.version = strings.TrimPrefix(v.Value, "eessi-")
				case "packages":
					pkgs, err := packageList(file, v, fmt.Sprintf("eessi_sets[%d].packages", i))
					if err != nil {
						return nil, err
					}
					ys.packages = pkgs
				default:
					return nil, fmt.Errorf("%s:%d: eessi_sets[%d].%s: unknown key (known: name, packages)", file, k.Line, i, k.Value)
				}
			}
			if ys.version == "" {
				return nil, fmt.Errorf("%s:%d: eessi_sets[%d]: no name", file, s.Line, i)
			}
			out = append(out, ys)
		}
	}
	if n, ok := top["prefix_packages"]; ok {
		v := literal(top["eessi_version"])
		if v == "" {
			return nil, fmt.Errorf("%s:%d: prefix_packages needs a literal eessi_version in the same file", file, topLine["prefix_packages"])
		}
		pkgs, err := packageList(file, n, "prefix_packages")
		if err != nil {
			return nil, err
		}
		out = append(out, yamlSet{file: file, version: v, line: topLine["prefix_packages"], packages: pkgs, arches: arches})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no eessi_sets or prefix_packages", file)
	}
	return out, nil
}

// literal is a scalar's value, "" for anything else or a Jinja template.
func literal(n *yaml.Node) string {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" || strings.Contains(n.Value, "{{") {
		return ""
	}
	return n.Value
}

func packageList(file string, n *yaml.Node, key string) ([]*yaml.Node, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s:%d: %s: want a list of packages, got %s", file, n.Line, key, kindName(n))
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, p := range n.Content {
		out[i] = deref(p)
	}
	return out, nil
}

func yamlSetFile(s yamlSet, osArch string) *SetFile {
	osName, arch, _ := strings.Cut(osArch, "-")
	name := "eessi-" + s.version
	if osArch != "" {
		name += "-" + osArch
	}
	sf := &SetFile{Path: s.file, Name: name, Version: s.version, OS: osName, Arch: arch}
	for _, p := range s.packages {
		if e, ok := yamlEntry(p, osArch); ok {
			sf.Entries = append(sf.Entries, e)
		}
	}
	return sf
}

func commentText(cs ...string) string {
	var parts []string
	for _, c := range cs {
		for _, l := range strings.Split(c, "\n") {
			if l = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(l), "#")); l != "" {
				parts = append(parts, l)
			}
		}
	}
	return strings.Join(parts, " ")
}

// yamlEntry converts one package of an EESSI list; ok is false when its
// include_on/exclude_on leave it out of osArch ("" = the all-arches set).
func yamlEntry(p *yaml.Node, osArch string) (Entry, bool) {
	e := Entry{Line: p.Line, Col: p.Column}
	fail := func(n *yaml.Node, format string, args ...any) {
		if e.Err == nil {
			e.Line, e.Col = n.Line, n.Column
			e.Err = fmt.Errorf(format, args...)
		}
	}
	if p.Kind != yaml.MappingNode {
		if p.Kind == yaml.ScalarNode {
			// A bare "- cat/pkg" is read as a package name.
			e.Token = p.Value
			e.Reason = commentText(p.HeadComment, p.LineComment)
			a, err := ParseAtom(p.Value)
			e.Atom, e.Err = &a, err
			if err != nil {
				e.Atom = nil
			}
			return e, true
		}
		fail(p, "want a package {name, version, overlay, include_on, exclude_on, reason}, got %s", kindName(p))
		return e, true
	}
	var name, version, overlay *yaml.Node
	var include, exclude []string
	e.Reason = commentText(p.HeadComment, p.LineComment)
	archList := func(k, v *yaml.Node) []string {
		var out []string
		if v.Kind != yaml.SequenceNode {
			fail(v, "%s: want a list of os-arch, got %s", k.Value, kindName(v))
			return nil
		}
		for _, a := range v.Content {
			a = deref(a)
			if a.Kind != yaml.ScalarNode {
				fail(a, "%s: want os-arch, got %s", k.Value, kindName(a))
				continue
			}
			out = append(out, a.Value)
		}
		return out
	}
	for i := 0; i+1 < len(p.Content); i += 2 {
		k, v := deref(p.Content[i]), deref(p.Content[i+1])
		if c := commentText(k.HeadComment, k.LineComment, v.LineComment); c != "" && e.Reason == "" {
			e.Reason = c
		}
		scalar := func() *yaml.Node {
			if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
				fail(v, "%s: want a string, got %s", k.Value, kindName(v))
				return nil
			}
			return v
		}
		switch k.Value {
		case "name":
			name = scalar()
		case "version":
			version = scalar()
		case "overlay":
			overlay = scalar()
		case "reason":
			if r := scalar(); r != nil {
				e.Reason = strings.TrimSpace(r.Value)
			}
		case "include_on":
			include = archList(k, v)
			e.ArchScoped = true
		case "exclude_on":
			exclude = archList(k, v)
			e.ArchScoped = true
		default:
			fail(k, "unknown key %q (known: name, version, overlay, include_on, exclude_on, reason)", k.Value)
		}
	}
	if osArch == "" {
		if include != nil {
			return e, false
		}
	} else if (include != nil && !slices.Contains(include, osArch)) || slices.Contains(exclude, osArch) {
		return e, false
	}
	if name == nil {
		fail(p, "package has no name")
		return e, true
	}
	if e.Err == nil {
		e.Line, e.Col = name.Line, name.Column
	}
	e.Token = name.Value
	if _, err := ParseAtom(name.Value); err != nil {
		// The name alone must be cat/pkg; column offsets stay valid.
		if e.Err == nil {
			e.Err = err
		}
		return e, true
	}
	if version != nil {
		if _, err := ParseVersion(version.Value); err != nil {
			fail(version, "version %q: %v", version.Value, err)
		}
		e.Token = "=" + name.Value + "-" + version.Value
	}
	if overlay != nil {
		if validName(overlay.Value, true) != "" {
			fail(overlay, "invalid overlay name %q", overlay.Value)
		}
		e.Token += "::" + overlay.Value
	}
	if e.Err == nil {
		a, err := ParseAtom(e.Token)
		if err != nil {
			e.Err = fmt.Errorf("%s: %v", e.Token, err)
		} else {
			e.Atom = &a
		}
	}
	return e, true
}

package sets

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
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
		if errors.Is(err, fs.ErrNotExist) {
			// A base from before a new version's file: its lists are all
			// additions in the diff, not a reason to stop the check. Lint
			// of this revision still says the file is missing.
			cfgPath := cfg.Path
			if cfgPath == "" {
				cfgPath = DefaultConfigPath
			}
			r.diag(cfgPath, 1, 1, SeverityError, CodeMissingSet, fmt.Sprintf("yaml_files: %s does not exist", file))
			continue
		}
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

// EESSI's Ansible role (layout eessi-ansible).
//
// EESSI's compatibility-layer repository keeps its lists in the Ansible
// role compatibility_layer: defaults/main.yml, and since 2026 one
// vars/<version>.yml per version. Ansible loads vars/{{ eessi_version }}.yml
// over the defaults, so a key of a vars file replaces the default for that
// version as a whole (package_sets: [] empties the default list). The
// reader does that merge itself and turns each version and os-arch into one
// SetFile: prefix_packages become Entries, package_sets PackageSets, the
// |-strings prefix_mask_packages/prefix_unmask_packages Masks/Unmasks,
// prefix_remove_packages Removals, and the commits the build is pinned to
// Pins. Problems are diagnostics (r.Diags) at file:line:col, never a load
// error: a broken file must fail lint and the check, not stop them.

// Read-time diagnostic codes of layout eessi-ansible.
const (
	CodeInvalidYAML  = "invalid-yaml"  // the YAML parser's error
	CodeInvalidValue = "invalid-value" // a key of the role with a value of the wrong shape
	CodeTemplate     = "template"      // warning: a Jinja template compatbot cannot expand
)

// roleFile is one parsed YAML file of the role.
type roleFile struct {
	path  string
	lines []string // raw lines: columns of entries inside |-strings
	keys  map[string]roleValue
}

// roleValue is a top-level variable and the file it comes from.
type roleValue struct {
	key, val *yaml.Node
	file     *roleFile
}

// findRole is the first of RoleDirs that holds a defaults/main.yml or a
// vars folder, "" when none does.
func findRole(fsys fs.FS) string {
	for _, d := range RoleDirs {
		if st, err := fs.Stat(fsys, path.Join(d, "defaults", "main.yml")); err == nil && !st.IsDir() {
			return d
		}
		if st, err := fs.Stat(fsys, path.Join(d, "vars")); err == nil && st.IsDir() {
			return d
		}
	}
	return ""
}

var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseRoleFile parses one file of the role; nil (with a diagnostic) when
// the YAML does not parse or is not a mapping of variables.
func (r *Repo) parseRoleFile(file string, data []byte) *roleFile {
	rf := &roleFile{path: file, lines: strings.Split(string(data), "\n"), keys: map[string]roleValue{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml.v3 names the line but no column: point at the line's
		// first character, which is where an editor should jump anyway.
		line, msg := 1, err.Error()
		if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		} else {
			msg = strings.TrimPrefix(msg, "yaml: ")
		}
		r.diag(file, line, rf.firstCol(line), SeverityError, CodeInvalidYAML, "invalid YAML: "+msg)
		return nil
	}
	if len(doc.Content) == 0 {
		return rf
	}
	root := deref(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return rf
	}
	if root.Kind != yaml.MappingNode {
		r.diag(file, root.Line, root.Column, SeverityError, CodeInvalidValue, "want a mapping of Ansible variables, got "+kindName(root))
		return nil
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := deref(root.Content[i]), deref(root.Content[i+1])
		// Ansible keeps the last of repeated keys; so does the merge.
		rf.keys[k.Value] = roleValue{key: k, val: v, file: rf}
	}
	return rf
}

// firstCol is the column of the first non-blank character of line.
func (rf *roleFile) firstCol(line int) int {
	if line < 1 || line > len(rf.lines) {
		return 1
	}
	l := rf.lines[line-1]
	return len(l) - len(strings.TrimLeft(l, " \t")) + 1
}

func (r *Repo) diag(file string, line, col int, sev Severity, code, msg string) {
	r.Diags = append(r.Diags, Diagnostic{File: file, Line: max(line, 1), Col: max(col, 1), Severity: sev, Code: code, Message: msg})
}

// loadRole reads the role of layout eessi-ansible. A revision without the
// role is an empty repository (a diff against the commit before it works).
func (r *Repo) loadRole(fsys fs.FS, cfg *Config) error {
	dir := cfg.RoleDir
	if dir == "" {
		if dir = findRole(fsys); dir == "" {
			return nil
		}
	}
	read := func(p string) (*roleFile, bool, error) {
		data, err := fs.ReadFile(fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", p, err)
		}
		return r.parseRoleFile(p, data), true, nil
	}
	defaults, ok, err := read(path.Join(dir, "defaults", "main.yml"))
	if err != nil {
		return err
	}
	if ok && defaults == nil {
		r.Unreadable[""] = true
		return nil
	}
	// vars/main.yml is loaded by Ansible for every version, over the
	// defaults; vars/<version>.yml only by include_vars of that version.
	varsMain, ok, err := read(path.Join(dir, "vars", "main.yml"))
	if err != nil {
		return err
	}
	if ok && varsMain == nil {
		r.Unreadable[""] = true
		return nil
	}
	base := []*roleFile{}
	for _, f := range []*roleFile{defaults, varsMain} {
		if f != nil {
			base = append(base, f)
		}
	}
	ents, _, err := readDir(fsys, path.Join(dir, "vars"))
	if err != nil {
		return err
	}
	versionFiles := map[string]*roleFile{}
	var versions []string
	for _, ent := range ents {
		name := ent.Name()
		v := strings.TrimSuffix(strings.TrimSuffix(name, ".yml"), ".yaml")
		if ent.IsDir() || v == name || v == "main" || v == "" {
			continue
		}
		p := path.Join(dir, "vars", name)
		rf, _, err := read(p)
		if err != nil {
			return err
		}
		if rf == nil {
			r.Unreadable[v] = true
			continue
		}
		if ev, ok := rf.keys["eessi_version"]; ok {
			if lv := literal(ev.val); lv != v {
				r.diag(p, ev.val.Line, ev.val.Column, SeverityError, CodeInvalidValue,
					fmt.Sprintf("eessi_version: %s is loaded for version %s (by its name), but says %s", p, v, kindName(ev.val)))
			}
		}
		versionFiles[v] = rf
		versions = append(versions, v)
	}
	// The default version: what the playbook builds without -e eessi_version.
	if len(base) > 0 {
		merged := mergeRole(base...)
		v := literal(merged["eessi_version"].val)
		if v == "" {
			// 2020's role named it eessi_overlay_version, and before
			// that nothing: such a revision has one version, "default".
			if v = literal(merged["eessi_overlay_version"].val); v == "" {
				v = "default"
			}
		}
		// Its own vars file did not parse: the defaults alone are not
		// what Ansible would build, so the version has no target.
		if _, ok := versionFiles[v]; !ok && !slices.Contains(versions, v) && !r.Unreadable[v] {
			versions = append(versions, v)
		}
	}
	for _, v := range versions {
		files := base
		if vf := versionFiles[v]; vf != nil {
			files = append(append([]*roleFile{}, base...), vf)
		}
		r.addRoleVersion(cfg, v, files)
	}
	return nil
}

// mergeRole is Ansible's precedence for the files (later wins, key by key).
func mergeRole(files ...*roleFile) map[string]roleValue {
	m := map[string]roleValue{}
	for _, f := range files {
		for k, v := range f.keys {
			m[k] = v
		}
	}
	return m
}

// roleArches are the os-arches a version's lists name: the literal host
// (eessi_host_os-eessi_host_arch) and every include_on/exclude_on.
func roleArches(m map[string]roleValue) []string {
	set := map[string]bool{}
	if o, a := literal(m["eessi_host_os"].val), literal(m["eessi_host_arch"].val); o != "" && a != "" {
		set[o+"-"+a] = true
	}
	if pk := m["prefix_packages"].val; pk != nil && pk.Kind == yaml.SequenceNode {
		for _, p := range pk.Content {
			p = deref(p)
			if p.Kind != yaml.MappingNode {
				continue
			}
			for i := 0; i+1 < len(p.Content); i += 2 {
				k, v := deref(p.Content[i]), deref(p.Content[i+1])
				if (k.Value == "include_on" || k.Value == "exclude_on") && v.Kind == yaml.SequenceNode {
					for _, a := range v.Content {
						if a = deref(a); a.Kind == yaml.ScalarNode && validOSArch(a.Value) {
							set[a.Value] = true
						}
					}
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

func validOSArch(s string) bool {
	o, a, ok := strings.Cut(s, "-")
	return ok && o != "" && a != "" && !strings.ContainsAny(s, "/ \t{}")
}

// addRoleVersion makes the targets of version v from its merged files.
func (r *Repo) addRoleVersion(cfg *Config, v string, files []*roleFile) {
	m := mergeRole(files...)
	last := files[len(files)-1]
	arches := cfg.Versions[v].Arches
	configured := len(arches) > 0
	if !configured {
		arches = roleArches(m)
	}
	if len(arches) == 0 {
		arches = []string{""}
	}
	pkgs := m["prefix_packages"]
	var pkgNodes []*yaml.Node
	if pkgs.val != nil {
		if pkgs.val.Kind == yaml.SequenceNode || (pkgs.val.Kind == yaml.ScalarNode && pkgs.val.Tag == "!!null") {
			pkgNodes, _ = packageList(pkgs.file.path, pkgs.val, "prefix_packages")
		} else {
			r.diag(pkgs.file.path, pkgs.val.Line, pkgs.val.Column, SeverityError, CodeInvalidValue, "prefix_packages: want a list of {name, version, overlay, include_on, exclude_on}, got "+kindName(pkgs.val))
		}
	}
	if configured {
		r.checkDropped(v, arches, pkgs, pkgNodes)
	}
	for _, osArch := range arches {
		osName, arch, _ := strings.Cut(osArch, "-")
		name := "eessi-" + v
		if osArch != "" {
			name += "-" + osArch
		}
		sf := &SetFile{Path: last.path, Name: name, Version: v, OS: osName, Arch: arch}
		for _, p := range pkgNodes {
			if e, ok := yamlEntry(p, osArch); ok {
				e.File = pkgs.file.path
				sf.Entries = append(sf.Entries, e)
			}
		}
		vars := templateVars(m, v, osName, arch)
		sf.PackageSets = r.roleSetNames(m, vars)
		sf.Masks = r.roleAtomLines(m["prefix_mask_packages"], "prefix_mask_packages")
		sf.Unmasks = r.roleAtomLines(m["prefix_unmask_packages"], "prefix_unmask_packages")
		sf.Removals = r.roleAtomLines(m["prefix_remove_packages"], "prefix_remove_packages")
		sf.Pins = rolePins(m, vars)
		r.Sets = append(r.Sets, sf)
	}
}

// checkDropped warns about a package whose include_on names none of the
// configured arches of its version: it is in no target, and must not
// vanish without a word.
func (r *Repo) checkDropped(v string, arches []string, pkgs roleValue, nodes []*yaml.Node) {
	for _, p := range nodes {
		in := false
		scoped := false
		for _, a := range arches {
			if _, ok := yamlEntry(p, a); ok {
				in = true
			}
		}
		if p.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(p.Content); i += 2 {
				scoped = scoped || deref(p.Content[i]).Value == "include_on"
			}
		}
		if !in && scoped {
			r.diag(pkgs.file.path, p.Line, p.Column, SeverityWarning, CodeNotConfigured,
				fmt.Sprintf("include_on names no arch of version %s in the config (%s): this package is in no target", v, strings.Join(arches, ", ")))
		}
	}
}

// templateVars are the values Jinja templates of version v and os-arch
// may use: the target's own and every literal scalar of the merged role.
func templateVars(m map[string]roleValue, v, osName, arch string) map[string]string {
	vars := map[string]string{}
	for k, rv := range m {
		if n := rv.val; n != nil && n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
			vars[k] = n.Value
		}
	}
	vars["eessi_version"] = v
	delete(vars, "eessi_host_os")
	delete(vars, "eessi_host_arch")
	if osName != "" {
		vars["eessi_host_os"], vars["eessi_host_arch"] = osName, arch
	}
	return vars
}

var jinjaExpr = regexp.MustCompile(`\{\{-?\s*([^{}]*?)\s*-?\}\}`)

// ExpandJinja replaces "{{ name }}" (whitespace inside the braces does not
// matter) by vars[name], expanding the values in turn. ok is false when an
// expression is not a plain known variable (a filter, an unknown name, a
// loop): those are left as they are.
func ExpandJinja(s string, vars map[string]string) (string, bool) {
	ok := true
	for depth := 0; depth < 8 && strings.Contains(s, "{{"); depth++ {
		changed := false
		s = jinjaExpr.ReplaceAllStringFunc(s, func(expr string) string {
			name := jinjaExpr.FindStringSubmatch(expr)[1]
			if val, known := vars[name]; known {
				changed = true
				return val
			}
			return expr
		})
		if !changed {
			break
		}
	}
	if strings.Contains(s, "{{") || strings.Contains(s, "{%") {
		ok = false
	}
	return s, ok
}

// roleSetNames reads package_sets (or 2020's pkg_set): the names of Portage
// sets, installed as "@name". A leading "@" is dropped (2020 wrote '@2020').
func (r *Repo) roleSetNames(m map[string]roleValue, vars map[string]string) []Entry {
	rv, ok := m["package_sets"]
	var items []*yaml.Node
	switch {
	case ok && rv.val.Kind == yaml.SequenceNode:
		items = rv.val.Content
	case ok && rv.val.Kind == yaml.ScalarNode && rv.val.Tag == "!!null":
	case ok:
		r.diag(rv.file.path, rv.val.Line, rv.val.Column, SeverityError, CodeInvalidValue, "package_sets: want a list of set names, got "+kindName(rv.val))
		return nil
	default:
		if rv, ok = m["pkg_set"]; !ok || rv.val.Kind != yaml.ScalarNode || rv.val.Tag == "!!null" {
			return nil
		}
		items = []*yaml.Node{rv.val}
	}
	var out []Entry
	for _, n := range items {
		n = deref(n)
		e := Entry{Line: n.Line, Col: n.Column, File: rv.file.path, Reason: commentText(n.HeadComment, n.LineComment)}
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			e.Token = kindName(n)
			e.Err = fmt.Errorf("package_sets: want a set name, got %s", kindName(n))
			out = append(out, e)
			continue
		}
		name, ok := ExpandJinja(n.Value, vars)
		if !ok {
			r.diag(rv.file.path, n.Line, n.Column, SeverityWarning, CodeTemplate, fmt.Sprintf("package_sets: cannot expand %q for this target; it is compared as written", n.Value))
		}
		name = strings.TrimPrefix(strings.TrimSpace(name), "@")
		e.Token, e.SetRef = "@"+name, name
		out = append(out, e)
	}
	return out
}

// roleAtomLines reads a list of atoms: a |-string with one atom per line
// and # comments (prefix_mask_packages, prefix_unmask_packages; Portage's
// package.mask syntax, which is a set file's), or a YAML list of atoms
// (prefix_remove_packages). Line and Col point into the YAML file.
func (r *Repo) roleAtomLines(rv roleValue, key string) []Entry {
	n := rv.val
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil
	}
	file := rv.file.path
	var out []Entry
	switch n.Kind {
	case yaml.ScalarNode:
		sf := ParseSetFile(file, []byte(n.Value))
		for _, e := range sf.Entries {
			line := n.Line
			if n.Style&yaml.LiteralStyle != 0 {
				// Content starts on the line after the "|".
				line = n.Line + e.Line
			} else if e.Line > 1 {
				line = n.Line + e.Line - 1
			}
			e.Line, e.File = line, file
			e.Col = n.Column
			if line >= 1 && line <= len(rv.file.lines) {
				if i := strings.Index(rv.file.lines[line-1], e.Token); i >= 0 {
					e.Col = i + 1
				}
			}
			out = append(out, e)
		}
	case yaml.SequenceNode:
		for _, it := range n.Content {
			it = deref(it)
			e := Entry{Line: it.Line, Col: it.Column, File: file, Reason: commentText(it.HeadComment, it.LineComment)}
			if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
				e.Token = kindName(it)
				e.Err = fmt.Errorf("%s: want an atom like cat/pkg, got %s", key, kindName(it))
			} else {
				e.Token = it.Value
				if a, err := ParseAtom(it.Value); err != nil {
					e.Err = err
				} else {
					e.Atom = &a
				}
			}
			out = append(out, e)
		}
	default:
		r.diag(file, n.Line, n.Column, SeverityError, CodeInvalidValue, key+": want a |-string with one atom per line or a list of atoms, got "+kindName(n))
	}
	return out
}

// ansibleBool writes a YAML 1.1 boolean (yes, no, on, off, any case), which
// Ansible's parser reads as a bool and yaml.v3 as a string, as true or
// false: EESSI's "auto-sync: no" -> "false" is no change to Ansible.
func ansibleBool(s string) string {
	switch strings.ToLower(s) {
	case "yes", "y", "on", "true":
		return "true"
	case "no", "n", "off", "false":
		return "false"
	}
	return s
}

// rolePinKeys are the scalar variables that pin what a build starts from.
var rolePinKeys = []string{"gentoo_git_commit", "prefix_gentoo_commit", "prefix_snapshot_version", "prefix_snapshot"}

// rolePins reads the pins: the Gentoo commit or snapshot, and each custom
// overlay (custom_overlays as a list of {name, ...} or, in 2020, a mapping
// name: {...}; before that custom_overlay_name/url) as "overlay NAME" with
// its url, branch, commit and other settings.
func rolePins(m map[string]roleValue, vars map[string]string) []Pin {
	var out []Pin
	scalar := func(n *yaml.Node) string {
		if n = deref(n); n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			return ""
		}
		s, _ := ExpandJinja(n.Value, vars)
		return s
	}
	for _, k := range rolePinKeys {
		if rv, ok := m[k]; ok {
			if s := scalar(rv.val); s != "" {
				out = append(out, Pin{Name: k, Value: s, File: rv.file.path, Line: rv.val.Line})
			}
		}
	}
	overlay := func(name string, n *yaml.Node, file string) {
		fields := map[string]string{}
		var keys []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := deref(n.Content[i]).Value
			if k == "name" {
				continue
			}
			fields[k] = ansibleBool(scalar(n.Content[i+1]))
			if k != "url" && k != "branch" && k != "commit" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		parts := []string{fields["url"]}
		for _, k := range append([]string{"branch", "commit"}, keys...) {
			if v, ok := fields[k]; ok {
				parts = append(parts, k+"="+v)
			}
		}
		out = append(out, Pin{Name: "overlay " + name, Value: strings.TrimSpace(strings.Join(parts, " ")), File: file, Line: n.Line})
	}
	if rv, ok := m["custom_overlays"]; ok {
		switch n := rv.val; n.Kind {
		case yaml.SequenceNode:
			for _, it := range n.Content {
				if it = deref(it); it.Kind == yaml.MappingNode {
					name := ""
					for i := 0; i+1 < len(it.Content); i += 2 {
						if deref(it.Content[i]).Value == "name" {
							name = scalar(it.Content[i+1])
						}
					}
					overlay(name, it, rv.file.path)
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if v := deref(n.Content[i+1]); v.Kind == yaml.MappingNode {
					overlay(deref(n.Content[i]).Value, v, rv.file.path)
				}
			}
		}
	} else if rv, ok := m["custom_overlay_url"]; ok {
		name := scalar(m["custom_overlay_name"].val)
		out = append(out, Pin{Name: "overlay " + name, Value: scalar(rv.val), File: rv.file.path, Line: rv.val.Line})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

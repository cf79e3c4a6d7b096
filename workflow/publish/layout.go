package publish

import (
	"fmt"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/compatbot/compatbot/sets"
)

// DefaultLayout is where EESSI publishes a target's compat layer in its
// repository (software.eessi.io/versions/2025.06/compat/linux/x86_64), as
// a template of the target's {{.Version}}, {{.OS}} and {{.Arch}}. With the
// repository mounted at /cvmfs/<repository>, it is the default EPREFIX's
// path (portage.DefaultEPrefix) below the repository, so what a build
// records as its EPREFIX is where the deploy puts it.
const DefaultLayout = "versions/{{.Version}}/compat/{{.OS}}/{{.Arch}}"

// PreTemplateLayout is where compatbot published a target before the
// layout became a template (<version>/compat/<os>/<arch>, below EESSI's
// versions/). Repositories published then keep working with this as the
// target's layout.
const PreTemplateLayout = "{{.Version}}/compat/{{.OS}}/{{.Arch}}"

// layoutFields are what a layout must use: without any of them two targets
// would share one tree.
var layoutFields = []string{"Version", "OS", "Arch"}

// Layout is where a target's tree lives in a repository, relative to its
// root: a Go text/template of the target's {{.Version}}, {{.OS}} and
// {{.Arch}}, like the EPREFIX template of builds. The zero Layout is
// DefaultLayout.
type Layout struct {
	src  string
	tmpl *template.Template
}

// ParseLayout checks a layout template: it must parse, use every one of
// {{.Version}}, {{.OS}} and {{.Arch}} (another field is an error), and
// give a relative path without "..", "." or empty elements. "" is
// DefaultLayout.
func ParseLayout(src string) (Layout, error) {
	if src == "" {
		src = DefaultLayout
	}
	tp, err := template.New("layout").Option("missingkey=error").Parse(src)
	if err != nil {
		return Layout{}, fmt.Errorf("layout %q: %v", src, err)
	}
	used := map[string]bool{}
	for _, t := range tp.Templates() {
		if t.Tree != nil {
			fieldsUsed(t.Tree.Root, used)
		}
	}
	var missing []string
	for _, f := range layoutFields {
		if !used[f] {
			missing = append(missing, "{{."+f+"}}")
		}
	}
	if len(missing) > 0 {
		return Layout{}, fmt.Errorf("layout %q: must use %s, or two targets would share one tree", src, strings.Join(missing, " and "))
	}
	l := Layout{src: src, tmpl: tp}
	// A sample target shows an unknown field and what the elements
	// around the fields make of the path ("../{{.Version}}", "/x/...").
	if _, err := l.Path(sets.Target{Version: "2025.06", OS: "linux", Arch: "x86_64"}); err != nil {
		return Layout{}, err
	}
	return l, nil
}

// MustParseLayout is ParseLayout for constants; it panics on an error.
func MustParseLayout(src string) Layout {
	l, err := ParseLayout(src)
	if err != nil {
		panic(err)
	}
	return l
}

// String is the template.
func (l Layout) String() string {
	if l.src == "" {
		return DefaultLayout
	}
	return l.src
}

// Path is where target t lives, e.g. "versions/2025.06/compat/linux/x86_64".
// Each of t's fields must pass ValidTargetName (they come from set file
// names in a PR); the result is a clean relative path (CleanPath).
func (l Layout) Path(t sets.Target) (string, error) {
	for _, f := range []struct{ name, v string }{{"version", t.Version}, {"os", t.OS}, {"arch", t.Arch}} {
		if err := ValidTargetName(f.v); err != nil {
			return "", fmt.Errorf("target %q: %s %v", t.String(), f.name, err)
		}
	}
	tp := l.tmpl
	if tp == nil {
		tp = defaultTemplate
	}
	var b strings.Builder
	if err := tp.Execute(&b, t); err != nil {
		return "", fmt.Errorf("layout %q: %v", l.String(), err)
	}
	p := b.String()
	bad := func(why string) error {
		return fmt.Errorf("layout %q gives %q for %s: %s", l.String(), p, t, why)
	}
	if p == "" || strings.HasPrefix(p, "/") {
		return "", bad("must be a path relative to the repository root")
	}
	for _, el := range strings.Split(p, "/") {
		switch el {
		case "":
			return "", bad("has an empty element")
		case ".", "..":
			return "", bad(fmt.Sprintf("must not contain %q", el))
		}
	}
	if clean, err := CleanPath(p); err != nil || clean != p {
		return "", bad(fmt.Sprintf("not a clean path (%v)", err))
	}
	return p, nil
}

// defaultTemplate is the zero Layout's template (DefaultLayout, checked
// by TestLayoutPath).
var defaultTemplate = template.Must(template.New("layout").Option("missingkey=error").Parse(DefaultLayout))

// fieldsUsed adds the names of the dot fields ({{.Version}}) under n.
func fieldsUsed(n parse.Node, used map[string]bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			fieldsUsed(c, used)
		}
	case *parse.ActionNode:
		fieldsUsed(n.Pipe, used)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			fieldsUsed(c, used)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			fieldsUsed(a, used)
		}
	case *parse.FieldNode:
		if len(n.Ident) > 0 {
			used[n.Ident[0]] = true
		}
	case *parse.IfNode:
		fieldsUsed(&n.BranchNode, used)
	case *parse.RangeNode:
		fieldsUsed(&n.BranchNode, used)
	case *parse.WithNode:
		fieldsUsed(&n.BranchNode, used)
	case *parse.BranchNode:
		fieldsUsed(n.Pipe, used)
		fieldsUsed(n.List, used)
		fieldsUsed(n.ElseList, used)
	case *parse.TemplateNode:
		fieldsUsed(n.Pipe, used)
	}
}

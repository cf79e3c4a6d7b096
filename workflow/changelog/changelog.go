// Package changelog records every publish and rollback: as Markdown in
// changelog/<version>.md of the managed repository (git keeps it even when
// a rollback removes newer tags from the published repository) and as rows
// in the database for `compatbot history`.
package changelog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Actions.
const (
	Publish  = "publish"
	Rollback = "rollback"
)

// Change is one package's change in one os-arch.
type Change struct {
	Kind    string `json:"kind"` // added, removed, upgraded, downgraded, constraint-changed
	Package string `json:"package"`
	Old     string `json:"old,omitempty"`
	New     string `json:"new,omitempty"`
}

// Entry is one publish or rollback of one version to one target.
type Entry struct {
	Date     time.Time
	Version  string // e.g. "2025.06"; names the changelog file
	Target   string // "test" or "prod"
	Action   string // Publish or Rollback
	Tag      string
	Revision uint64
	PR       int // 0 for a rollback not tied to a PR
	PRURL    string
	Author   string
	Approver string
	Deployer string
	// Changes per os-arch ("linux-x86_64").
	Changes map[string][]Change
}

// Committer writes a file on a branch of the managed repository (the bot
// implements it with the GitHub contents API).
type Committer interface {
	CommitFile(ctx context.Context, repo, branch, path string, content []byte, message string) error
}

// Path is the changelog file of a version in the managed repository.
func Path(version string) string { return "changelog/" + version + ".md" }

// ID identifies an entry; Append uses it to stay idempotent when a commit
// is retried.
func (e Entry) ID() string {
	h := sha256.Sum256([]byte(strings.Join([]string{e.Date.UTC().Format(time.RFC3339Nano), e.Version, e.Target, e.Action, e.Tag}, "\x00")))
	return hex.EncodeToString(h[:8])
}

// Validate reports the first missing or malformed field.
func (e Entry) Validate() error {
	switch {
	case e.Date.IsZero():
		return fmt.Errorf("changelog entry: date is missing")
	case e.Version == "":
		return fmt.Errorf("changelog entry: version is missing")
	case strings.ContainsAny(e.Version, "/\\ \n") || e.Version == "." || e.Version == "..":
		return fmt.Errorf("changelog entry: version %q is not a file name", e.Version)
	case e.Target == "":
		return fmt.Errorf("changelog entry: target is missing")
	case e.Action != Publish && e.Action != Rollback:
		return fmt.Errorf("changelog entry: action %q, want %q or %q", e.Action, Publish, Rollback)
	case e.Tag == "":
		return fmt.Errorf("changelog entry: tag is missing")
	}
	return nil
}

// cell makes untrusted text safe inside a Markdown table cell or line:
// one line, no table separators, no HTML.
func cell(s string) string {
	r := strings.NewReplacer("\r", " ", "\n", " ", "|", `\|`, "<", "&lt;", ">", "&gt;", "`", "'")
	return r.Replace(s)
}

func user(s string) string {
	if s == "" {
		return "—"
	}
	return "@" + cell(s)
}

// Render is the entry as Markdown, starting with a level-2 heading and an
// HTML comment carrying its ID.
func Render(e Entry) string {
	var b strings.Builder
	what := "publish"
	if e.Action == Rollback {
		what = "rollback to"
	}
	fmt.Fprintf(&b, "## %s · %s · %s `%s`\n", e.Date.UTC().Format("2006-01-02 15:04 UTC"), cell(e.Target), what, cell(e.Tag))
	fmt.Fprintf(&b, "<!-- compatbot:entry %s -->\n\n", e.ID())
	if e.PR > 0 {
		if e.PRURL != "" {
			fmt.Fprintf(&b, "- PR: [#%d](%s)\n", e.PR, cell(e.PRURL))
		} else {
			fmt.Fprintf(&b, "- PR: #%d\n", e.PR)
		}
	}
	if e.Author != "" {
		fmt.Fprintf(&b, "- Author: %s\n", user(e.Author))
	}
	if e.Approver != "" {
		fmt.Fprintf(&b, "- Approved by: %s\n", user(e.Approver))
	}
	fmt.Fprintf(&b, "- Deployed by: %s\n", user(e.Deployer))
	if e.Revision > 0 {
		fmt.Fprintf(&b, "- Revision: %d\n", e.Revision)
	}
	arches := make([]string, 0, len(e.Changes))
	for a := range e.Changes {
		arches = append(arches, a)
	}
	sort.Strings(arches)
	if len(arches) == 0 {
		b.WriteString("\nNo package changes recorded.\n")
	}
	for _, a := range arches {
		fmt.Fprintf(&b, "\n### %s\n\n", cell(a))
		cs := e.Changes[a]
		if len(cs) == 0 {
			b.WriteString("No package changes.\n")
			continue
		}
		b.WriteString("| Change | Package | Old | New |\n|---|---|---|---|\n")
		for _, c := range cs {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(c.Kind), code(c.Package), code(c.Old), code(c.New))
		}
	}
	return b.String()
}

// code is a code span in a table cell: HTML is inert inside it, so only
// line breaks, the column separator and backticks need care.
func code(s string) string {
	if s == "" {
		return ""
	}
	r := strings.NewReplacer("\r", " ", "\n", " ", "|", `\|`, "`", "'")
	return "`" + r.Replace(s) + "`"
}

func header(version string) string {
	return fmt.Sprintf("# Changelog of compatibility layer %s\n\nEvery publish and rollback of %s to a target, oldest first. Written by compatbot; do not edit entries.\n", cell(version), cell(version))
}

// Append adds e at the end of an existing changelog file (oldest first, so
// each commit only adds lines), writing the header if the file is empty.
// An entry already present (same ID) is not added again, so a retried
// commit cannot duplicate it.
func Append(existing []byte, e Entry) []byte {
	if Contains(existing, e) {
		return existing
	}
	s := string(existing)
	if strings.TrimSpace(s) == "" {
		s = header(e.Version)
	}
	s = strings.TrimRight(s, "\n") + "\n\n" + Render(e)
	return []byte(s)
}

// Contains reports whether the changelog already holds e.
func Contains(existing []byte, e Entry) bool {
	return strings.Contains(string(existing), "<!-- compatbot:entry "+e.ID()+" -->")
}

// Commit appends e to its version's changelog file read by read and writes
// it back through c on branch.
func Commit(ctx context.Context, c Committer, existing []byte, repo, branch string, e Entry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if Contains(existing, e) {
		return nil
	}
	msg := fmt.Sprintf("changelog: %s %s %s", e.Target, e.Action, e.Tag)
	if e.PR > 0 {
		msg += fmt.Sprintf(" (#%d)", e.PR)
	}
	return c.CommitFile(ctx, repo, branch, Path(e.Version), Append(existing, e), msg)
}

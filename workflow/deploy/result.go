package deploy

import (
	"fmt"
	"strings"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/publish"
)

// Result is what a deploy or rollback did. It is filled whenever the
// request was accepted, also when an error is returned with it, and
// Markdown renders it for a PR comment.
type Result struct {
	RequestID int64
	Env       string
	Kind      string // "deploy" or "rollback"
	Repo      string
	PR        int
	HeadSHA   string
	Requester string
	Items     []ItemResult `json:",omitempty"`

	// Rollback: the tag rolled back to, the newest tag before, and the
	// revision the rollback made.
	Tag      string           `json:",omitempty"`
	FromTag  string           `json:",omitempty"`
	Revision publish.Revision `json:",omitempty"`
	// Error says why the request as a whole failed or was refused (a
	// rollback's failure, a queued prod deploy refused when its turn came).
	Error string `json:",omitempty"`

	// Recovered marks a result settled by Recover after a restart.
	Recovered bool `json:",omitempty"`
	// Notes are extra facts worth telling (changelog commit pending, ...).
	Notes []string `json:",omitempty"`
}

// ItemResult is one version/os-arch of a deploy.
type ItemResult struct {
	Target        sets.Target
	Path          string
	Digest        string
	Tag           string           `json:",omitempty"`
	Revision      publish.Revision `json:",omitempty"`
	LineageBefore string           `json:",omitempty"`
	LineageAfter  string           `json:",omitempty"`
	// State is the journal state: queued, tx-open, applied, published,
	// verified, failed or aborted.
	State         string
	FailedStep    string `json:",omitempty"`
	Error         string `json:",omitempty"`
	VerifyPassed  bool   `json:",omitempty"`
	VerifySummary string `json:",omitempty"`
}

// Published reports whether the item's tree was published (whatever the
// verification said).
func (ir ItemResult) Published() bool {
	return ir.State == stPublished || ir.State == stVerified || ir.State == stFailed && ir.FailedStep == "verify"
}

// OK reports whether everything was done and verified.
func (r Result) OK() bool {
	if r.Kind == kindRollback {
		return r.Error == "" && r.Revision != 0
	}
	if len(r.Items) == 0 {
		return false
	}
	for _, it := range r.Items {
		if it.State != stVerified {
			return false
		}
	}
	return true
}

func short(s string, n int) string {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) > n {
		return s[:n]
	}
	return s
}

// oneLine keeps a summary or error from breaking the Markdown table.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// Markdown renders the result for a PR comment.
func (r Result) Markdown() string {
	var b strings.Builder
	if r.Kind == kindRollback {
		r.rollbackMarkdown(&b)
	} else {
		r.deployMarkdown(&b)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n> %s\n", n)
	}
	return b.String()
}

func (r Result) deployMarkdown(b *strings.Builder) {
	icon, verb := "✅", "Deployed"
	if !r.OK() {
		icon, verb = "❌", "Deploy failed:"
		for _, it := range r.Items {
			if it.Published() {
				icon, verb = "⚠️", "Deployed with problems:"
			}
		}
	}
	fmt.Fprintf(b, "%s **%s PR #%d to `%s`**", icon, verb, r.PR, r.Env)
	if r.HeadSHA != "" {
		fmt.Fprintf(b, " at %s", short(r.HeadSHA, 7))
	}
	if r.Requester != "" {
		fmt.Fprintf(b, ", requested by @%s", r.Requester)
	}
	b.WriteString("\n")
	if r.Recovered {
		b.WriteString("\ncompatbot restarted while this deploy was running; this is how it ended.\n")
	}
	if r.Error != "" {
		fmt.Fprintf(b, "\n%s\n", r.Error)
	}
	if len(r.Items) == 0 {
		return
	}
	b.WriteString("\n| Target | Path | Tag | Revision | Verification |\n|---|---|---|---|---|\n")
	for _, it := range r.Items {
		tag, rev := "–", "–"
		if it.Tag != "" && it.Published() {
			tag = "`" + it.Tag + "`"
		}
		if it.Published() {
			rev = fmt.Sprint(it.Revision)
		}
		fmt.Fprintf(b, "| %s | `%s` | %s | %s | %s |\n", it.Target, it.Path, tag, rev, it.verifyCell())
	}
	b.WriteString("\n")
	for _, it := range r.Items {
		fmt.Fprintf(b, "- **%s**: artifact `%s`", it.Target, short(it.Digest, 12))
		if it.Published() {
			fmt.Fprintf(b, ", lineage `%s` → `%s`", lineageShort(it.LineageBefore), lineageShort(it.LineageAfter))
		}
		switch {
		case it.State == stAborted && it.FailedStep != "":
			fmt.Fprintf(b, ". Failed at step **%s**: %s. The transaction was aborted; nothing was published.", it.FailedStep, oneLine(it.Error))
		case it.State == stAborted:
			fmt.Fprintf(b, ". Not published: %s.", oneLine(it.Error))
		case it.State == stFailed && it.FailedStep == "verify" && it.Error != "":
			fmt.Fprintf(b, ". Published, but the tests could not run: %s.", oneLine(it.Error))
		case it.State == stFailed && it.FailedStep == "verify":
			b.WriteString(". Published, but the tests failed.")
		}
		b.WriteString("\n")
	}
}

func (it ItemResult) verifyCell() string {
	switch {
	case it.State == stVerified:
		return "✅ " + oneLine(it.VerifySummary)
	case it.State == stFailed && it.FailedStep == "verify":
		if it.Error != "" {
			return "❌ could not run: " + oneLine(it.Error)
		}
		return "❌ " + oneLine(it.VerifySummary)
	case it.State == stAborted:
		return "not run"
	default:
		return "pending (" + it.State + ")"
	}
}

func lineageShort(l string) string {
	if l == "" {
		return "empty"
	}
	return short(l, 12)
}

func (r Result) rollbackMarkdown(b *strings.Builder) {
	if r.OK() {
		fmt.Fprintf(b, "✅ **Rolled `%s` back to tag `%s`**", r.Env, r.Tag)
	} else {
		fmt.Fprintf(b, "❌ **Rollback of `%s`", r.Env)
		if r.Tag != "" {
			fmt.Fprintf(b, " to tag `%s`", r.Tag)
		}
		b.WriteString(" failed**")
	}
	if r.Requester != "" {
		fmt.Fprintf(b, ", requested by @%s", r.Requester)
	}
	b.WriteString("\n")
	if r.Recovered {
		b.WriteString("\ncompatbot restarted while this rollback was running; this is how it ended.\n")
	}
	if r.OK() {
		fmt.Fprintf(b, "\nThe tree of `%s` is published again as revision %d", r.Tag, r.Revision)
		if r.FromTag != "" {
			fmt.Fprintf(b, "; tags newer than it (up to `%s`) were removed", r.FromTag)
		}
		b.WriteString(".\n")
	} else if r.Error != "" {
		fmt.Fprintf(b, "\n%s\n", r.Error)
	}
	if len(r.Items) > 0 {
		b.WriteString("\n| Target | Path | Lineage now |\n|---|---|---|\n")
		for _, it := range r.Items {
			fmt.Fprintf(b, "| %s | `%s` | `%s` |\n", it.Target, it.Path, lineageShort(it.LineageAfter))
		}
	}
}

// ReplyText is the PR comment for the outcome of an Engine call: a
// refusal's reason verbatim, the result's Markdown when the request was
// accepted (also when it failed: the Markdown says where), or the error.
func ReplyText(res Result, err error) string {
	if r, ok := IsRefusal(err); ok {
		return r.Reason
	}
	if res.Kind != "" {
		return res.Markdown()
	}
	if err != nil {
		return "❌ " + err.Error()
	}
	return ""
}

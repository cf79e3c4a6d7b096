package sets

import (
	"fmt"
	"sort"
	"strings"
)

// Finding kinds.
const (
	FindingRefused       = "refused"
	FindingNeedsApproval = "needs-approval"
)

// Finding is one policy judgement on a change of a PR.
type Finding struct {
	Target  Target `json:"target"`
	Package string `json:"package"`
	Kind    string `json:"kind"` // "refused" or "needs-approval"
	Reason  string `json:"reason"`
	File    string `json:"file"`
	Line    int    `json:"line"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", f.File, f.Line, f.Kind, f.Reason)
}

// Evaluate judges the diffs of a PR by the base revision's config (never
// the PR's own):
//   - a frozen version accepts only updates of packages it already has:
//     an added or removed entry is refused, a downgrade needs approval
//     (it may be the rollback of a bad update, but is not a fix by itself);
//   - an in-place update (upgrade, downgrade, constraint change) of a
//     package on the risky list needs explicit approval;
//   - in a frozen version, a change of a mask, unmask, removal or pin needs
//     approval (package sets count as packages).
//
// Findings are sorted by target, file, line and package.
func Evaluate(base *Repo, diffs []TargetDiff) []Finding {
	var cfg *Config
	if base != nil {
		cfg = base.Config
	}
	if cfg == nil {
		cfg = DefaultConfig()
	}
	var out []Finding
	for _, d := range diffs {
		frozen := cfg.VersionStatus(d.Target.Version) == StatusFrozen
		for _, c := range d.Changes {
			f := Finding{Target: d.Target, Package: c.Package, File: c.File, Line: c.Line}
			if c.List != "" && c.List != ListPackageSets {
				// Masks, unmasks, removals and pins change what a frozen
				// version builds without adding or removing one of its
				// packages: a maintainer decides, as for a downgrade.
				if frozen {
					f.Kind = FindingNeedsApproval
					f.Package = c.Label()
					f.Reason = fmt.Sprintf("version %s is frozen and this %s change (%s -> %s) changes what it builds", d.Target.Version, c.List, orNone(c.Old), orNone(c.New))
					out = append(out, f)
				}
				continue
			}
			if frozen {
				switch c.Kind {
				case Added:
					f.Kind = FindingRefused
					f.Reason = fmt.Sprintf("version %s is frozen: it accepts only updates of packages it already has, so adding %s is refused", d.Target.Version, c.New)
				case Removed:
					f.Kind = FindingRefused
					f.Reason = fmt.Sprintf("version %s is frozen: it accepts only updates of packages it already has, so removing %s is refused", d.Target.Version, c.Old)
				case Downgraded:
					f.Kind = FindingNeedsApproval
					f.Reason = fmt.Sprintf("version %s is frozen and %s -> %s is a downgrade, not an update", d.Target.Version, c.Old, c.New)
				}
				if f.Kind != "" {
					out = append(out, f)
					continue
				}
			}
			cp := strings.TrimLeft(c.Package, "!")
			if c.Kind != Added && c.Kind != Removed && !strings.HasPrefix(cp, "@") && cfg.IsRisky(cp) {
				f.Kind = FindingNeedsApproval
				f.Reason = fmt.Sprintf("%s is on the risky list: its in-place %s (%s -> %s) can break software built on the layer and needs explicit approval", cp, changeNoun[c.Kind], c.Old, c.New)
				out = append(out, f)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Target != b.Target {
			return a.Target.Less(b.Target)
		}
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Package < b.Package
	})
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

var changeNoun = map[ChangeKind]string{Upgraded: "upgrade", Downgraded: "downgrade", ConstraintChanged: "constraint change"}

// FormatFindingsMarkdown renders policy findings as a Markdown list; ""
// when there are none.
func FormatFindingsMarkdown(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		mark := "❌ refused"
		if f.Kind == FindingNeedsApproval {
			mark = "⚠️ needs approval"
		}
		fmt.Fprintf(&b, "- %s: %s, %s (%s): %s\n", mark, MarkdownCode(f.Package), MarkdownText(f.Target.String()), MarkdownCode(fmt.Sprintf("%s:%d", f.File, f.Line)), MarkdownText(f.Reason))
	}
	return b.String()
}

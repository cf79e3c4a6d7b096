// Package report is the shape of everything compatbot tells a person about a
// commit: one Check per check run, rendered by the bot as a GitHub check run
// and by `compatbot check` as the same Markdown on a terminal.
package report

// Conclusion of a completed check, with GitHub's names.
type Conclusion string

const (
	Success        Conclusion = "success"
	Failure        Conclusion = "failure"
	Neutral        Conclusion = "neutral"
	ActionRequired Conclusion = "action_required"
	Cancelled      Conclusion = "cancelled"
	TimedOut       Conclusion = "timed_out"
	Skipped        Conclusion = "skipped"
)

// Level of an annotation, with GitHub's names.
type Level string

const (
	Notice  Level = "notice"
	Warning Level = "warning"
	Error   Level = "failure"
)

// Annotation points at one line of a file in the PR's head.
type Annotation struct {
	Path      string
	StartLine int
	EndLine   int
	StartCol  int // 0 when the whole line is meant
	EndCol    int
	Level     Level
	Title     string
	Message   string
}

// Check is one check run's content.
type Check struct {
	Name        string // e.g. "compat sets", "compat 2025.06 linux-x86_64"
	Title       string // one line; the reason of a failure goes here
	Summary     string // Markdown
	Text        string // Markdown details
	Conclusion  Conclusion
	Annotations []Annotation
	DetailsURL  string
}

// Markdown renders the check as the terminal shows it.
func (c Check) Markdown() string {
	s := "## " + c.Name + ": " + c.Title + "\n\n"
	if c.Summary != "" {
		s += c.Summary + "\n\n"
	}
	if c.Text != "" {
		s += c.Text + "\n"
	}
	return s
}

// Package commands parses the slash commands people write in pull request
// comments (/deploy test, /rebuild x86_64, ...). Parse never acts and never
// fails: each command-looking line becomes a Command, a Reply to post (a
// usage error or a "did you mean"), or is ignored as someone else's command.
package commands

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/text"
)

// Name of a command.
type Name string

const (
	Deploy   Name = "deploy"
	Rebuild  Name = "rebuild"
	Rollback Name = "rollback"
	Status   Name = "status"
	Help     Name = "help"
)

// Names lists the commands in the order /help shows them.
var Names = []Name{Deploy, Rebuild, Rollback, Status, Help}

// Environments that /deploy and /rollback accept.
var Environments = []string{"test", "prod"}

// MaxCommands is how many commands one comment may carry; more are
// answered with a reply instead of being run.
const MaxCommands = 10

// Command is one parsed, valid command.
type Command struct {
	Name   Name
	Env    string   // "test" or "prod" for /deploy and /rollback
	Arches []string // /rebuild: empty means every arch the PR touches
	Tag    string   // /rollback: empty means the tag before the last deploy
	Line   int      // 1-based line of the comment it was on
}

// String is the command in canonical form.
func (c Command) String() string {
	parts := []string{"/" + string(c.Name)}
	if c.Env != "" {
		parts = append(parts, c.Env)
	}
	parts = append(parts, c.Arches...)
	if c.Tag != "" {
		parts = append(parts, c.Tag)
	}
	return strings.Join(parts, " ")
}

// Result is what one line produced: exactly one of Command, Reply or Ignore.
type Result struct {
	Line    int
	Command *Command
	// Reply is Markdown to answer with: a usage error or a suggestion.
	Reply string
	// Ignore is set for slash words that are not ours (e.g. /cc, /lgtm);
	// Reason says why, for logs.
	Ignore bool
	Reason string
}

// Usage of each command, shown in replies and /help.
var Usage = map[Name]string{
	Deploy:   "`/deploy test` or `/deploy prod`: publish this PR's tested build to the test or production repository",
	Rebuild:  "`/rebuild [ARCH...]`: run the checks and builds again, for the given arches (default: all the PR touches)",
	Rollback: "`/rollback test|prod [TAG]`: roll a repository back to TAG (default: the tag before the last deploy)",
	Status:   "`/status`: show this PR's checks and deploy requests",
	Help:     "`/help`: show this list",
}

// HelpText is the reply to /help.
func HelpText() string {
	var b strings.Builder
	b.WriteString("Commands (one per line, at the start of a line):\n\n")
	for _, n := range Names {
		b.WriteString("- " + Usage[n] + "\n")
	}
	return b.String()
}

var (
	wordRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
	// ArchRE is what an arch argument may look like: x86_64, aarch64,
	// linux-x86_64, riscv64.
	ArchRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	// TagRE is the CVMFS tag charset.
	TagRE = regexp.MustCompile(`^[A-Za-z0-9_./:-]{1,255}$`)
)

// Parse reads a comment body. Only what a reader sees as plain text is a
// command: the body is parsed as Markdown (CommonMark with GitHub's
// extensions, as GitHub renders it) and a command counts only where a line
// of a top-level paragraph starts with it as plain text. Code (fenced,
// indented, inline), block quotes (lazy continuation lines included), list
// items, tables, headings, HTML comments and HTML blocks, and paragraphs
// between an HTML block that opens an element (<details>, <div>, ...) and
// the one that closes it, are never read: text there is either not shown
// or shown as something other than a request to the bot.
func Parse(body string) []Result {
	body = strings.ReplaceAll(body, "\r\n", "\n")
	var out []Result
	commands := 0
	for _, l := range commandLines([]byte(body)) {
		r, ok := parseLine(l.n, l.text)
		if !ok {
			continue
		}
		if r.Command != nil {
			commands++
			if commands > MaxCommands {
				if commands == MaxCommands+1 {
					out = append(out, Result{Line: l.n, Reply: fmt.Sprintf("Only the first %d commands of a comment are run; write the others in a new comment.", MaxCommands)})
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// md parses as GitHub does (GFM: tables, strikethrough, autolinks, task
// lists), so a table row or a struck-through line is not taken for a
// paragraph line. A parser is safe for concurrent use.
var md = goldmark.New(goldmark.WithExtensions(extension.GFM)).Parser()

// line is a candidate command line: its 1-based number and text.
type line struct {
	n    int
	text string
}

// commandLines returns the lines of src that start, as plain text, a line
// of a top-level paragraph with "/", outside any HTML element an HTML block
// left open.
func commandLines(src []byte) []line {
	doc := md.Parse(text.NewReader(src))
	var out []line
	htmlDepth := 0 // elements opened by top-level HTML blocks, not yet closed
	for n := doc.FirstChild(); n != nil; n = n.NextSibling() {
		switch n := n.(type) {
		case *ast.HTMLBlock:
			htmlDepth = max(0, htmlDepth+htmlNesting(n, src))
		case *ast.Paragraph:
			if htmlDepth == 0 {
				out = append(out, paragraphLines(n, src)...)
			}
			// An element opened inline ("see <details>") encloses what
			// follows too, as far as the browser is concerned.
			for c := n.FirstChild(); c != nil; c = c.NextSibling() {
				if raw, ok := c.(*ast.RawHTML); ok {
					var b []byte // a comment may span several segments
					for i := 0; i < raw.Segments.Len(); i++ {
						seg := raw.Segments.At(i)
						b = append(b, seg.Value(src)...)
					}
					htmlDepth = max(0, htmlDepth+tagNesting(b))
				}
			}
		}
	}
	return out
}

// paragraphLines finds the lines of paragraph p whose first inline is plain
// text (a Text child of the paragraph itself, not of a code span, link,
// emphasis or raw HTML such as a comment spanning lines) starting with "/".
func paragraphLines(p *ast.Paragraph, src []byte) []line {
	starts := map[int]bool{} // offsets where a plain Text child begins
	for c := p.FirstChild(); c != nil; c = c.NextSibling() {
		if t, ok := c.(*ast.Text); ok {
			starts[t.Segment.Start] = true
		}
	}
	var out []line
	lines := p.Lines()
	for i := 0; i < lines.Len(); i++ {
		seg := lines.At(i)
		start := seg.Start
		for start < seg.Stop && (src[start] == ' ' || src[start] == '\t') {
			start++
		}
		if start >= seg.Stop || src[start] != '/' || !starts[start] {
			continue
		}
		end := start + bytes.IndexByte(src[start:], '\n')
		if end < start {
			end = len(src)
		}
		out = append(out, line{n: 1 + bytes.Count(src[:start], []byte("\n")), text: strings.TrimSpace(string(src[start:end]))})
	}
	return out
}

// tagRE finds HTML start and end tags in an HTML block.
var tagRE = regexp.MustCompile(`<(/?)([A-Za-z][A-Za-z0-9-]*)[^>]*?(/?)>`)

// voidElements never enclose anything.
var voidElements = map[string]bool{"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true,
	"img": true, "input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true}

// htmlNesting is how many elements an HTML block opens minus those it
// closes: <details> and a blank line leave the next paragraph inside the
// element (collapsed, on GitHub) although Markdown ends the block there.
func htmlNesting(b *ast.HTMLBlock, src []byte) int {
	var raw []byte
	lines := b.Lines()
	for i := 0; i < lines.Len(); i++ {
		seg := lines.At(i)
		raw = append(raw, seg.Value(src)...)
	}
	if b.HasClosure() {
		raw = append(raw, b.ClosureLine.Value(src)...)
	}
	if b.HTMLBlockType == ast.HTMLBlockType2 { // a comment: no elements
		return 0
	}
	return tagNesting(raw)
}

// tagNesting is how many elements raw opens minus those it closes.
func tagNesting(raw []byte) int {
	if bytes.HasPrefix(raw, []byte("<!--")) {
		return 0
	}
	d := 0
	for _, m := range tagRE.FindAllSubmatch(raw, -1) {
		name := strings.ToLower(string(m[2]))
		switch {
		case voidElements[name] || len(m[3]) > 0:
		case len(m[1]) > 0:
			d--
		default:
			d++
		}
	}
	return d
}

// parseLine parses a line starting with "/"; ok is false when the line is
// not command-shaped at all (a path such as /usr/lib, a lone slash).
func parseLine(n int, line string) (Result, bool) {
	fields := strings.Fields(line)
	word := strings.TrimPrefix(fields[0], "/")
	if !wordRE.MatchString(word) {
		return Result{}, false
	}
	args := fields[1:]
	name := Name(word)
	if !slices.Contains(Names, name) {
		if s, ok := suggestName(word); ok {
			fixed := fixArgs(s, args)
			return Result{Line: n, Reply: fmt.Sprintf("I don't know `/%s`. Did you mean `%s`?", word, strings.Join(append([]string{"/" + string(s)}, fixed...), " "))}, true
		}
		return Result{Line: n, Ignore: true, Reason: "not a compatbot command: /" + word}, true
	}
	c := &Command{Name: name, Line: n}
	usage := func(msg string) (Result, bool) {
		return Result{Line: n, Reply: msg + "\n\nUsage: " + Usage[name]}, true
	}
	switch name {
	case Deploy, Rollback:
		if len(args) == 0 {
			return usage(fmt.Sprintf("`/%s` needs an environment: `test` or `prod`.", name))
		}
		if !slices.Contains(Environments, args[0]) {
			if env, ok := suggest(args[0], Environments); ok {
				fixed := append([]string{"/" + string(name), env}, args[1:]...)
				return Result{Line: n, Reply: fmt.Sprintf("`%s` is not an environment. Did you mean `%s`?", quote(args[0]), strings.Join(fixed, " "))}, true
			}
			return usage(fmt.Sprintf("`%s` is not an environment: use `test` or `prod`.", quote(args[0])))
		}
		c.Env = args[0]
		rest := args[1:]
		if name == Deploy && len(rest) > 0 {
			return usage(fmt.Sprintf("`/deploy %s` takes no more arguments; got `%s`.", c.Env, quote(strings.Join(rest, " "))))
		}
		if name == Rollback {
			if len(rest) > 1 {
				return usage(fmt.Sprintf("`/rollback` takes one tag; got `%s`.", quote(strings.Join(rest, " "))))
			}
			if len(rest) == 1 {
				tag := rest[0]
				if !TagRE.MatchString(tag) {
					return usage(fmt.Sprintf("`%s` is not a valid tag: tags have 1 to 255 characters from `A-Z a-z 0-9 - _ . / :`.", quote(tag)))
				}
				if tag == "trunk" || tag == "trunk-previous" {
					return usage(fmt.Sprintf("`%s` is a CVMFS internal tag and cannot be rolled back to.", tag))
				}
				c.Tag = tag
			}
		}
	case Rebuild:
		if len(args) > 16 {
			return usage("`/rebuild` takes at most 16 arches.")
		}
		for _, a := range args {
			if !ArchRE.MatchString(a) {
				return usage(fmt.Sprintf("`%s` is not an arch name: use lower-case letters, digits, `_`, `.` and `-`, like `x86_64` or `linux-aarch64`.", quote(a)))
			}
			if !slices.Contains(c.Arches, a) {
				c.Arches = append(c.Arches, a)
			}
		}
	case Status, Help:
		if len(args) > 0 {
			return usage(fmt.Sprintf("`/%s` takes no arguments; got `%s`.", name, quote(strings.Join(args, " "))))
		}
	}
	return Result{Line: n, Command: c}, true
}

// quote keeps user text from breaking out of a Markdown code span and
// bounds its length.
func quote(s string) string {
	s = strings.ReplaceAll(s, "`", "'")
	if r := []rune(s); len(r) > 60 {
		s = string(r[:60]) + "…"
	}
	return s
}

// fixArgs corrects a misspelled environment in the suggestion.
func fixArgs(name Name, args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if i == 0 && (name == Deploy || name == Rollback) {
			if env, ok := suggest(a, Environments); ok {
				a = env
			}
		}
		out = append(out, quote(a))
		if len(out) == 3 {
			break
		}
	}
	return out
}

func suggestName(word string) (Name, bool) {
	names := make([]string, len(Names))
	for i, n := range Names {
		names[i] = string(n)
	}
	s, ok := suggest(word, names)
	return Name(s), ok
}

// suggest finds the candidate closest to word: case-insensitively equal, or
// within an edit distance of 2 (1 for words of up to 4 letters, so /cc or
// /hold do not turn into /help).
func suggest(word string, candidates []string) (string, bool) {
	lw := strings.ToLower(word)
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if lw == c {
			return c, true
		}
		if d := Distance(lw, c); d < bestD {
			best, bestD = c, d
		}
	}
	limit := 2
	if len(lw) <= 4 {
		limit = 1
	}
	if bestD <= limit && bestD < len(lw) {
		return best, true
	}
	return "", false
}

// Distance is the Damerau-Levenshtein distance (optimal string alignment:
// insertions, deletions, substitutions and transpositions of adjacent
// letters) between a and b, by rune.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		// Bounded work on hostile input; such words are never close.
		return max(len(ra), len(rb))
	}
	// Three rows suffice for transpositions; fixed arrays keep it off the
	// heap.
	var rows [3][65]int
	prev2, prev, cur := &rows[0], &rows[1], &rows[2]
	for j := 0; j <= len(rb); j++ {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

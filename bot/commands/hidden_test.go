package commands

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Only what a reader sees as plain text at the start of a paragraph line
// is a command. Each body hides "/deploy prod" somewhere GitHub does not
// show it as such a line; a visible "/status" on the given line (0: none)
// checks that the rest of the comment is still read.
func TestHiddenCommands(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"HTML comment block", "<!-- /deploy prod -->\n\n/status", 3},
		{"multi-line HTML comment block", "<!--\n/deploy prod\n-->\n/status", 4},
		{"multi-line HTML comment with blank lines", "<!--\n\n/deploy prod\n\n-->\n/status", 6},
		{"HTML comment inside a paragraph", "Looks good <!--\n/deploy prod\n--> to me\n/status", 4},
		{"pre block", "<pre>\n/deploy prod\n</pre>", 0},
		{"pre block with blank lines", "<pre>\n\n/deploy prod\n\n</pre>\n\n/status", 7},
		{"details", "<details>\n<summary>log</summary>\n\n/deploy prod\n\n</details>\n\n/status", 8},
		{"details on one block", "<details>\n/deploy prod\n</details>", 0},
		{"nested div", "<div>\n<div>\n\n/deploy prod\n\n</div>\n\n/deploy prod\n\n</div>\n\n/status", 12},
		{"details opened inline", "see <details>\n\n/deploy prod\n\n</details>\n\n/status", 7},
		{"script block", "<script>\n\n/deploy prod\n</script>", 0},
		{"fenced code", "```\n/deploy prod\n```\n/status", 4},
		{"fenced code never closed", "~~~\n/deploy prod", 0},
		{"indented code", "    /deploy prod\n\n\t/deploy prod", 0},
		{"inline code over two lines", "see `the\n/deploy prod` command", 0},
		{"block quote", "> /deploy prod", 0},
		{"block quote lazy continuation", "> quoting the reviewer\n/deploy prod", 0},
		{"nested quote lazy", "> > deep\n/deploy prod\n\n/status", 4},
		{"list item", "- /deploy prod\n1. /deploy prod", 0},
		{"list item lazy continuation", "- an item\n/deploy prod", 0},
		{"ATX heading", "# /deploy prod", 0},
		{"setext heading", "/deploy prod\n---", 0},
		{"link text", "[a\n/deploy prod](https://example.org)", 0},
		{"emphasis", "*a\n/deploy prod*", 0},
		{"table", "/deploy prod | x\n--- | ---\n/deploy prod | y", 0},
		{"escaped slash", "\\/deploy prod", 0},
		{"plain, after text", "LGTM\n/status", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []Result
			if tc.status != 0 {
				want = []Result{cmd(tc.status, Status, "", nil, "")}
			}
			if diff := cmp.Diff(want, Parse(tc.body)); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tc.body, diff)
			}
		})
	}
}

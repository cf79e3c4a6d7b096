package commands

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func cmd(line int, name Name, env string, arches []string, tag string) Result {
	return Result{Line: line, Command: &Command{Name: name, Env: env, Arches: arches, Tag: tag, Line: line}}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []Result
	}{
		{"deploy test", "/deploy test", []Result{cmd(1, Deploy, "test", nil, "")}},
		{"deploy prod with CRLF and spaces", "Looks good.\r\n   /deploy prod  \r\n", []Result{cmd(2, Deploy, "prod", nil, "")}},
		{"several commands", "/status\n/rebuild x86_64 aarch64 x86_64\n/rollback prod 2025.06-linux-x86_64-pr12-abcdef0\n/help",
			[]Result{cmd(1, Status, "", nil, ""), cmd(2, Rebuild, "", []string{"x86_64", "aarch64"}, ""), cmd(3, Rollback, "prod", nil, "2025.06-linux-x86_64-pr12-abcdef0"), cmd(4, Help, "", nil, "")}},
		{"rebuild all", "/rebuild", []Result{cmd(1, Rebuild, "", nil, "")}},
		{"rollback default tag", "/rollback test", []Result{cmd(1, Rollback, "test", nil, "")}},
		{"not at line start", "please /deploy test", nil},
		{"fenced backticks", "```\n/deploy prod\n```\n/status", []Result{cmd(4, Status, "", nil, "")}},
		{"fenced tildes with info", "~~~~ sh\n/deploy prod\n~~~\n/deploy prod\n~~~~\n", nil},
		{"unclosed fence hides the rest", "```\n/deploy prod", nil},
		{"fence longer closing", "```\n/deploy prod\n`````\n/help", []Result{cmd(4, Help, "", nil, "")}},
		{"indented code", "    /deploy prod\n\t/deploy prod", nil},
		{"quote", "> /deploy prod\n>/deploy test", nil},
		{"path is not a command", "/usr/lib/libc.so is missing\n/ alone", nil},
		{"other bots' commands", "/cc @alice\n/lgtm\n/hold", []Result{
			{Line: 1, Ignore: true, Reason: "not a compatbot command: /cc"},
			{Line: 2, Ignore: true, Reason: "not a compatbot command: /lgtm"},
			{Line: 3, Ignore: true, Reason: "not a compatbot command: /hold"}}},
		{"did you mean deploy", "/deploi test", []Result{{Line: 1, Reply: "I don't know `/deploi`. Did you mean `/deploy test`?"}}},
		{"did you mean both", "/deplyo tset", []Result{{Line: 1, Reply: "I don't know `/deplyo`. Did you mean `/deploy test`?"}}},
		{"did you mean rebuild", "/rebiuld", []Result{{Line: 1, Reply: "I don't know `/rebiuld`. Did you mean `/rebuild`?"}}},
		{"case", "/Status", []Result{{Line: 1, Reply: "I don't know `/Status`. Did you mean `/status`?"}}},
		{"env typo", "/deploy tset", []Result{{Line: 1, Reply: "`tset` is not an environment. Did you mean `/deploy test`?"}}},
		{"env typo prd", "/rollback prd v1", []Result{{Line: 1, Reply: "`prd` is not an environment. Did you mean `/rollback prod v1`?"}}},
		{"env missing", "/deploy", []Result{{Line: 1, Reply: "`/deploy` needs an environment: `test` or `prod`.\n\nUsage: " + Usage[Deploy]}}},
		{"env unknown", "/deploy staging", []Result{{Line: 1, Reply: "`staging` is not an environment: use `test` or `prod`.\n\nUsage: " + Usage[Deploy]}}},
		{"deploy extra", "/deploy test now", []Result{{Line: 1, Reply: "`/deploy test` takes no more arguments; got `now`.\n\nUsage: " + Usage[Deploy]}}},
		{"bad tag", "/rollback prod $(rm -rf /)", []Result{{Line: 1, Reply: "`/rollback` takes one tag; got `$(rm -rf /)`.\n\nUsage: " + Usage[Rollback]}}},
		{"bad tag chars", "/rollback prod v1;ls", []Result{{Line: 1, Reply: "`v1;ls` is not a valid tag: tags have 1 to 255 characters from `A-Z a-z 0-9 - _ . / :`.\n\nUsage: " + Usage[Rollback]}}},
		{"trunk tag", "/rollback prod trunk-previous", []Result{{Line: 1, Reply: "`trunk-previous` is a CVMFS internal tag and cannot be rolled back to.\n\nUsage: " + Usage[Rollback]}}},
		{"bad arch", "/rebuild X86_64", []Result{{Line: 1, Reply: "`X86_64` is not an arch name: use lower-case letters, digits, `_`, `.` and `-`, like `x86_64` or `linux-aarch64`.\n\nUsage: " + Usage[Rebuild]}}},
		{"backtick in arg", "/rebuild `x`", []Result{{Line: 1, Reply: "`'x'` is not an arch name: use lower-case letters, digits, `_`, `.` and `-`, like `x86_64` or `linux-aarch64`.\n\nUsage: " + Usage[Rebuild]}}},
		{"status with args", "/status please", []Result{{Line: 1, Reply: "`/status` takes no arguments; got `please`.\n\nUsage: " + Usage[Status]}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Parse(tc.body)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tc.body, diff)
			}
		})
	}
}

func TestTooManyCommands(t *testing.T) {
	got := Parse(strings.Repeat("/status\n", 15))
	if len(got) != MaxCommands+1 || got[MaxCommands].Reply == "" {
		t.Fatalf("got %d results, want %d commands and one reply: %+v", len(got), MaxCommands, got)
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"deploy", "deploy", 0}, {"deploi", "deploy", 1}, {"rebiuld", "rebuild", 1}, {"tset", "test", 1},
		{"", "abc", 3}, {"ca", "abc", 3}, {"status", "stats", 1}, {"héllo", "hello", 1},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestCommandString(t *testing.T) {
	for _, r := range Parse("/deploy prod\n/rebuild x86_64 aarch64\n/rollback test v1") {
		if again := Parse(r.Command.String()); len(again) != 1 || again[0].Command == nil || again[0].Command.String() != r.Command.String() {
			t.Errorf("%q does not parse back to itself: %+v", r.Command.String(), again)
		}
	}
}

func TestHelpText(t *testing.T) {
	h := HelpText()
	for _, n := range Names {
		if !strings.Contains(h, "/"+string(n)) {
			t.Errorf("help lacks /%s", n)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"/deploy test", "```\n/deploy prod\n```", "/rollback prod v1\n> /x", "/deploi tset", "/rebuild a b c", "    /help", "~~~\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		rs := Parse(body)
		cmds := 0
		for _, r := range rs {
			kinds := 0
			if r.Command != nil {
				kinds++
				cmds++
				if r.Command.Tag != "" && !TagRE.MatchString(r.Command.Tag) {
					t.Fatalf("invalid tag accepted: %q", r.Command.Tag)
				}
				for _, a := range r.Command.Arches {
					if !ArchRE.MatchString(a) {
						t.Fatalf("invalid arch accepted: %q", a)
					}
				}
			}
			if r.Reply != "" {
				kinds++
				if !utf8.ValidString(r.Reply) && utf8.ValidString(body) {
					t.Fatalf("reply not UTF-8: %q", r.Reply)
				}
			}
			if r.Ignore {
				kinds++
			}
			if kinds != 1 {
				t.Fatalf("result with %d kinds: %+v", kinds, r)
			}
		}
		if cmds > MaxCommands {
			t.Fatalf("%d commands, more than %d", cmds, MaxCommands)
		}
	})
}

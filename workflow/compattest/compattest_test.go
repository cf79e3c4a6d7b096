package compattest

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/report"
)

var update = flag.Bool("update", false, "rewrite golden files")

const fakeEmerge = "../../testdata/fakeemerge/fakeemerge"

var target = sets.Target{Version: "2026.06", OS: "linux", Arch: "x86_64"}

// emerge runs the fake installer (a test double for emerge; see its README)
// with a set into prefix.
func emerge(t *testing.T, prefix, set string, extraEnv ...string) {
	t.Helper()
	sf := filepath.Join(t.TempDir(), "set")
	if err := os.WriteFile(sf, []byte(set), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(fakeEmerge)
	cmd.Env = append([]string{"COMPAT_PREFIX=" + prefix, "COMPAT_SET_FILE=" + sf, "PATH=/usr/bin:/bin"}, extraEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fakeemerge: %v\n%s", err, out)
	}
}

// layers builds the base set into a lower dir and, on a copy of it, the
// head set: what an overlay's merged view shows after the build.
func layers(t *testing.T, base, head string) (lower, prefix string) {
	t.Helper()
	dir := t.TempDir()
	lower, prefix = filepath.Join(dir, "lower"), filepath.Join(dir, "prefix")
	if err := os.Mkdir(lower, 0o755); err != nil {
		t.Fatal(err)
	}
	emerge(t, lower, base)
	if out, err := exec.Command("cp", "-a", lower, prefix).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	emerge(t, prefix, head)
	return lower, prefix
}

const baseSet = `# Lmod
=sys-cluster/lmod-8.7.53::eessi
dev-lua/luaposix # Lmod's Lua needs POSIX bindings
=sys-devel/binutils-2.44
=sys-devel/gcc-14.2.1_p20250301
=dev-lang/python-3.12.10
sys-process/numactl
`

func input(prefix, lower, set string) Input {
	return Input{Target: target, Prefix: prefix, Lower: lower,
		Set: sets.ParseSetFile("sets/2026.06/linux-x86_64", []byte(set)), Timeout: 10 * time.Second}
}

func check(t *testing.T, r Result, name string) CheckResult {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %s in %+v", name, r.Checks)
	return CheckResult{}
}

func TestSuccessAndChanges(t *testing.T) {
	head := strings.Replace(strings.Replace(baseSet, "lmod-8.7.53", "lmod-8.7.60", 1), "python-3.12.10", "python-3.12.11", 1) +
		"app-arch/zstd # new\n"
	head = strings.Replace(head, "sys-process/numactl\n", "", 1)
	head = strings.Replace(head, "gcc-14.2.1_p20250301", "gcc-14.1.0", 1)
	lower, prefix := layers(t, baseSet, head)
	r := Run(context.Background(), input(prefix, lower, head))
	if !r.Passed || len(r.Failed()) != 0 {
		t.Fatalf("failed checks %v:\n%s", r.Failed(), r.Markdown())
	}
	want := []Change{
		{"app-arch/zstd", "added", "", "1.5.7:0/1::gentoo"},
		{"dev-lang/python", "upgraded", "3.12.10:3.12::gentoo", "3.12.11:3.12::gentoo"},
		{"sys-cluster/lmod", "upgraded", "8.7.53:0::eessi", "8.7.60:0::eessi"},
		{"sys-devel/gcc", "downgraded", "14.2.1_p20250301:14::gentoo", "14.1.0:14::gentoo"},
		{"sys-process/numactl", "removed", "1.0:0::gentoo", ""},
	}
	if len(r.Changes) != len(want) {
		t.Fatalf("changes %+v, want %+v", r.Changes, want)
	}
	for i := range want {
		if r.Changes[i] != want[i] {
			t.Errorf("change %d = %+v, want %+v", i, r.Changes[i], want[i])
		}
	}
	if c := check(t, r, PackageChanges); c.Summary != "1 added, 2 upgraded, 1 downgraded, 1 removed" {
		t.Errorf("summary %q", c.Summary)
	}
	if r.LibcBefore != "2.41-r6" || r.LibcAfter != "2.41-r6" {
		t.Errorf("libc %q → %q", r.LibcBefore, r.LibcAfter)
	}
	found := false
	for _, l := range r.Installed {
		found = found || l == "sys-cluster/lmod-8.7.60::eessi"
	}
	if !found {
		t.Errorf("installed list lacks lmod 8.7.60: %v", r.Installed)
	}
	golden(t, "success.md", r.Markdown())
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	testtree.Golden(t, name, got, *update)
}

func TestAtomsNotSatisfied(t *testing.T) {
	set := baseSet + "<app-arch/zstd-1.5 # catalogue gives 1.5.7\napp-misc/jq::eessi\n!sys-devel/gcc\n"
	_, prefix := layers(t, "", set)
	// The build put jq from ::eessi; pretend the resolver took it from gentoo.
	if err := os.WriteFile(filepath.Join(prefix, "var/db/pkg/app-misc/jq-1.0/repository"), []byte("gentoo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := Run(context.Background(), input(prefix, "", set))
	c := check(t, r, AtomsSatisfied)
	if c.Passed || r.Passed {
		t.Fatal("unsatisfied atoms passed")
	}
	if c.Summary != "3 of 9 atoms not satisfied" {
		t.Errorf("summary %q", c.Summary)
	}
	want := []report.Annotation{
		{Path: "sets/2026.06/linux-x86_64", StartLine: 8, EndLine: 8, StartCol: 1, EndCol: 19, Level: report.Error,
			Title: "atom not satisfied by the build", Message: "<app-arch/zstd-1.5 is not satisfied: installed is app-arch/zstd-1.5.7:0/1::gentoo"},
		{Path: "sets/2026.06/linux-x86_64", StartLine: 9, EndLine: 9, StartCol: 1, EndCol: 19, Level: report.Error,
			Title: "atom not satisfied by the build", Message: "app-misc/jq::eessi is not satisfied: installed is app-misc/jq-1.0:0::gentoo"},
		{Path: "sets/2026.06/linux-x86_64", StartLine: 10, EndLine: 10, StartCol: 1, EndCol: 15, Level: report.Error,
			Title: "atom not satisfied by the build", Message: "!sys-devel/gcc is blocked but sys-devel/gcc-14.2.1_p20250301:14::gentoo is installed"},
	}
	if len(c.Annotations) != len(want) {
		t.Fatalf("annotations %+v", c.Annotations)
	}
	for i := range want {
		if c.Annotations[i] != want[i] {
			t.Errorf("annotation %d:\n got %+v\nwant %+v", i, c.Annotations[i], want[i])
		}
	}
	// Removing the package entirely reads as "not installed".
	if err := os.RemoveAll(filepath.Join(prefix, "var/db/pkg/app-misc")); err != nil {
		t.Fatal(err)
	}
	r = Run(context.Background(), input(prefix, "", set))
	if c := check(t, r, AtomsSatisfied); !strings.Contains(c.Details, "app-misc/jq is not installed") {
		t.Errorf("details:\n%s", c.Details)
	}
}

func TestTools(t *testing.T) {
	_, prefix := layers(t, "", baseSet)
	in := input(prefix, "", baseSet)
	r := Run(context.Background(), in)
	if c := check(t, r, Tools); !c.Passed || c.Summary != "all 9 tools run" || !strings.Contains(c.Details, "| lmod | `/usr/share/Lmod/libexec/lmod` | lmod (sys-cluster/lmod) 8.7.53 |") {
		t.Fatalf("%+v", c)
	}
	if err := os.Remove(filepath.Join(prefix, "usr/bin/make")); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(filepath.Join(prefix, p), []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("usr/bin/patch", "#!/bin/sh\necho 'patch: error while loading shared libraries: libattr.so.1' >&2\nexit 127\n")
	write("usr/bin/hang", "#!/bin/sh\nsleep 30\n")
	write("usr/bin/noexec", "not a program")
	os.Chmod(filepath.Join(prefix, "usr/bin/noexec"), 0o644)
	in.Tools = append(DefaultTools(), ToolNamed("hang"), ToolNamed("noexec"))
	in.Timeout = 300 * time.Millisecond
	start := time.Now()
	r = Run(context.Background(), in)
	c := check(t, r, Tools)
	if time.Since(start) > 10*time.Second {
		t.Errorf("a hanging tool held the check for %s", time.Since(start))
	}
	if c.Passed || c.Summary != "4 of 11 tools missing or broken: make, patch, hang, noexec" {
		t.Errorf("summary %q", c.Summary)
	}
	for _, w := range []string{
		"| make | - | missing (looked for usr/bin/make, bin/make, usr/sbin/make, sbin/make) |",
		"| patch | `/usr/bin/patch` | exit code 127: patch: error while loading shared libraries: libattr.so.1 |",
		"| hang | `/usr/bin/hang` | no answer within 300ms |",
		"| noexec | `/usr/bin/noexec` | cannot run:",
	} {
		if !strings.Contains(c.Details, w) {
			t.Errorf("details lack %q:\n%s", w, c.Details)
		}
	}
}

func TestLibc(t *testing.T) {
	head := baseSet + "=sys-libs/glibc-2.42 # new glibc\n"
	lower, prefix := layers(t, baseSet, head)
	in := input(prefix, lower, head)
	r := Run(context.Background(), in)
	c := check(t, r, LibcUnchanged)
	if c.Passed || r.LibcBefore != "2.41-r6" || r.LibcAfter != "2.42" {
		t.Fatalf("%+v %s→%s", c, r.LibcBefore, r.LibcAfter)
	}
	if len(c.Annotations) != 1 || c.Annotations[0].StartLine != 8 || !strings.Contains(c.Annotations[0].Message, "allow-libc-update") {
		t.Errorf("annotations %+v", c.Annotations)
	}
	in.AllowLibcUpdate = true
	if c := check(t, Run(context.Background(), in), LibcUnchanged); !c.Passed || !strings.Contains(c.Summary, "allowed by the PR") {
		t.Errorf("%+v", c)
	}
	// Without glibc in the database, libc.so.6's own version string counts.
	for _, d := range []string{lower, prefix} {
		if err := os.RemoveAll(filepath.Join(d, "var/db/pkg/sys-libs")); err != nil {
			t.Fatal(err)
		}
	}
	in.AllowLibcUpdate = false
	r = Run(context.Background(), in)
	if r.LibcBefore != "2.41" || r.LibcAfter != "2.42" || check(t, r, LibcUnchanged).Passed {
		t.Errorf("from libc.so.6: %s → %s", r.LibcBefore, r.LibcAfter)
	}
	// A first build has nothing to compare with.
	in.Lower = ""
	if c := check(t, Run(context.Background(), in), LibcUnchanged); !c.Passed {
		t.Errorf("%+v", c)
	}
}

func TestExtraTests(t *testing.T) {
	t.Setenv("COMPATBOT_SECRET", "s3cret")
	_, prefix := layers(t, "", baseSet)
	in := input(prefix, "", baseSet)
	in.Tests = [][]string{
		{"bash", "-c", `test -x "$COMPAT_PREFIX/usr/bin/gcc" && gcc --version && echo "secret=${COMPATBOT_SECRET:-none}"`},
		{"bash", "-c", "echo broken >&2; exit 4"},
		{"no-such-test"},
	}
	r := Run(context.Background(), in)
	c := check(t, r, ExtraTests)
	if c.Passed || c.Summary != "2 of 3 extra tests failed" {
		t.Errorf("summary %q", c.Summary)
	}
	for _, w := range []string{"exit code 0", "gcc (sys-devel/gcc) 14.2.1_p20250301", "secret=none", "exit code 4", "broken", "no-such-test: not found"} {
		if !strings.Contains(c.Details, w) {
			t.Errorf("details lack %q:\n%s", w, c.Details)
		}
	}
	in.Tests = in.Tests[:1]
	if c := check(t, Run(context.Background(), in), ExtraTests); !c.Passed || c.Summary != "1 extra tests passed" {
		t.Errorf("%+v", c)
	}
}

func TestWriteFiles(t *testing.T) {
	_, prefix := layers(t, "", baseSet)
	r := Run(context.Background(), input(prefix, "", baseSet))
	dir := t.TempDir()
	if err := r.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Passed != r.Passed || len(back.Checks) != 5 || back.Checks[2].Name != Tools || back.Target != target {
		t.Errorf("results.json round trip: %+v", back)
	}
	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil || !strings.HasPrefix(string(md), "# compat tests: 2026.06 linux-x86_64\n\n| check | result | summary |") {
		t.Errorf("results.md: %v\n%s", err, md)
	}
}

func TestUnreadableDatabase(t *testing.T) {
	prefix := t.TempDir()
	if err := os.MkdirAll(filepath.Join(prefix, "var/db/pkg/sys-libs/not-a-version"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := Run(context.Background(), input(prefix, "", baseSet))
	if r.Passed || check(t, r, AtomsSatisfied).Passed || !strings.Contains(check(t, r, AtomsSatisfied).Summary, "cannot read the package database") {
		t.Errorf("%+v", r.Checks)
	}
}

// TestToolsNamed: the repo config's tools: names keep the built-in
// definitions (Lmod is no program in a bin dir); other names are looked up
// in the bin dirs.
func TestToolsNamed(t *testing.T) {
	got := ToolsNamed([]string{"lmod", "hello", "bash"})
	if len(got) != 3 || got[0].Name != "lmod" || got[0].Paths[0] != "usr/share/Lmod/libexec/lmod" || len(got[0].Args) != 2 ||
		got[1].Name != "hello" || got[1].Paths[0] != "usr/bin/hello" || got[2].Paths[1] != "bin/bash" {
		t.Errorf("ToolsNamed = %+v", got)
	}
}

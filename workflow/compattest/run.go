package compattest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/vdb"
)

// outputLimit caps what a tool or test may put into the report.
const outputLimit = 64 * 1024

// searchPath is the PATH of tools and extra tests: the Prefix's programs
// first.
func searchPath(prefix string) string {
	return strings.Join([]string{prefix + "/usr/bin", prefix + "/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}, ":")
}

// env is the whole environment of tools and extra tests: nothing from the
// bot's environment.
func env(prefix string) []string {
	return []string{
		"PATH=" + searchPath(prefix),
		"LANG=C.UTF-8",
		"HOME=" + os.TempDir(),
		"COMPAT_PREFIX=" + prefix,
	}
}

type limitedBuffer struct {
	bytes.Buffer
	cut bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := outputLimit - l.Len(); room < len(p) {
		if room > 0 {
			l.Buffer.Write(p[:room])
		}
		l.cut = true
		return len(p), nil
	}
	return l.Buffer.Write(p)
}

type ran struct {
	out      string
	code     int
	timedOut bool
	err      error  // could not start
	signal   string // the signal that killed it, e.g. "illegal instruction"
}

// run executes argv with a time limit in its own process group, killing
// the whole group when the limit is reached.
func run(ctx context.Context, argv []string, prefix, dir string, timeout time.Duration) ran {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	path := argv[0]
	if !strings.Contains(path, "/") {
		var err error
		if path, err = build.LookPath(path, searchPath(prefix)); err != nil {
			return ran{err: fmt.Errorf("%s: not found in the Prefix or the host's PATH", argv[0])}
		}
	}
	var out limitedBuffer
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env(prefix), dir, &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild holding the output pipe must not hang the check.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	r := ran{out: strings.TrimRight(out.String(), "\n")}
	if out.cut {
		r.out += "\n[output truncated]"
	}
	if ctx.Err() == context.DeadlineExceeded {
		r.timedOut, r.code = true, -1
		return r
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.signal = ws.Signal().String()
		}
	default:
		r.err = err
	}
	return r
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if len(l) > 120 {
		l = l[:120] + "…"
	}
	return l
}

func tools(ctx context.Context, in Input) CheckResult {
	c := CheckResult{Name: Tools, Passed: true}
	emu := in.Emulator
	if emu == nil {
		emu = BaselineEmulator(in.Target.Arch)
	}
	emulated := false
	var rows, bad []string
	for _, t := range in.Tools {
		found := ""
		for _, p := range t.Paths {
			if strings.HasPrefix(p, "/") || strings.Contains(p, "..") {
				continue
			}
			full := filepath.Join(in.Prefix, p)
			if st, err := os.Stat(full); err == nil && !st.IsDir() {
				found = full
				break
			}
		}
		if found == "" {
			bad = append(bad, t.Name)
			rows = append(rows, fmt.Sprintf("| %s | - | missing (looked for %s) |", t.Name, strings.Join(t.Paths, ", ")))
			continue
		}
		args := t.Args
		if args == nil {
			args = []string{"--version"}
		}
		argv := append([]string{found}, args...)
		if len(emu) > 0 && isELF(found) {
			argv = append(append([]string(nil), emu...), argv...)
			emulated = true
		}
		r := run(ctx, argv, in.Prefix, in.Prefix, in.Timeout)
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(found, in.Prefix), "/")
		switch {
		case r.err != nil:
			bad = append(bad, t.Name)
			rows = append(rows, fmt.Sprintf("| %s | `%s` | cannot run: %s |", t.Name, rel, mdCell(r.err.Error())))
		case r.timedOut:
			bad = append(bad, t.Name)
			rows = append(rows, fmt.Sprintf("| %s | `%s` | no answer within %s |", t.Name, rel, in.Timeout))
		case r.signal != "":
			bad = append(bad, t.Name)
			rows = append(rows, fmt.Sprintf("| %s | `%s` | killed by signal: %s%s: %s |", t.Name, rel, r.signal, under(emu, found), mdCell(firstLine(r.out))))
		case r.code != 0:
			bad = append(bad, t.Name)
			rows = append(rows, fmt.Sprintf("| %s | `%s` | exit code %d: %s |", t.Name, rel, r.code, mdCell(firstLine(r.out))))
		default:
			rows = append(rows, fmt.Sprintf("| %s | `%s` | %s |", t.Name, rel, mdCell(firstLine(r.out))))
		}
	}
	c.Details = "| tool | path | `--version` |\n|---|---|---|\n" + strings.Join(rows, "\n") + "\n"
	if emulated {
		c.Details += "\nPrograms (ELF) ran under `" + strings.Join(emu, " ") + "`, the oldest CPU of the arch.\n"
	}
	if len(bad) > 0 {
		c.Passed = false
		c.Summary = fmt.Sprintf("%d of %d tools missing or broken: %s", len(bad), len(in.Tools), strings.Join(bad, ", "))
	} else {
		c.Summary = fmt.Sprintf("all %d tools run", len(in.Tools))
	}
	return c
}

var releaseVersion = regexp.MustCompile(`release version ([0-9][0-9.]*[0-9])`)

// libcVersion is glibc's version from the package database, or from the
// "release version X" string every libc.so.6 carries when the database has
// no glibc (a Prefix built without Portage's record of it).
func libcVersion(root string, installed []vdb.Installed) string {
	for _, i := range installed {
		if i.Package.CP() == "sys-libs/glibc" {
			return i.Package.Version.String()
		}
	}
	for _, p := range []string{"lib64/libc.so.6", "usr/lib64/libc.so.6", "lib/libc.so.6", "usr/lib/libc.so.6"} {
		f, err := os.Open(filepath.Join(root, p))
		if err != nil {
			continue
		}
		// The string sits in .rodata, well inside the first few MB.
		b := make([]byte, 8<<20)
		n, _ := f.Read(b)
		f.Close()
		if m := releaseVersion.FindSubmatch(b[:n]); m != nil {
			return string(m[1])
		}
	}
	return ""
}

func libc(in Input, lower, upper []vdb.Installed) (before, after string, c CheckResult) {
	c = CheckResult{Name: LibcUnchanged, Passed: true}
	if in.Lower != "" {
		before = libcVersion(in.Lower, lower)
	}
	after = libcVersion(in.Prefix, upper)
	switch {
	case before == "":
		c.Summary = fmt.Sprintf("glibc %s (the lower layer has none to compare with)", orDash(after))
	case after == before:
		c.Summary = "glibc " + after + " unchanged"
	case in.AllowLibcUpdate:
		c.Summary = fmt.Sprintf("glibc %s → %s, allowed by the PR (compat: allow-libc-update)", before, orDash(after))
	default:
		c.Passed = false
		c.Summary = fmt.Sprintf("glibc changed %s → %s; a libc change needs the PR to say `compat: allow-libc-update`", before, orDash(after))
		if in.Set != nil {
			for _, e := range in.Set.Entries {
				if e.Atom != nil && e.Atom.CP() == "sys-libs/glibc" {
					c.Annotations = append(c.Annotations, report.Annotation{
						Path: in.Set.Path, StartLine: e.Line, EndLine: e.Line, Level: report.Error,
						Title: "glibc changed", Message: c.Summary,
					})
				}
			}
		}
	}
	return before, after, c
}

func extraTests(ctx context.Context, in Input) CheckResult {
	c := CheckResult{Name: ExtraTests, Passed: true}
	if len(in.Tests) == 0 {
		c.Summary = "no extra tests configured"
		return c
	}
	dir := in.WorkDir
	if dir == "" {
		dir = in.Prefix
	}
	failed := 0
	var b strings.Builder
	for i, argv := range in.Tests {
		if len(argv) == 0 {
			failed++
			fmt.Fprintf(&b, "**tests[%d]**: empty command\n\n", i)
			continue
		}
		r := run(ctx, argv, in.Prefix, dir, in.Timeout)
		verdict := fmt.Sprintf("exit code %d", r.code)
		switch {
		case r.err != nil:
			verdict = "cannot run: " + r.err.Error()
		case r.timedOut:
			verdict = fmt.Sprintf("no result within %s", in.Timeout)
		}
		if r.err != nil || r.timedOut || r.code != 0 {
			failed++
		}
		fmt.Fprintf(&b, "**`%s`**: %s\n\n", strings.Join(argv, " "), verdict)
		if r.out != "" {
			fmt.Fprintf(&b, "```\n%s\n```\n\n", lastLines(r.out, 50))
		}
	}
	c.Details = b.String()
	if failed > 0 {
		c.Passed = false
		c.Summary = fmt.Sprintf("%d of %d extra tests failed", failed, len(in.Tests))
	} else {
		c.Summary = fmt.Sprintf("%d extra tests passed", len(in.Tests))
	}
	return c
}

func lastLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = append([]string{fmt.Sprintf("[%d lines before]", len(l)-n)}, l[len(l)-n:]...)
	}
	return strings.ReplaceAll(strings.Join(l, "\n"), "```", "'''")
}

// BaselineEmulator is the qemu-user command that runs a program on the
// oldest CPU model of the target's arch (Debian's qemu-user package), so a
// tool built for a newer CPU dies with SIGILL in the tools check; nil when
// qemu-user is not installed or the arch has no known baseline model.
func BaselineEmulator(arch string) []string {
	var emu []string
	switch arch {
	case "x86_64":
		emu = []string{"qemu-x86_64", "-cpu", "qemu64"} // x86-64 v1: SSE2, no SSE4/AVX
	case "aarch64":
		emu = []string{"qemu-aarch64", "-cpu", "cortex-a53"} // Armv8.0-A
	default:
		return nil
	}
	p, err := exec.LookPath(emu[0])
	if err != nil {
		return nil
	}
	emu[0] = p
	return emu
}

func isELF(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	_, err = io.ReadFull(f, magic[:])
	return err == nil && string(magic[:]) == "\x7fELF"
}

func under(emu []string, found string) string {
	if len(emu) > 0 && isELF(found) {
		return " under " + filepath.Base(emu[0]) + " " + strings.Join(emu[1:], " ")
	}
	return ""
}

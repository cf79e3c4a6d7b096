package compattest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/compatbot/compatbot/sets"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		arm           bool
		mnemonic, ops string
		want          string
	}{
		{false, "mov", "eax,DWORD PTR [rip+0x2ed6]", ""},
		{false, "movdqa", "xmm0,XMMWORD PTR [rsp]", ""}, // SSE2 is x86-64 v1
		{false, "paddd", "xmm0,xmm1", ""},
		{false, "tzcnt", "eax,edi", ""}, // GCC's generic "rep bsf"
		{false, "endbr64", "", ""},
		{false, "popcnt", "eax,edi", "POPCNT"},
		{false, "pshufb", "xmm0,xmm1", "SSSE3"},
		{false, "pminsd", "xmm0,xmm1", "SSE4.1"},
		{false, "crc32", "eax,BYTE PTR [rdi]", "SSE4.2"},
		{false, "vmovdqa", "xmm0,XMMWORD PTR [rsp]", "AVX"},
		{false, "vmulps", "xmm0,xmm1,xmm2", "AVX"},
		{false, "vaddps", "ymm0,ymm1,ymm2", "AVX"},
		{false, "vpaddd", "ymm2,ymm1,ymm0", "AVX2"},
		{false, "vfmadd231ps", "xmm0,xmm1,xmm2", "FMA"},
		{false, "vpaddd", "zmm0,zmm1,zmm2", "AVX-512"},
		{false, "vpaddd", "xmm0{k1},xmm1,xmm2", "AVX-512"},
		{false, "shlx", "eax,edi,esi", "BMI2"},
		{false, "vmcall", "", ""},
		{true, "ldr", "x0, [x1]", ""},
		{true, "ldaxr", "w0, [x1]", ""}, // Armv8.0 exclusive load
		{true, "ldaddal", "w1, w0, [x2]", "LSE atomics (armv8.1)"},
		{true, "casal", "w1, w2, [x0]", "LSE atomics (armv8.1)"},
		{true, "ldaprb", "w0, [x1]", "RCpc (armv8.3)"},
		{true, "sdot", "v0.4s, v1.16b, v2.16b", "dot product (armv8.2)"},
		{true, "add", "z0.s, z1.s, z2.s", "SVE"},
	} {
		got := ClassifyX86(tc.mnemonic, tc.ops)
		if tc.arm {
			got = ClassifyARM64(tc.mnemonic, tc.ops)
		}
		if got != tc.want {
			t.Errorf("classify(%q, %q) = %q, want %q", tc.mnemonic, tc.ops, got, tc.want)
		}
	}
}

// TestGenericCPU compiles real programs, one for the baseline and one
// with an AVX2 instruction, and checks an upper layer holding them.
func TestGenericCPU(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the programs below are x86-64")
	}
	for _, tool := range []string{"cc", "objdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (gcc, binutils): %v", tool, err)
		}
	}
	upper := t.TempDir()
	compile := func(name, body string) {
		src := filepath.Join(t.TempDir(), name+".c")
		if err := os.WriteFile(src, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(upper, "usr", "bin", name)
		os.MkdirAll(filepath.Dir(out), 0o755)
		if b, err := exec.Command("cc", "-O2", src, "-o", out).CombinedOutput(); err != nil {
			t.Fatalf("cc: %v\n%s", err, b)
		}
	}
	compile("plain", "#include <stdio.h>\nint main(int c, char **v) { int s = 0; for (int i = 0; i < c; i++) s += __builtin_ctz(i + 1); printf(\"%d\\n\", s); return 0; }\n")
	os.WriteFile(filepath.Join(upper, "usr", "bin", "script"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	in := Input{Target: sets.Target{Version: "2026.06", OS: "linux", Arch: "x86_64"}, Prefix: upper, Upper: upper,
		Set: sets.ParseSetFile("sets/2026.06/linux-x86_64", []byte("app-misc/fastmath\n"))}
	c := genericCPU(context.Background(), in, nil)
	if !c.Passed || c.Summary != "1 ELF files checked: all run on x86-64 v1" {
		t.Fatalf("baseline program: %+v", c)
	}

	compile("fastmath", "int main(void) { __asm__ volatile(\"vpaddd %%ymm0, %%ymm1, %%ymm2\" ::: \"xmm0\", \"xmm1\", \"xmm2\"); return 0; }\n")
	c = genericCPU(context.Background(), in, nil)
	if c.Passed {
		t.Fatalf("AVX2 program passed: %+v", c)
	}
	if c.Summary != "1 of 2 ELF files need more than x86-64 v1" {
		t.Errorf("summary %q", c.Summary)
	}
	if len(c.Annotations) != 1 || !strings.Contains(c.Annotations[0].Message, "usr/bin/fastmath uses AVX2 (vpaddd ymm2,ymm1,ymm0), beyond x86-64 v1") {
		t.Errorf("annotations %+v", c.Annotations)
	}
	if !strings.Contains(c.Details, "| `usr/bin/fastmath` | - | AVX2 | `vpaddd ymm2,ymm1,ymm0` |") {
		t.Errorf("details:\n%s", c.Details)
	}
}

// TestToolsOnBaselineCPU runs a tool built with an AVX2 instruction under
// qemu-user's most basic x86-64 model: it dies with SIGILL there, and the
// tools check says so, while natively (this host) it may well run.
func TestToolsOnBaselineCPU(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("x86-64 programs")
	}
	if BaselineEmulator("x86_64") == nil {
		t.Fatal("qemu-x86_64 is needed (Debian package qemu-user; .ci/run installs it)")
	}
	prefix := t.TempDir()
	bin := filepath.Join(prefix, "usr", "bin")
	os.MkdirAll(bin, 0o755)
	for name, body := range map[string]string{
		"fastmath": "int main(void) { __asm__ volatile(\"vpaddd %%ymm0, %%ymm1, %%ymm2\" ::: \"xmm0\", \"xmm1\", \"xmm2\"); return 0; }\n",
		"plain":    "#include <stdio.h>\nint main(void) { puts(\"plain 1.0\"); return 0; }\n",
	} {
		src := filepath.Join(t.TempDir(), name+".c")
		os.WriteFile(src, []byte(body), 0o644)
		if b, err := exec.Command("cc", src, "-o", filepath.Join(bin, name)).CombinedOutput(); err != nil {
			t.Fatalf("cc: %v\n%s", err, b)
		}
	}
	in := Input{Target: sets.Target{Version: "2026.06", OS: "linux", Arch: "x86_64"}, Prefix: prefix,
		Tools: []Tool{ToolNamed("plain"), ToolNamed("fastmath")}, Timeout: time.Minute}
	c := tools(context.Background(), in)
	if c.Passed || c.Summary != "1 of 2 tools missing or broken: fastmath" {
		t.Fatalf("tools check: %+v", c)
	}
	for _, want := range []string{"| plain | `/usr/bin/plain` | plain 1.0 |", "| fastmath | `/usr/bin/fastmath` | killed by signal: illegal instruction under qemu-x86_64 -cpu qemu64",
		"ran under `" + BaselineEmulator("x86_64")[0] + " -cpu qemu64`"} {
		if !strings.Contains(c.Details, want) {
			t.Errorf("details lack %q:\n%s", want, c.Details)
		}
	}
}

package compattest

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/vdb"
)

// GenericCPU is the check that every ELF file the build added runs on the
// target's baseline CPU: x86-64 v1 (SSE2, nothing newer) for x86_64,
// Armv8.0-A for aarch64. A compat layer is used on every CPU of its arch,
// so a program compiled with -march=native on a new build host would crash
// with SIGILL on an older node.
const GenericCPU = "generic-cpu"

// Baseline names the oldest CPU a target's compat layer must run on.
func Baseline(arch string) string {
	switch arch {
	case "x86_64":
		return "x86-64 v1"
	case "aarch64":
		return "armv8.0-a"
	}
	return ""
}

// Finding is one instruction beyond the baseline in one file.
type Finding struct {
	Path        string // relative to the Prefix
	ISA         string // the extension, e.g. "AVX2"
	Instruction string // the first one seen, as objdump prints it
}

// x86 instructions beyond x86-64 v1, by extension, as objdump -M intel
// prints them. Not listed on purpose: tzcnt (F3 0F BC), which GCC emits
// for generic x86-64 as "rep bsf" and older CPUs execute as bsf; endbr64
// and other hint-space instructions, which are NOPs there.
var x86ISA = map[string]string{}

func init() {
	for isa, ms := range map[string]string{
		"SSE3":   "addsubpd addsubps haddpd haddps hsubpd hsubps lddqu movddup movshdup movsldup fisttp monitor mwait",
		"SSSE3":  "pabsb pabsw pabsd palignr phaddw phaddd phaddsw phsubw phsubd phsubsw pmaddubsw pmulhrsw pshufb psignb psignw psignd",
		"SSE4.1": "blendpd blendps blendvpd blendvps dppd dpps extractps insertps movntdqa mpsadbw packusdw pblendvb pblendw pcmpeqq pextrb pextrd pextrq phminposuw pinsrb pinsrd pinsrq pmaxsb pmaxsd pmaxud pmaxuw pminsb pminsd pminud pminuw pmovsxbw pmovsxbd pmovsxbq pmovsxwd pmovsxwq pmovsxdq pmovzxbw pmovzxbd pmovzxbq pmovzxwd pmovzxwq pmovzxdq pmuldq pmulld ptest roundpd roundps roundsd roundss",
		"SSE4.2": "pcmpestri pcmpestrm pcmpistri pcmpistrm pcmpgtq crc32",
		"POPCNT": "popcnt",
		"LZCNT":  "lzcnt",
		"BMI1":   "andn bextr blsi blsmsk blsr",
		"BMI2":   "bzhi mulx pdep pext rorx sarx shlx shrx",
		"MOVBE":  "movbe",
		"AES":    "aesenc aesenclast aesdec aesdeclast aesimc aeskeygenassist",
		"PCLMUL": "pclmulqdq",
	} {
		for _, m := range strings.Fields(ms) {
			x86ISA[m] = isa
		}
	}
}

// aarch64 instructions beyond Armv8.0-A: LSE atomics (8.1), RCpc (8.3),
// dot product (8.2/8.4), and SVE.
var (
	armLSE    = regexp.MustCompile(`^(cas|casp|ldadd|ldclr|ldeor|ldset|ldsmax|ldsmin|ldumax|ldumin|swp|stadd|stclr|steor|stset|stsmax|stsmin|stumax|stumin)(a|l|al)?(b|h)?$`)
	armRCpc   = regexp.MustCompile(`^ldapr(b|h)?$`)
	armDot    = regexp.MustCompile(`^(sdot|udot|usdot|sudot)$`)
	armSVEReg = regexp.MustCompile(`\bz([0-9]|[12][0-9]|3[01])\.[bhsdq]\b`)
	x86Wide   = regexp.MustCompile(`\b([yz])mm([0-9]|[12][0-9]|3[01])\b`)
	x86Mask   = regexp.MustCompile(`\{k[1-7]\}`)
)

// notVEX are the x86 mnemonics starting with v that are not AVX: segment
// verification and the VMX instructions (which a program in a compat layer
// never runs; they are not a CPU-generation question).
var notVEX = map[string]bool{"verr": true, "verw": true, "vmcall": true, "vmlaunch": true, "vmresume": true,
	"vmxoff": true, "vmxon": true, "vmread": true, "vmwrite": true, "vmptrld": true, "vmptrst": true, "vmclear": true, "vmfunc": true}

// ClassifyX86 says which extension beyond x86-64 v1 an instruction (mnemonic
// and operands, Intel syntax) needs, "" for none.
func ClassifyX86(mnemonic, operands string) string {
	if m := x86Wide.FindStringSubmatch(operands); m != nil {
		if m[1] == "z" {
			return "AVX-512"
		}
		if strings.HasPrefix(mnemonic, "vp") || strings.HasPrefix(mnemonic, "vperm") || strings.HasPrefix(mnemonic, "vpbroadcast") || mnemonic == "vinserti128" || mnemonic == "vextracti128" || strings.HasPrefix(mnemonic, "vgather") {
			return "AVX2"
		}
		return "AVX"
	}
	if x86Mask.MatchString(operands) {
		return "AVX-512"
	}
	switch {
	case strings.HasPrefix(mnemonic, "vfmadd"), strings.HasPrefix(mnemonic, "vfmsub"), strings.HasPrefix(mnemonic, "vfnmadd"), strings.HasPrefix(mnemonic, "vfnmsub"):
		return "FMA"
	case mnemonic == "vcvtph2ps", mnemonic == "vcvtps2ph":
		return "F16C"
	case strings.HasPrefix(mnemonic, "v") && !notVEX[mnemonic]:
		// Any other VEX-encoded instruction (vmovdqa, vxorps, ...).
		return "AVX"
	}
	if strings.HasPrefix(mnemonic, "crc32") {
		return "SSE4.2"
	}
	return x86ISA[mnemonic]
}

// ClassifyARM64 is ClassifyX86 for aarch64 beyond Armv8.0-A.
func ClassifyARM64(mnemonic, operands string) string {
	switch {
	case armSVEReg.MatchString(operands):
		return "SVE"
	case armLSE.MatchString(mnemonic):
		return "LSE atomics (armv8.1)"
	case armRCpc.MatchString(mnemonic):
		return "RCpc (armv8.3)"
	case armDot.MatchString(mnemonic):
		return "dot product (armv8.2)"
	}
	return ""
}

// objdump line: "  401126:\tvpaddd ymm2,ymm1,ymm0" (with --no-show-raw-insn).
var insnLine = regexp.MustCompile(`^\s*[0-9a-f]+:\s+(?:(?:rex\S*|lock|rep\S*|notrack|bnd|data16|addr32|cs|ds|es|fs|gs|ss)\s+)*([a-z][a-z0-9.]*)\s*(.*)$`)

// ScanELF disassembles one ELF file's executable sections with objdump
// and returns the extensions beyond the baseline it uses, each with the
// first instruction seen. Files that are not ELF, or of another machine,
// yield nothing.
func ScanELF(ctx context.Context, objdump, path string) (map[string]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, nil // not ELF (scripts, archives, data)
	}
	machine := f.Machine
	f.Close()
	var classify func(m, ops string) string
	args := []string{"-d", "--no-show-raw-insn"}
	switch machine {
	case elf.EM_X86_64:
		classify = ClassifyX86
		args = append(args, "-M", "intel") // no AT&T size suffixes
	case elf.EM_AARCH64:
		classify = ClassifyARM64
	default:
		return nil, nil
	}
	cmd := exec.CommandContext(ctx, objdump, append(args, path)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w (install binutils)", objdump, err)
	}
	found := map[string]string{}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		m := insnLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ops := m[2]
		if i := strings.Index(ops, "#"); i >= 0 {
			ops = ops[:i] // objdump's symbolic comment
		}
		if isa := classify(m[1], ops); isa != "" {
			if _, ok := found[isa]; !ok {
				found[isa] = strings.TrimSpace(m[1] + " " + strings.TrimSpace(ops))
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("objdump %s: %v: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	return found, nil
}

// genericCPU scans every regular file of the upper layer (what the build
// added or changed) and fails on instructions beyond the target's baseline,
// annotating the set line of the package that installed the file.
func genericCPU(ctx context.Context, in Input, upper []vdb.Installed) CheckResult {
	c := CheckResult{Name: GenericCPU}
	base := Baseline(in.Target.Arch)
	if base == "" {
		c.Passed = true
		c.Summary = "no baseline known for " + in.Target.Arch + "; not checked"
		return c
	}
	objdump, err := exec.LookPath("objdump")
	if err != nil {
		c.Summary = "objdump is needed to check the machine code (install binutils)"
		return c
	}
	var findings []Finding
	var scanned int
	err = filepath.WalkDir(in.Upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(in.Upper, p)
		if strings.HasPrefix(rel, "var/db/pkg/") {
			return nil
		}
		isas, err := ScanELF(ctx, objdump, p)
		if err != nil {
			return err
		}
		if isas != nil {
			scanned++
		}
		for isa, insn := range isas {
			findings = append(findings, Finding{Path: filepath.ToSlash(rel), ISA: isa, Instruction: insn})
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.Summary = "cannot scan the build's files: " + err.Error()
		return c
	}
	sort.Slice(findings, func(i, j int) bool {
		if findings[i].Path != findings[j].Path {
			return findings[i].Path < findings[j].Path
		}
		return findings[i].ISA < findings[j].ISA
	})
	if len(findings) == 0 {
		c.Passed = true
		c.Summary = fmt.Sprintf("%d ELF files checked: all run on %s", scanned, base)
		return c
	}
	owners := fileOwners(in.Prefix, upper)
	var d strings.Builder
	d.WriteString("| file | package | instruction set | first instruction |\n|---|---|---|---|\n")
	for _, f := range findings {
		owner := owners["/"+f.Path]
		fmt.Fprintf(&d, "| `%s` | %s | %s | `%s` |\n", f.Path, orDash(owner), f.ISA, f.Instruction)
		a := report.Annotation{Path: in.Set.Path, StartLine: 1, EndLine: 1, Level: report.Error,
			Title:   "built for a newer CPU than " + base,
			Message: fmt.Sprintf("%s uses %s (%s), beyond %s: it would crash with SIGILL on older CPUs of this arch", f.Path, f.ISA, f.Instruction, base)}
		if owner != "" {
			a.Message = owner + ": " + a.Message
			for _, e := range in.Set.Entries {
				if e.Atom != nil && e.Atom.CP() == owner {
					a.StartLine, a.EndLine = e.Line, e.Line
				}
			}
		}
		c.Annotations = append(c.Annotations, a)
	}
	c.Summary = fmt.Sprintf("%d of %d ELF files need more than %s", countFiles(findings), scanned, base)
	c.Details = d.String()
	return c
}

func countFiles(fs []Finding) int {
	n := 0
	for i, f := range fs {
		if i == 0 || fs[i-1].Path != f.Path {
			n++
		}
	}
	return n
}

// fileOwners maps a file (absolute within the Prefix, "/usr/bin/x") to
// the cat/pkg whose CONTENTS lists it. CONTENTS records paths under the
// EPREFIX, which is cut off using each package's EPREFIX file.
func fileOwners(prefix string, pkgs []vdb.Installed) map[string]string {
	out := map[string]string{}
	for _, p := range pkgs {
		ents, err := p.ReadContents()
		if err != nil {
			continue
		}
		ep := ""
		if b, err := os.ReadFile(filepath.Join(p.Dir, "EPREFIX")); err == nil {
			ep = strings.TrimSpace(string(b))
		}
		for _, e := range ents {
			if e.Type == vdb.Obj || e.Type == vdb.Sym {
				out[strings.TrimPrefix(e.Path, ep)] = p.Package.CP()
			}
		}
	}
	return out
}

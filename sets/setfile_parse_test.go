package sets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSetFileReasons(t *testing.T) {
	src := `# Lmod provides the module command
app-admin/lmod
dev-lua/luaposix # Lmod needs it

# compilers
sys-devel/gcc
sys-devel/binutils
dev-lang/python::gentoo
sys-devel/gcc
>=bad/atom
  @eessi-extra    # site tools
`
	sf := ParseSetFile("sets/2025.06/linux-x86_64", []byte(src))
	got := LintSetFile(sf)
	var lines []string
	for _, d := range got {
		lines = append(lines, d.String())
	}
	want := []string{
		`sets/2025.06/linux-x86_64:9:1: sys-devel/gcc is already in this set at line 6`,
		`sets/2025.06/linux-x86_64:10:7: invalid entry ">=bad/atom": operator ">=" needs a version (e.g. >=cat/pkg-1.0)`,
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	if r := sf.Entries[0].Reason; r != "Lmod provides the module command" {
		t.Errorf("block reason = %q", r)
	}
	if r := sf.Entries[1].Reason; r != "Lmod needs it" {
		t.Errorf("trailing reason = %q", r)
	}
	if e := sf.Entries[len(sf.Entries)-1]; e.SetRef != "eessi-extra" || e.Col != 3 {
		t.Errorf("set ref = %+v", e)
	}
}

func TestMissingReasonIsError(t *testing.T) {
	sf := ParseSetFile("s", []byte("sys-apps/portage\n"))
	d := LintSetFile(sf)
	if len(d) != 1 || d[0].Code != "missing-reason" || d[0].String()[:6] != "s:1:1:" {
		t.Fatalf("got %v", d)
	}
}

// TestRealEESSISetsLint parses every real EESSI set file: they carry no
// reasons, so each entry must come back as a missing-reason error, not a crash.
func TestRealEESSISetsLint(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(gentooData, "eessi/sets/*"))
	if err != nil || len(files) < 20 {
		t.Fatalf("EESSI sets missing (%d files): %v", len(files), err)
	}
	total := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sf := ParseSetFile(filepath.Base(f), data)
		missing := 0
		for _, d := range LintSetFile(sf) {
			switch d.Code {
			case "missing-reason":
				missing++
			case "invalid-atom":
				t.Errorf("%s", d)
			}
		}
		if missing != len(sf.Entries) {
			t.Errorf("%s: %d of %d entries reported without reason", f, missing, len(sf.Entries))
		}
		total += missing
		if !strings.HasPrefix(sf.Name, "eessi-") {
			t.Errorf("name %q", sf.Name)
		}
	}
	if total < 300 {
		t.Errorf("only %d missing reasons over all EESSI sets", total)
	}
}

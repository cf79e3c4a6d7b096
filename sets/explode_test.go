package sets

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	ebuildOnce  sync.Once
	ebuildList  []string
	portageList []string
	ebuildErr   error
)

// loadExplodeVectors decompresses the 74,122 real package-versions and how
// Portage split them, once per test binary.
func loadExplodeVectors(tb testing.TB) ([]string, []string) {
	ebuildOnce.Do(func() {
		dir := filepath.Join(gentooData, "portage-utils/atom_explode")
		read := func(name string) ([]string, error) {
			out, err := exec.Command("xz", "-dc", filepath.Join(dir, name)).Output()
			if err != nil {
				return nil, fmt.Errorf("xz -dc %s (install xz-utils; shared/ must sit beside the checkout): %w", name, err)
			}
			return strings.Split(strings.TrimRight(string(bytes.TrimSpace(out)), "\n"), "\n"), nil
		}
		if ebuildList, ebuildErr = read("ebuildlist.xz"); ebuildErr == nil {
			portageList, ebuildErr = read("portageatoms.xz")
		}
	})
	if ebuildErr != nil {
		tb.Fatal(ebuildErr)
	}
	return ebuildList, portageList
}

// TestExplodeMatchesPortage checks that every package-version splits into
// the category, name, version and revision Portage gives.
func TestExplodeMatchesPortage(t *testing.T) {
	ebuilds, portage := loadExplodeVectors(t)
	if len(ebuilds) != 74122 {
		t.Fatalf("ebuildlist has %d entries, want 74122", len(ebuilds))
	}
	want := make(map[string]string, len(portage))
	for _, l := range portage {
		in, split, ok := strings.Cut(l, " -> ")
		if ok {
			want[in] = split
		}
	}
	bad := 0
	for _, in := range ebuilds {
		w, ok := want[in]
		if !ok {
			t.Fatalf("portageatoms.xz has no line for %q", in)
		}
		p, err := parsePackage(in, false)
		if err != nil {
			t.Errorf("%q: %v (Portage: %s)", in, err, w)
			bad++
		} else {
			cat := p.Category
			if cat == "" {
				cat = "null"
			}
			v := p.Version
			v.Revision, v.RevisionGiven = 0, false
			pv := v.String()
			got := fmt.Sprintf("%s / [%s-%s] %s - %s-r%d [%s] [r%d]", cat, p.Name, p.Version.String(), p.Name, pv, p.Version.Revision, pv, p.Version.Revision)
			// Portage prints P with the version as written, without -rN.
			got = strings.Replace(got, "["+p.Name+"-"+p.Version.String()+"]", "["+p.Name+"-"+pv+"]", 1)
			if got != w {
				t.Errorf("%q: got %s, Portage %s", in, got, w)
				bad++
			}
		}
		if bad > 20 {
			t.Fatal("too many mismatches")
		}
	}
}

func BenchmarkParseEbuildList(b *testing.B) {
	ebuilds, _ := loadExplodeVectors(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, in := range ebuilds {
			if _, err := parsePackage(in, false); err != nil {
				b.Fatal(err)
			}
		}
	}
}

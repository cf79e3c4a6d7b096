package compattest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/vdb"
)

// BenchmarkAtomsAndChanges1000 checks a 1,000-entry set against 1,000
// installed packages and diffs them against a lower layer where half differ.
func BenchmarkAtomsAndChanges1000(b *testing.B) {
	var set strings.Builder
	var lower, upper []vdb.Installed
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&set, ">=cat-%d/pkg%d-1.0::gentoo # reason\n", i%40, i)
		up, err := sets.ParsePackage(fmt.Sprintf("cat-%d/pkg%d-1.%d::gentoo", i%40, i, i%2))
		if err != nil {
			b.Fatal(err)
		}
		lo := up
		lo.Version, _ = sets.ParseVersion("1.0")
		upper = append(upper, vdb.Installed{Package: up})
		lower = append(lower, vdb.Installed{Package: lo})
	}
	sf := sets.ParseSetFile("sets/x", []byte(set.String()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if c := Satisfied(sf, upper); !c.Passed {
			b.Fatal(c.Summary)
		}
		if ch, _ := packageChanges(lower, upper); len(ch) != 500 {
			b.Fatal(len(ch))
		}
	}
}

package checks

import (
	"fmt"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/workflow/report"
)

func BenchmarkRenderLong(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < 200000; i++ {
		fmt.Fprintf(&sb, "| sys-libs/pkg%d | upgraded | 1.%d | 1.%d |\n", i, i, i+1)
	}
	c := report.Check{Title: "many", Summary: sb.String(), Text: sb.String()}
	b.SetBytes(int64(2 * sb.Len()))
	for b.Loop() {
		if !Render(c, "https://x/reports/1").Truncated {
			b.Fatal("not truncated")
		}
	}
}

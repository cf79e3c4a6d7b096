package commands

import "testing"

func BenchmarkParse(b *testing.B) {
	body := "Thanks, the xz update looks right.\n\n```\n/deploy prod\n```\n> /deploy test\n\n/deploy test\n/rebuild x86_64 aarch64\n/deploi prod\n/cc @eessi/compat-maintainers\n"
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if len(Parse(body)) != 4 {
			b.Fatal("unexpected parse")
		}
	}
}

package vdb

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkRead1000 reads a database of 1,000 packages with 20 files each,
// about the size of a compat layer's.
func BenchmarkRead1000(b *testing.B) {
	root := b.TempDir()
	for i := 0; i < 1000; i++ {
		dir := filepath.Join(root, DBPath, fmt.Sprintf("cat-%d", i%40), fmt.Sprintf("pkg%d-1.%d.%d-r1", i, i%7, i%13))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		contents := "dir /usr\ndir /usr/bin\n"
		for f := 0; f < 20; f++ {
			contents += fmt.Sprintf("obj /usr/bin/tool%d-%d 0123456789abcdef0123456789abcdef 1700000000\n", i, f)
		}
		for name, data := range map[string]string{"SLOT": "0/1\n", "repository": "gentoo\n", "USE": "a b c\n", "CONTENTS": contents} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := Read(root)
		if err != nil || len(got) != 1000 {
			b.Fatal(err, len(got))
		}
	}
}

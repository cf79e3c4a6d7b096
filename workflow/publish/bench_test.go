package publish

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkLocalPublish measures one transaction + publish that changes one
// file of a 2,000-file tree: the cost is the hard-link clone of the tree,
// the overlay mount and the fsyncs, not the size of the data.
func BenchmarkLocalPublish(b *testing.B) {
	ctx := context.Background()
	l, err := OpenLocal(b.TempDir(), "bench.repo")
	if err != nil {
		b.Fatal(err)
	}
	tx, err := l.Transaction(ctx, scope)
	if err != nil {
		b.Fatal(err)
	}
	for d := 0; d < 40; d++ {
		dir := filepath.Join(tx.Dir(), fmt.Sprintf("pkg%02d", d))
		os.MkdirAll(dir, 0o755)
		for f := 0; f < 50; f++ {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("file%02d", f)), make([]byte, 4096), 0o644)
		}
	}
	if _, err := tx.Publish(ctx, "seed", ""); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tx, err := l.Transaction(ctx, scope)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tx.Dir(), "pkg00", "file00"), []byte(strconv.Itoa(i)), 0o644); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Publish(ctx, "b"+strconv.Itoa(i), ""); err != nil {
			b.Fatal(err)
		}
	}
}

package deploy

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkDeployTest measures one whole test deploy of a 10-file change
// onto a 1,000-file target: queue, journal, transaction on the real local
// backend, apply, publish, content verification and the changelog.
func BenchmarkDeployTest(b *testing.B) {
	r := newRigB(b)
	ctx := context.Background()
	base := map[string]string{"startprefix": "#!/bin/sh\n"}
	for i := 0; i < 1000; i++ {
		base[fmt.Sprintf("usr/lib/f%03d/file%d", i%50, i)] = fmt.Sprint("content ", i)
	}
	if _, err := r.d.DeployTest(ctx, req(1, sha(1), Item{Target: x86, Digest: putArtifact(b, r.store, base)})); err != nil {
		b.Fatal(err)
	}
	var changes [2]string
	for v := range changes {
		m := map[string]string{}
		for i := 0; i < 10; i++ {
			m[fmt.Sprintf("usr/lib/f%03d/file%d", i, i)] = fmt.Sprint("version ", v)
		}
		changes[v] = putArtifact(b, r.store, m)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.d.DeployTest(ctx, req(2+i, sha(2+i), Item{Target: x86, Digest: changes[i%2]})); err != nil {
			b.Fatal(err)
		}
	}
}

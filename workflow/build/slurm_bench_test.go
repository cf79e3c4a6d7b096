package build

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkSlurm runs the same trivial build (one command that notes when
// it starts) with the LocalRunner and as a batch job on the test cluster,
// and reports per build: start-s, from the request to the build command
// running on the node (sbatch, scheduling, the job's launch, the job mode
// reading its job); local-s and slurm-s, the whole runs; overhead-s,
// slurm-s minus local-s. The cluster schedules at once
// (batch_sched_delay=0) and the runner polls every 50 ms; a production
// cluster and the default 2 s poll add their own delays on top.
func BenchmarkSlurm(b *testing.B) {
	r := slurmRunner(b)
	var start, local, slurm time.Duration
	for b.Loop() {
		j := newJob(b, `date +%s.%N > "$COMPAT_PREFIX/started"`+"\n")
		t0 := time.Now()
		res, err := (&LocalRunner{}).Run(context.Background(), j)
		if err != nil || !res.OK() {
			b.Fatalf("local: %+v, %v", res, err)
		}
		t1 := time.Now()
		local += t1.Sub(t0)
		j = newJob(b, `date +%s.%N > "$COMPAT_PREFIX/started"`+"\n")
		t1 = time.Now()
		if res, err = r.Run(context.Background(), j); err != nil || !res.OK() {
			b.Fatalf("slurm: %+v, %v", res, err)
		}
		slurm += time.Since(t1)
		data, err := os.ReadFile(filepath.Join(j.Prefix, "started"))
		if err != nil {
			b.Fatal(err)
		}
		sec, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
		if err != nil {
			b.Fatal(err)
		}
		start += time.Unix(0, int64(sec*1e9)).Sub(t1)
	}
	n := float64(b.N)
	b.ReportMetric(start.Seconds()/n, "start-s/op")
	b.ReportMetric(local.Seconds()/n, "local-s/op")
	b.ReportMetric(slurm.Seconds()/n, "slurm-s/op")
	b.ReportMetric((slurm-local).Seconds()/n, "overhead-s/op")
}

package cluster

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/report"
)

// BenchmarkSlurmPipeline runs the same pipeline run (overlay on a
// published tree, the fake installer's build of headSet, the compat tests,
// the artifact) here with pipeline.Run and on the test cluster with
// Slurm.Execute, and reports per run: start-s, from the request to the
// build starting on the node; local-s and slurm-s, the whole runs;
// overhead-s, slurm-s minus local-s (submitting, scheduling, the job's
// start, following at a 50 ms poll, taking the artifact in and verifying
// it). The test cluster schedules at once (batch_sched_delay=0).
func BenchmarkSlurmPipeline(b *testing.B) {
	var start, local, slurm time.Duration
	for b.Loop() {
		w := newWorld(b, headSet)
		p := w.params
		p.DataDir = filepath.Join(w.root, "local-data")
		p.Build.DistDir = filepath.Join(p.DataDir, "distfiles")
		p.Runner = &build.LocalRunner{}
		t0 := time.Now()
		out, err := pipeline.Run(context.Background(), p)
		if err != nil || out.Check.Conclusion != report.Success {
			b.Fatalf("local: %v %+v", err, out.Check)
		}
		t1 := time.Now()
		local += t1.Sub(t0)
		out, err = w.slurm.Execute(context.Background(), w.params)
		if err != nil || out.Check.Conclusion != report.Success || out.Info == nil {
			b.Fatalf("slurm: %v %+v", err, out.Check)
		}
		slurm += time.Since(t1)
		start += out.Info.Started.Sub(t1)
	}
	n := float64(b.N)
	b.ReportMetric(start.Seconds()/n, "start-s/op")
	b.ReportMetric(local.Seconds()/n, "local-s/op")
	b.ReportMetric(slurm.Seconds()/n, "slurm-s/op")
	b.ReportMetric((slurm-local).Seconds()/n, "overhead-s/op")
}

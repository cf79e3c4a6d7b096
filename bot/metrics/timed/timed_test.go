package timed

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compatbot/compatbot/bot/metrics"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/publish"
)

func exposition(t *testing.T, r *metrics.Registry) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func wantLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, l) {
			t.Errorf("exposition lacks %q:\n%s", l, text)
		}
	}
}

// A real build runner running real commands: each outcome lands in its
// own series of the build histogram.
func TestTimedRunnerOutcomes(t *testing.T) {
	reg := metrics.NewRegistry()
	r := NewRunner(reg, &build.LocalRunner{})
	dir := t.TempDir()
	setFile := filepath.Join(dir, "set")
	os.WriteFile(setFile, nil, 0o644)
	for _, tc := range []struct {
		name    string
		command []string
		timeout time.Duration
		target  sets.Target
	}{
		{name: "ok", command: []string{"true"}},
		{name: "failed", command: []string{"false"}},
		{name: "timeout", command: []string{"sleep", "30"}, timeout: 50 * time.Millisecond},
		{name: "error", command: []string{"no-such-program-compatbot"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := build.Job{Target: sets.Target{Version: "2025.06", OS: "linux", Arch: build.HostArch()}, SetName: "s", SetFile: setFile,
				Command: tc.command, WorkDir: dir, Prefix: dir, LogPath: filepath.Join(dir, tc.name, "log"), Timeout: tc.timeout}
			r.Run(context.Background(), job)
		})
	}
	wantLines(t, exposition(t, reg),
		`compatbot_build_duration_seconds_count{outcome="ok"} 1`,
		`compatbot_build_duration_seconds_count{outcome="failed"} 1`,
		`compatbot_build_duration_seconds_count{outcome="timeout"} 1`,
		`compatbot_build_duration_seconds_count{outcome="error"} 1`)
}

// A real local target: a publish and a failed rollback are timed under
// the target's name.
// outcomes is a pipeline.Remote that answers with the given outcomes in
// turn: what a cluster reported, without the cluster.
type outcomes struct {
	outs []pipeline.Outcome
	errs []error
}

func (o *outcomes) DataDir() string { return "/shared" }

func (o *outcomes) Execute(ctx context.Context, p pipeline.Params) (pipeline.Outcome, error) {
	out, err := o.outs[0], o.errs[0]
	o.outs, o.errs = o.outs[1:], o.errs[1:]
	return out, err
}

func TestTimedRemoteOutcomes(t *testing.T) {
	reg := metrics.NewRegistry()
	src := &outcomes{
		outs: []pipeline.Outcome{
			{Build: build.Result{Duration: 90 * time.Second}},
			{Build: build.Result{Duration: time.Minute, ExitCode: 1}},
			{Build: build.Result{Duration: 4 * time.Hour, TimedOut: true}},
			{}, // left to its node by a shutdown: not a build duration
			{},
		},
		errs: []error{nil, nil, nil, nil, errors.New("cannot submit")},
	}
	r := NewRemote(reg, src)
	for range 5 {
		r.Execute(context.Background(), pipeline.Params{})
	}
	if r.DataDir() != "/shared" {
		t.Errorf("DataDir %q does not pass through", r.DataDir())
	}
	wantLines(t, exposition(t, reg),
		`compatbot_build_duration_seconds_count{outcome="ok"} 1`,
		`compatbot_build_duration_seconds_sum{outcome="ok"} 90`,
		`compatbot_build_duration_seconds_count{outcome="failed"} 1`,
		`compatbot_build_duration_seconds_count{outcome="timeout"} 1`,
		`compatbot_build_duration_seconds_count{outcome="error"} 1`)
}

func TestTimedPublisher(t *testing.T) {
	reg := metrics.NewRegistry()
	p, err := publish.Open(publish.TargetConfig{Backend: "local", Repository: "test.example.org", BaseDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tp := NewPublisher(reg, "test", p)
	ctx := context.Background()
	tx, err := tp.Transaction(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tx.Dir(), "f"), []byte("x"), 0o644)
	if _, err := tx.Publish(ctx, "t1", "first"); err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Rollback(ctx, "no-such-tag"); err == nil {
		t.Fatal("rollback to an unknown tag succeeded")
	}
	if tags, err := tp.Tags(ctx); err != nil || len(tags) != 1 {
		t.Errorf("Tags through the wrapper = %v, %v", tags, err)
	}
	wantLines(t, exposition(t, reg),
		`compatbot_publish_duration_seconds_count{op="publish",outcome="ok",target="test"} 1`,
		`compatbot_publish_duration_seconds_count{op="rollback",outcome="error",target="test"} 1`)
}

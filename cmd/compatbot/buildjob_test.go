package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/build"
)

// TestBuildJobCmd: the job mode a Slurm batch job runs reads the job
// file, builds, and leaves result.json and the log beside it.
func TestBuildJobCmd(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"prefix", "work", "distfiles"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	setFile := filepath.Join(dir, "work", "set")
	os.WriteFile(setFile, []byte("app-shells/bash\n"), 0o644)
	job := build.SlurmJob{Job: build.Job{Target: sets.Target{Version: "2026.06", OS: "linux", Arch: build.HostArch()},
		SetName: "compat", SetFile: setFile, Command: []string{"/bin/sh", "-c", "echo built {{.Set}}; exit 0"},
		WorkDir: filepath.Join(dir, "work"), Prefix: filepath.Join(dir, "prefix"), DistDir: filepath.Join(dir, "distfiles"),
		LogPath: filepath.Join(dir, "logs", "build.log")}}
	b, _ := json.Marshal(job)
	file := filepath.Join(dir, "job.json")
	os.WriteFile(file, b, 0o600)
	var out, errb bytes.Buffer
	if code := buildJobCmd([]string{"--job", file}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	res, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil || !strings.Contains(string(res), `"ExitCode":0`) {
		t.Errorf("result.json: %s (%v)", res, err)
	}
	if log, _ := os.ReadFile(job.Job.LogPath); !strings.Contains(string(log), "built compat") {
		t.Errorf("log: %s", log)
	}
	if code := buildJobCmd(nil, &out, &errb); code != 2 {
		t.Errorf("no --job: exit %d", code)
	}
}

// TestBuildJobCmdRunOutsideItsPlace: a run's job file must be where the
// service writes it, <shared>/runs/<id>/slurm/job.json (the node finds the
// shared storage from it); elsewhere the job fails, saying so in its
// outcome for the service.
func TestBuildJobCmdRunOutsideItsPlace(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "job.json")
	os.WriteFile(file, []byte(`{"run":{"id":"pr1-x","target":{"Version":"2026.06","OS":"linux","Arch":"`+build.HostArch()+`"}}}`), 0o600)
	var out, errb bytes.Buffer
	if code := buildJobCmd([]string{"--job", file}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "is not <shared>/runs/pr1-x/slurm/job.json") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
	if b, err := os.ReadFile(filepath.Join(dir, "outcome.json")); err != nil || !strings.Contains(string(b), `"Conclusion":"failure"`) {
		t.Errorf("outcome.json: %s (%v)", b, err)
	}
}

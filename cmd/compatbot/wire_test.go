package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/bot/config"
	"github.com/compatbot/compatbot/bot/metrics/timed"
	"github.com/compatbot/compatbot/workflow/build"
	"github.com/compatbot/compatbot/workflow/cluster"
)

// TestClusterRunners: build.runners' slurm entries become timed Slurm
// remotes whose jobs run this executable's job mode (or the configured
// path) with the arch's partition, constraint, account and time limit;
// local entries are prflow's own; a shared_dir that is not there refuses
// to start.
func TestClusterRunners(t *testing.T) {
	shared := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Build: config.Build{Runners: map[string]config.Runner{
		build.HostArch(): {Local: &config.LocalRunner{}},
		"aarch64": {Slurm: &config.SlurmRunner{Partition: "grace", Constraint: "sve", Account: "eessi", TimeLimit: "1-00:00",
			SharedDir: shared, NodeSharedDir: "/mnt/shared", ScratchDir: "/local", SlurmConf: "/etc/slurm/grace.conf"}},
		"riscv64": {Slurm: &config.SlurmRunner{SharedDir: shared, Compatbot: "/opt/shared/compatbot"}},
	}}}
	remotes, err := clusterRunners(cfg, &build.LocalRunner{})
	if err != nil {
		t.Fatal(err)
	}
	if len(remotes) != 2 || remotes[build.HostArch()] != nil {
		t.Fatalf("remotes %v: want aarch64 and riscv64 only", remotes)
	}
	arm := remotes["aarch64"].(timed.Remote).Remote.(*cluster.Slurm)
	if strings.Join(arm.JobArgv, " ") != exe+" build-job" || arm.Partition != "grace" || arm.Constraint != "sve" || arm.Account != "eessi" ||
		arm.TimeLimit != "1-00:00" || arm.SharedDir != shared || arm.NodeSharedDir != "/mnt/shared" || arm.ScratchDir != "/local" ||
		strings.Join(arm.Env, " ") != "SLURM_CONF=/etc/slurm/grace.conf" || arm.Portage != nil {
		t.Errorf("aarch64: %+v", arm)
	}
	if rv := remotes["riscv64"].(timed.Remote).Remote.(*cluster.Slurm); rv.JobArgv[0] != "/opt/shared/compatbot" {
		t.Errorf("riscv64 job mode %v", rv.JobArgv)
	}
	cfg.Build.Runners["aarch64"].Slurm.SharedDir = filepath.Join(shared, "not-mounted")
	if _, err := clusterRunners(cfg, &build.LocalRunner{}); err == nil || !strings.Contains(err.Error(), "build.runners.aarch64.slurm: cluster: the shared storage") {
		t.Errorf("a missing shared_dir: %v", err)
	}
}

package main

import (
	"context"

	"github.com/compatbot/compatbot"
	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/state"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/publish"
)

// Drift is measured on the real published tree of a real local target:
// its package database against the reference set.
func TestTargetDrift(t *testing.T) {
	ctx := context.Background()
	pub, err := publish.Open(publish.TargetConfig{Backend: "local", Repository: "software.test.example.org", BaseDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	target := sets.Target{Version: "2026.06", OS: "linux", Arch: "x86_64"}
	path, err := publish.Layout{}.Path(target)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := pub.Transaction(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for pkg, slot := range map[string]string{"sys-cluster/lmod-8.7.60": "0", "dev-lang/python-3.12.10": "3.12"} {
		d := filepath.Join(tx.Dir(), "var/db/pkg", pkg)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, v := range map[string]string{"SLOT": slot, "repository": "gentoo", "CONTENTS": ""} {
			if err := os.WriteFile(filepath.Join(d, name), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := tx.Publish(ctx, "2026.06-linux-x86_64-pr1-abcdef0", "test"); err != nil {
		t.Fatal(err)
	}
	st := deploy.TargetStatus{Env: "test", Target: target, Path: path}

	load := func(set string) *sets.Repo {
		t.Helper()
		fsys := fstest.MapFS{"sets/2026.06/linux-x86_64": {Data: []byte(set)}}
		r, err := sets.LoadRepo(fsys, sets.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if got, more := targetDrift(ctx, pub, st, load("sys-cluster/lmod # modules\n>=dev-lang/python-3.12 # EasyBuild\n")); got != "in sync" || more != "" {
		t.Errorf("matching set: %q %q, want in sync", got, more)
	}
	got, more := targetDrift(ctx, pub, st, load("sys-cluster/lmod # modules\n=dev-lang/python-3.12.11 # EasyBuild\napp-arch/zstd # .tar.zst\n"))
	if got != "2 of 3 atoms not satisfied" {
		t.Errorf("drift = %q", got)
	}
	for _, want := range []string{"sets/2026.06/linux-x86_64:2: =dev-lang/python-3.12.11 is not satisfied: installed is dev-lang/python-3.12.10", "sets/2026.06/linux-x86_64:3: app-arch/zstd is not satisfied: app-arch/zstd is not installed"} {
		if !strings.Contains(more, want) {
			t.Errorf("drift details lack %q:\n%s", want, more)
		}
	}
	if got, _ := targetDrift(ctx, pub, deploy.TargetStatus{Env: "test", Target: sets.Target{Version: "2030.01", OS: "linux", Arch: "x86_64"}}, load("")); got != "no set on the reference" {
		t.Errorf("target without a set: %q", got)
	}
}

// With nothing deployed, /status lists every set of the reference as not
// deployed on both targets.
func TestDeployTargetsNothingDeployed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := gitrepo.InitFromDirs(ctx, filepath.Join(dir, "repo"), gitrepo.CommitSpec{Branch: "main", Tree: compatbot.ExampleBase, Message: "base"}); err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pubs := map[string]publish.Publisher{}
	for _, env := range []string{"test", "prod"} {
		if pubs[env], err = publish.Open(publish.TargetConfig{Backend: "local", Repository: env + ".example.org", BaseDir: filepath.Join(dir, env)}); err != nil {
			t.Fatal(err)
		}
	}
	store := &artifact.Store{Dir: filepath.Join(dir, "artifacts")}
	d, err := deploy.New(deploy.Options{DB: db, Targets: pubs, Artifacts: deploy.StoreSource{Store: store}, Verify: deploy.ContentVerifier{Store: store}})
	if err != nil {
		t.Fatal(err)
	}
	md, err := deployTargets{d: d, pubs: pubs}.TargetStatus(ctx, "eessi/compat-layer", filepath.Join(dir, "repo"), "refs/heads/main")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| test | 2025.06 | linux-x86_64 | – | – | – | not deployed | – |", "| prod | 2026.06 | linux-aarch64 | – | – | – | not deployed | – |"} {
		if !strings.Contains(md, want) {
			t.Errorf("status lacks %q:\n%s", want, md)
		}
	}
}

package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/compatbot/compatbot/internal/testsshd"
	"github.com/compatbot/compatbot/workflow/publish"
	"github.com/google/go-cmp/cmp"
)

var (
	fakeCvmfsOnce sync.Once
	fakeCvmfsBin  string
	fakeCvmfsErr  error
)

// TestSSHDeployToRemoteCvmfs deploys real artifacts to a cvmfs target
// whose cvmfs_server (the test double) runs behind a real sshd on
// localhost: the artifact's tarball is transferred and unpacked on the
// remote side, its whiteouts delete there, the lineage markers are
// written there, and the tag carries the deploy's message intact.
func TestSSHDeployToRemoteCvmfs(t *testing.T) {
	fakeCvmfsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fake-cvmfs")
		if err != nil {
			fakeCvmfsErr = err
			return
		}
		fakeCvmfsBin = filepath.Join(dir, "cvmfs_server")
		if out, err := exec.Command("go", "build", "-o", fakeCvmfsBin, "../../testdata/fake-cvmfs").CombinedOutput(); err != nil {
			fakeCvmfsErr = &exec.Error{Name: "go build fake-cvmfs: " + string(out), Err: err}
		}
	})
	if fakeCvmfsErr != nil {
		t.Fatal(fakeCvmfsErr)
	}
	remoteBin := t.TempDir()
	sshd := testsshd.Start(t, testsshd.Options{Path: remoteBin + ":/usr/bin:/bin"})
	// The remote state (and the mount) has a space and a "#" in its path.
	root := filepath.Join(t.TempDir(), "stratum 0 #1")
	os.MkdirAll(root, 0o755)
	wrapper := "#!/bin/sh\nFAKE_CVMFS_ROOT='" + root + "' exec '" + fakeCvmfsBin + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(remoteBin, "cvmfs_server"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	mkfs := exec.Command(fakeCvmfsBin, "mkfs", "-o", "root", "compat.test")
	mkfs.Env = append(os.Environ(), "FAKE_CVMFS_ROOT="+root)
	if out, err := mkfs.CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v: %s", err, out)
	}

	r := newRig(t)
	remote, err := publish.Open(publish.TargetConfig{Backend: "cvmfs", Repository: "compat.test", CvmfsMount: filepath.Join(root, "cvmfs"),
		PublisherHost: sshd.Host, SSHConfig: sshd.ConfigFile})
	if err != nil {
		t.Fatal(err)
	}
	r.pubs[EnvTest] = remote
	if r.d, err = New(Options{DB: r.db, Targets: r.pubs, Artifacts: StoreSource{Store: r.store}, Verify: r.verify, Changelog: r.clog, Notify: r.notify}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first := r.artifact(prefixA)
	res := r.deployTest(7, first)
	lin := NextLineage("", first)
	if diff := cmp.Diff(merge(treeA(), markers(lin, first)), r.targetTree(EnvTest, x86)); diff != "" {
		t.Errorf("remote tree after the first deploy (-want +got):\n%s", diff)
	}
	tags, err := remote.Tags(ctx)
	if err != nil || len(tags) != 1 || tags[0].Name != res.Items[0].Tag {
		t.Fatalf("remote tags %+v, %v", tags, err)
	}
	contains(t, "tag description", tags[0].Description, "PR #7", "alice", first)

	// A second artifact deletes a file (an overlay whiteout), replaces one
	// and adds a file whose name needs quoting.
	second := r.artifact(map[string]string{"etc/motd": "<whiteout>", "usr/bin/bash": "bash-5.3\n", "usr/bin/it's #1": "x"})
	r.deployTest(8, second)
	want := merge(treeA(), map[string]string{"etc/motd": "<deleted>", "usr/bin/bash": "bash-5.3\n", "usr/bin/it's #1": "x"},
		markers(NextLineage(lin, second), second))
	if diff := cmp.Diff(want, r.targetTree(EnvTest, x86)); diff != "" {
		t.Errorf("remote tree after the second deploy (-want +got):\n%s", diff)
	}
	r.noOpenTransaction(EnvTest)
}

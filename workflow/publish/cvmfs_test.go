package publish

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	fakeOnce sync.Once
	fakeBin  string
	fakeErr  error
	fakeDir  string
)

// fakeCvmfsServer builds testdata/fake-cvmfs, the test double of
// cvmfs_server (the real one needs a stratum-0 and cannot run here).
func fakeCvmfsServer(t *testing.T) string {
	t.Helper()
	fakeOnce.Do(func() {
		fakeDir, fakeErr = os.MkdirTemp("", "fake-cvmfs")
		if fakeErr != nil {
			return
		}
		fakeBin = filepath.Join(fakeDir, "cvmfs_server")
		out, err := exec.Command("go", "build", "-o", fakeBin, "../../testdata/fake-cvmfs").CombinedOutput()
		if err != nil {
			fakeErr = errors.New("build fake cvmfs_server: " + err.Error() + "\n" + string(out))
		}
	})
	if fakeErr != nil {
		t.Fatal(fakeErr)
	}
	return fakeBin
}

const cvmfsRepo = "software.test.io"

func newCvmfs(t *testing.T) (*Cvmfs, string) {
	t.Helper()
	bin := fakeCvmfsServer(t)
	root := t.TempDir()
	t.Setenv("FAKE_CVMFS_ROOT", root)
	if out, err := exec.Command(bin, "mkfs", "-o", "root", cvmfsRepo).CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v: %s", err, out)
	}
	p, err := Open(TargetConfig{Backend: "cvmfs", Repository: cvmfsRepo, CvmfsServer: bin, CvmfsMount: filepath.Join(root, "cvmfs")})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Cvmfs), root
}

// The cvmfs specifics of a publish; what both backends share is in
// backends_test.go.
func TestCvmfsTxDirAndTagHash(t *testing.T) {
	ctx := context.Background()
	c, root := newCvmfs(t)
	tx, err := c.Transaction(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "cvmfs", cvmfsRepo, scope); tx.Dir() != want {
		t.Errorf("Dir = %q, want %q", tx.Dir(), want)
	}
	apply(t, tx.Dir(), []change{{path: "a", content: "1"}})
	if _, err := tx.Publish(ctx, "v1", "first publish, PR #1"); err != nil {
		t.Fatal(err)
	}
	tags, err := c.Tags(ctx)
	if err != nil || len(tags) != 1 || tags[0].Description != "first publish, PR #1" || tags[0].Hash == "" {
		t.Fatalf("Tags = %+v, %v; want v1 with its message and a root hash", tags, err)
	}
}

// A crash leaves the transaction open; a new publisher recovers it by
// aborting.
func TestCvmfsRecoverAbortsOpenTransaction(t *testing.T) {
	ctx := context.Background()
	c, _ := newCvmfs(t)
	tx, err := c.Transaction(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	apply(t, tx.Dir(), []change{{path: "half", content: "x"}})
	if _, err := c.Rollback(ctx, "trunk-previous"); err == nil {
		t.Error("rollback to a reserved tag accepted")
	}
	c2, err := OpenCvmfs(TargetConfig{Repository: cvmfsRepo, CvmfsServer: c.argv[0], CvmfsMount: c.mount})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c2.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Found || rep.Completed || rep.Revision != 1 {
		t.Errorf("Recover = %+v, want found and aborted at revision 1", rep)
	}
	dir, _, _ := c2.Current(ctx)
	if _, err := os.Stat(filepath.Join(dir, "half")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("aborted change still in the tree: %v", err)
	}
	rep, err = c2.Recover(ctx)
	if err != nil || rep.Found {
		t.Errorf("Recover with nothing open = %+v, %v", rep, err)
	}
	tx, err = c2.Transaction(ctx, "")
	if err != nil {
		t.Fatalf("Recover left a transaction open: %v", err)
	}
	if err := tx.Abort(ctx); err != nil {
		t.Fatal(err)
	}
}

// The double must refuse what the real cvmfs_server refuses, or tests of
// the backend's own validation would prove nothing about the real one.
func TestFakeCvmfsServerRefusesLikeTheRealOne(t *testing.T) {
	c, _ := newCvmfs(t)
	bin := c.argv[0]
	run := func(args ...string) (int, string) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"publish", "-a", "x", cvmfsRepo}, 1, "not in a transaction"},
		{[]string{"transaction", cvmfsRepo}, 0, ""},
		{[]string{"transaction", cvmfsRepo + "/sub"}, 17, "already in a transaction"},
		{[]string{"publish", "-a", "bad tag", cvmfsRepo}, 1, "invalid characters"},
		{[]string{"publish", "-a", "trunk", cvmfsRepo}, 1, "reserved"},
		{[]string{"rollback", "-t", "trunk-previous", "-f", cvmfsRepo}, 1, "in a transaction"},
		{[]string{"publish", "-a", "ok", "-m", "m", cvmfsRepo}, 0, "Tagging"},
		{[]string{"abort", "-f", cvmfsRepo}, 1, "not in a transaction"},
		{[]string{"transaction", "missing.repo"}, 1, "does not exist"},
	} {
		code, out := run(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.msg) {
			t.Errorf("cvmfs_server %v: exit %d %q, want exit %d with %q", tc.args, code, out, tc.code, tc.msg)
		}
	}
	// A refused tag left the transaction open until the good publish.
	tags, err := c.Tags(context.Background())
	if err != nil || len(tags) != 1 || tags[0].Name != "ok" {
		t.Errorf("tags = %+v, %v", tags, err)
	}
}

func TestParseTagList(t *testing.T) {
	out := "v2 0123abcdC 4096 3 1732480000 (default) deploy PR #12 by alice\n" +
		"trunk 0123abcdC 4096 3 1732480000 (default) current HEAD\n" +
		"v1 4567efC 10 2 1732470000 (default) \n"
	tags, err := ParseTagList(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []Tag{
		{Name: "v2", Hash: "0123abcdC", Revision: 3, Timestamp: time.Unix(1732480000, 0).UTC(), Description: "deploy PR #12 by alice"},
		{Name: "trunk", Hash: "0123abcdC", Revision: 3, Timestamp: time.Unix(1732480000, 0).UTC(), Description: "current HEAD"},
		{Name: "v1", Hash: "4567efC", Revision: 2, Timestamp: time.Unix(1732470000, 0).UTC()},
	}
	if !cmp.Equal(tags, want) {
		t.Errorf("ParseTagList: %s", cmp.Diff(want, tags))
	}
	for _, bad := range []struct{ in, want string }{
		{"v1 hash 10 2\n", "line 1: 4 fields"},
		{"v1 hash ten 2 1 (default) d\n", `size "ten"`},
		{"ok h 1 1 1 (default) d\nv1 hash 10 x 1 (default) d\n", `line 2: revision "x"`},
		{"v1 hash 10 2 yesterday (default) d\n", `timestamp "yesterday"`},
	} {
		if _, err := ParseTagList(bad.in); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseTagList(%q) = %v, want %q", bad.in, err, bad.want)
		}
	}
}

func TestParseDiff(t *testing.T) {
	out := "# line descriptor: A - add, R - remove, M - modify, S - statistics\n" +
		"A F /2025.06/new file +12\n" +
		"R D /old -0\n" +
		"M[SC] F /2025.06/a\n" +
		"M[M] FS /link\n" +
		"S F 1\nS D -1\n"
	got, err := ParseDiff(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []PathChange{
		{Path: "2025.06/a", Kind: PathModified},
		{Path: "2025.06/new file", Kind: PathAdded},
		{Path: "link", Kind: PathModified},
		{Path: "old", Kind: PathRemoved, Dir: true},
	}
	if !cmp.Equal(got, want) {
		t.Errorf("ParseDiff: %s", cmp.Diff(want, got))
	}
	for _, bad := range []string{"A F relative +1\n", "A F /nosize\n", "X F /p\n"} {
		if _, err := ParseDiff(bad); err == nil {
			t.Errorf("ParseDiff(%q) accepted", bad)
		}
	}
}

func TestOpenConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  TargetConfig
		want string
	}{
		{TargetConfig{Repository: ""}, "repository name is empty"},
		{TargetConfig{Repository: "a/b", BaseDir: "/tmp"}, `character '/'`},
		{TargetConfig{Repository: "r"}, "needs base_dir"},
		{TargetConfig{Repository: "r", Backend: "s3"}, `backend "s3" is unknown`},
		{TargetConfig{Repository: "r", Backend: "cvmfs", PublisherHost: "-oProxyCommand=x"}, "not a host name"},
		{TargetConfig{Repository: "r", BaseDir: "/tmp/a,b"}, "must not contain"},
	} {
		if _, err := Open(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := Open(TargetConfig{Repository: "r", Backend: "cvmfs", SSHConfig: "/etc/compatbot/ssh_config"}); err == nil || !strings.Contains(err.Error(), "publisher_host is not") {
		t.Errorf("ssh_config without publisher_host: %v", err)
	}
	c, err := OpenCvmfs(TargetConfig{Repository: "r", PublisherHost: "stratum0.example.org", SSHConfig: "/etc/compatbot/ssh_config"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ssh", "-o", "BatchMode=yes", "-F", "/etc/compatbot/ssh_config", "--", "stratum0.example.org"}; !cmp.Equal(c.ssh, want) {
		t.Errorf("remote argv = %v, want %v", c.ssh, want)
	}
}

// ingest is implemented by the double for completeness (the backend
// unpacks in the transaction instead); check it publishes a tarball and
// honours the transaction lock.
func TestFakeCvmfsIngest(t *testing.T) {
	ctx := context.Background()
	c, root := newCvmfs(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "bin/tool", Typeflag: tar.TypeReg, Mode: 0o755, Size: 4})
	tw.Write([]byte("tool"))
	tw.Close()
	ingest := func() (int, string) {
		cmd := exec.Command(c.argv[0], "ingest", "-t", "-", "-b", scope, cvmfsRepo)
		cmd.Stdin = bytes.NewReader(buf.Bytes())
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		return 0, string(out)
	}
	tx, err := c.Transaction(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if code, out := ingest(); code != 17 {
		t.Errorf("ingest during a transaction: exit %d %q, want 17", code, out)
	}
	tx.Abort(ctx)
	if code, out := ingest(); code != 0 {
		t.Fatalf("ingest: exit %d %q", code, out)
	}
	if b, err := os.ReadFile(filepath.Join(root, "cvmfs", cvmfsRepo, scope, "bin", "tool")); err != nil || string(b) != "tool" {
		t.Errorf("ingested file: %q, %v", b, err)
	}
	if _, rev, _ := c.Current(ctx); rev != 2 {
		t.Errorf("revision after ingest %d, want 2", rev)
	}
}

func FuzzParseTagList(f *testing.F) {
	f.Add("v2 0123abcdC 4096 3 1732480000 (default) deploy PR #12\n")
	f.Add("v1 hash 10 2\n")
	f.Fuzz(func(t *testing.T, s string) {
		tags, err := ParseTagList(s)
		if err == nil {
			for _, tg := range tags {
				if tg.Name == "" || tg.Hash == "" || strings.Contains(tg.Name, " ") {
					t.Errorf("tag %+v from %q", tg, s)
				}
			}
		}
	})
}

func FuzzParseDiff(f *testing.F) {
	f.Add("A F /a b +1\nR D /x -0\nM[SC] F /y\nS F 1\n")
	f.Fuzz(func(t *testing.T, s string) {
		changes, err := ParseDiff(s)
		if err == nil {
			for _, c := range changes {
				if c.Kind != PathAdded && c.Kind != PathRemoved && c.Kind != PathModified {
					t.Errorf("kind %q from %q", c.Kind, s)
				}
			}
		}
	})
}

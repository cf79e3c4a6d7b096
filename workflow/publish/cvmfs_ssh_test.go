package publish

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/internal/testsshd"
	"github.com/compatbot/compatbot/internal/testtree"
	"github.com/google/go-cmp/cmp"
)

// sshCvmfs is a cvmfs publisher whose cvmfs_server runs on the other side
// of a real sshd on localhost: the fake cvmfs_server is on the remote
// PATH, through a wrapper that sets its state directory. That directory
// (and with it the mount, Tx.Dir()) has a space, a "#" and a quote in its
// name, so every remote argument must arrive quoted.
func sshCvmfs(t *testing.T) (*Cvmfs, string) {
	t.Helper()
	bin := fakeCvmfsServer(t)
	remoteBin := t.TempDir()
	sshd := testsshd.Start(t, testsshd.Options{Path: remoteBin + ":/usr/bin:/bin"})
	root := filepath.Join(t.TempDir(), "stratum 0 #1 'o")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := "#!/bin/sh\nFAKE_CVMFS_ROOT=" + shellQuote(root) + " exec " + shellQuote(bin) + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(remoteBin, "cvmfs_server"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	mkfs := exec.Command(bin, "mkfs", "-o", "root", cvmfsRepo)
	mkfs.Env = append(os.Environ(), "FAKE_CVMFS_ROOT="+root)
	if out, err := mkfs.CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v: %s", err, out)
	}
	p, err := Open(TargetConfig{Backend: "cvmfs", Repository: cvmfsRepo, CvmfsMount: filepath.Join(root, "cvmfs"),
		PublisherHost: sshd.Host, SSHConfig: sshd.ConfigFile})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Cvmfs), root
}

type tarEntry struct{ name, body string }

func tarball(t *testing.T, entries ...tarEntry) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return &b
}

// TestSSHCvmfsPublisher runs the cvmfs backend against a real sshd: the
// commands' arguments (a publish message with "#", spaces, quotes and $)
// arrive intact, and the changes are transferred and unpacked on the
// remote side, deletions and cleared directories included.
func TestSSHCvmfsPublisher(t *testing.T) {
	ctx := context.Background()
	c, root := sshCvmfs(t)
	steps := []struct {
		name    string
		message string
		archive []tarEntry
		remove  []string
		clear   []string
		want    map[string]string // the published scope afterwards
	}{
		{name: "first publish", message: `PR #12: "direnv" 2.36 it's $HOME * ; rm -rf / #`,
			archive: []tarEntry{{"usr/", ""}, {"usr/bin/", ""}, {"usr/bin/tool", "v1"}, {"usr/share/", ""}, {"usr/share/doc #1/", ""},
				{"usr/share/doc #1/it's a file", "doc"}, {"usr/share/doc #1/old", "old"}, {"-n", "a name like an option"}},
			want: map[string]string{"usr": "dir/", "usr/bin": "dir/", "usr/bin/tool": "v1", "usr/share": "dir/", "usr/share/doc #1": "dir/",
				"usr/share/doc #1/it's a file": "doc", "usr/share/doc #1/old": "old", "-n": "a name like an option"}},
		{name: "deletions and a cleared directory", message: "second\nline two; `date`",
			archive: []tarEntry{{"usr/bin/tool", "v2"}, {"usr/share/doc #1/new", "new"}},
			remove:  []string{"-n", "usr/bin/does-not-exist"}, clear: []string{"usr/share/doc #1"},
			want: map[string]string{"usr": "dir/", "usr/bin": "dir/", "usr/bin/tool": "v2", "usr/share": "dir/", "usr/share/doc #1": "dir/",
				"usr/share/doc #1/new": "new"}},
	}
	for i, st := range steps {
		tx, err := c.Transaction(ctx, scope)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		rtx, ok := tx.(RemoteTx)
		if !ok {
			t.Fatalf("a transaction over ssh is a %T, not a RemoteTx", tx)
		}
		if want := filepath.Join(root, "cvmfs", cvmfsRepo, scope); tx.Dir() != want {
			t.Errorf("Dir = %q, want %q", tx.Dir(), want)
		}
		if err := rtx.Unpack(ctx, tarball(t, st.archive...), st.remove, st.clear); err != nil {
			t.Fatalf("%s: unpack: %v", st.name, err)
		}
		tag := []string{"v1", "v2"}[i]
		if _, err := tx.Publish(ctx, tag, st.message); err != nil {
			t.Fatalf("%s: publish: %v", st.name, err)
		}
		tags, err := c.Tags(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tags[0].Name != tag || tags[0].Description != strings.Join(strings.Fields(st.message), " ") {
			t.Errorf("%s: newest tag %q %q, want %q with the message intact %q", st.name, tags[0].Name, tags[0].Description, tag, st.message)
		}
		dir, _, err := c.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := testtree.Contents(t, filepath.Join(dir, scope)); !cmp.Equal(got, st.want) {
			t.Errorf("%s: remote tree: %s", st.name, cmp.Diff(st.want, got))
		}
	}
	// A rollback and a diff over ssh, tags given as arguments.
	if _, err := c.Rollback(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	dir, _, _ := c.Current(ctx)
	if got := testtree.Contents(t, filepath.Join(dir, scope))["usr/bin/tool"]; got != "v1" {
		t.Errorf("after rollback to v1 usr/bin/tool = %q", got)
	}
	// Unpack after the transaction ended is refused, not sent.
	tx, _ := c.Transaction(ctx, scope)
	tx.Abort(ctx)
	if err := tx.(RemoteTx).Unpack(ctx, nil, []string{"x"}, nil); err != ErrNoTransaction {
		t.Errorf("Unpack after abort: %v, want ErrNoTransaction", err)
	}
}

// A host that cannot be reached fails with ssh's message, not a hang:
// BatchMode never prompts.
func TestSSHCvmfsUnreachableHost(t *testing.T) {
	c, err := OpenCvmfs(TargetConfig{Repository: cvmfsRepo, PublisherHost: "nobody@127.0.0.1", SSHConfig: "/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	c.ssh = append(c.ssh[:len(c.ssh)-2], "-o", "ConnectTimeout=5", "-p", "1", "--", c.ssh[len(c.ssh)-1])
	if _, err := c.Tags(context.Background()); err == nil || !strings.Contains(err.Error(), "exit status 255") {
		t.Errorf("Tags over an unreachable host: %v, want ssh's exit 255", err)
	}
}

func TestShellQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"publish", "publish"},
		{"software.eessi.io/2025.06", "software.eessi.io/2025.06"},
		{"", "''"},
		{"PR #12", "'PR #12'"},
		{"it's", `'it'\''s'`},
		{"$HOME `x` *", "'$HOME `x` *'"},
	} {
		if got := shellQuote(tc.in); got != tc.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tc.in, got, tc.want)
		}
		// What a real shell makes of it is the original word.
		out, err := exec.Command("sh", "-c", "printf %s "+shellQuote(tc.in)).Output()
		if err != nil || string(out) != tc.in {
			t.Errorf("sh read %s as %q (%v), want %q", shellQuote(tc.in), out, err, tc.in)
		}
	}
}

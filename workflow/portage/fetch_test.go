package portage

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFetchHelper runs the FETCHCOMMAND helper's main as Portage would
// call it: the file enters the mirror verified and is handed to DISTDIR;
// every refusal names the file.
func TestFetchHelper(t *testing.T) {
	repo, _ := filepath.Abs("../../testdata/portage/repo")
	src, _ := filepath.Abs("../../testdata/portage/distfiles")
	for _, tc := range []struct {
		name      string
		env       map[string]string
		file      string
		code      int
		stderr    string
		inMirror  bool
		inDistdir bool
	}{
		{name: "enters the mirror", env: map[string]string{envSource: src, envRepos: repo}, file: "hello-1.0.tar.gz",
			stderr: "compatbot: distfile hello-1.0.tar.gz entered the mirror from " + src + ", verified", inMirror: true, inDistdir: true},
		{name: "not in any Manifest", env: map[string]string{envSource: src, envRepos: repo}, file: "other-1.tar.gz", code: 1,
			stderr: "compatbot: distfile other-1.tar.gz: no Manifest of the ebuild repositories lists it"},
		{name: "no source", env: map[string]string{envRepos: repo}, file: "hello-1.0.tar.gz", code: 1,
			stderr: "compatbot: distfile hello-1.0.tar.gz: not in the mirror"},
		{name: "no mirror", env: map[string]string{envMirrorDir: ""}, file: "hello-1.0.tar.gz", code: 1,
			stderr: "this build has no mirror to fetch into (COMPATBOT_MIRROR_DIR unset); not fetching https://upstream.invalid/hello-1.0.tar.gz"},
		{name: "bad name", env: map[string]string{}, file: "../x", code: 1, stderr: "compatbot: distfile ../x: distfile name \"../x\": must be a plain file name"},
		{name: "unknown file, as Portage names it", env: map[string]string{envSource: src, envRepos: repo}, file: "hello-2.0.tar.gz", code: 1,
			stderr: "compatbot: distfile hello-2.0.tar.gz: no Manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mdir, distdir := t.TempDir(), t.TempDir()
			t.Setenv(envMirrorDir, mdir)
			t.Setenv(envSource, "")
			t.Setenv(envRepos, "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			code := fetchMain([]string{"https://upstream.invalid/" + tc.file, distdir, tc.file + ".__download__"}, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d, %q", code, stderr.String(), tc.code, tc.stderr)
			}
			for _, f := range []struct {
				p    string
				want bool
			}{{filepath.Join(mdir, "distfiles", tc.file), tc.inMirror}, {filepath.Join(distdir, tc.file+".__download__"), tc.inDistdir}} {
				if _, err := os.Stat(f.p); (err == nil) != f.want {
					t.Errorf("%s exists: %v, want %v", f.p, err == nil, f.want)
				}
			}
		})
	}
}

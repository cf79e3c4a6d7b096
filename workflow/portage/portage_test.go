package portage_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/portage"
	"github.com/compatbot/compatbot/workflow/publish"
)

func write(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestUnpack(t *testing.T) {
	rel := sharedRelease(t)
	notRelease := t.TempDir()
	write(t, filepath.Join(notRelease, "bin", "emerge"), "")
	for _, tc := range []struct {
		name, src, wantDir, wantErr string
	}{
		{name: "tarball again: reused", src: portageTarball, wantDir: rel.Dir},
		{name: "unpacked tree in place", src: rel.Dir, wantDir: rel.Dir},
		{name: "installed", src: ""},
		{name: "not a release", src: notRelease, wantErr: "not a Portage release tree: no cnf/make.globals"},
		{name: "missing", src: "/nonexistent/portage.tar.xz", wantErr: "release /nonexistent/portage.tar.xz: stat"},
		{name: "not a tarball", src: "portage.go", wantErr: "unpacking portage.go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := portage.Unpack(context.Background(), tc.src, cacheDir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Dir != tc.wantDir {
				t.Errorf("Dir = %q, want %q", r.Dir, tc.wantDir)
			}
		})
	}
	if !strings.HasPrefix(rel.Dir, cacheDir+"/portage/") || filepath.Base(rel.Dir) != "portage-3.0.82" {
		t.Errorf("unpacked to %s, want %s/portage/<sha256>/portage-3.0.82", rel.Dir, cacheDir)
	}
}

func TestOpenRepoProfile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		arch    string
		want    string // profile relative to the repo
		wantErr string
	}{
		{name: "first stable for the arch",
			files: map[string]string{"profiles/repo_name": "r\n", "profiles/profiles.desc": "# comment\narm64 a stable\namd64 b dev\namd64 c stable\namd64 d stable\n",
				"profiles/a/x": "", "profiles/b/x": "", "profiles/c/x": "", "profiles/d/x": ""},
			arch: "amd64", want: "profiles/c"},
		{name: "no stable", files: map[string]string{"profiles/repo_name": "r", "profiles/profiles.desc": "amd64 b dev\n"},
			arch: "amd64", wantErr: "profiles.desc: no stable profile for amd64; give one (--profile)"},
		{name: "no profiles.desc", files: map[string]string{"profiles/repo_name": "r"}, wantErr: "no profile given and open"},
		{name: "malformed line", files: map[string]string{"profiles/repo_name": "r", "profiles/profiles.desc": "amd64 b\n"},
			wantErr: "profiles.desc:1: want \"ARCH PROFILE STATUS\""},
		{name: "stable profile missing", files: map[string]string{"profiles/repo_name": "r", "profiles/profiles.desc": "amd64 gone stable\n"},
			wantErr: "profiles.desc:1: profile gone is not a directory"},
		{name: "no repo_name", files: map[string]string{}, wantErr: "profiles/repo_name"},
		{name: "bad repo_name", files: map[string]string{"profiles/repo_name": "-x y"}, wantErr: `invalid repository name "-x y"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for p, b := range tc.files {
				write(t, filepath.Join(dir, p), b)
			}
			r, err := portage.OpenRepo(dir)
			var prof string
			if err == nil {
				prof, err = r.StableProfile(tc.arch)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Name != "r" || prof != filepath.Join(dir, tc.want) {
				t.Errorf("got %q %q, want r %s", r.Name, prof, tc.want)
			}
		})
	}
}

func TestPrepare(t *testing.T) {
	rel := sharedRelease(t)
	repo, err := portage.OpenRepo(testRepo)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := repo.StableProfile("amd64")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		existing map[string]string // files already in the Prefix
		mask     []string
		// where the mask lines must land, and what must be untouched
		maskFile  string
		untouched map[string]string
		wantErr   string
	}{
		{name: "fresh prefix", mask: []string{">=dev-libs/libgreet-2"}, maskFile: "etc/portage/package.mask"},
		{name: "package.mask is a directory", existing: map[string]string{"etc/portage/package.mask/site": "app-misc/x\n"},
			mask: []string{">=dev-libs/libgreet-2"}, maskFile: "etc/portage/package.mask/compatbot",
			untouched: map[string]string{"etc/portage/package.mask/site": "app-misc/x\n"}},
		{name: "no lines: the prefix's file stays", existing: map[string]string{"etc/portage/package.mask": "app-misc/y\n"},
			untouched: map[string]string{"etc/portage/package.mask": "app-misc/y\n"}},
		{name: "line break in a line", mask: []string{"a\nb"}, wantErr: `package.mask line 1: "a\nb" contains a line break`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, w := t.TempDir(), t.TempDir()
			for p, b := range tc.existing {
				write(t, filepath.Join(root, p), b)
			}
			c := portage.Config{Release: rel, Repos: []portage.Repo{repo}, Profile: prof, EPrefix: "/cvmfs/x", WorkDir: w, Mask: tc.mask,
				Use: []string{"app-misc/hello -doc"}}
			err := c.Prepare(root, "compat", filepath.Join(testSets, "pr"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			set, _ := os.ReadFile(filepath.Join(root, "etc/portage/sets/compat"))
			want, _ := os.ReadFile(filepath.Join(testSets, "pr"))
			if string(set) != string(want) {
				t.Errorf("set file = %q, want %q", set, want)
			}
			if l, _ := os.Readlink(filepath.Join(root, "etc/portage/make.profile")); l != prof {
				t.Errorf("make.profile -> %q, want %q", l, prof)
			}
			if tc.maskFile != "" {
				b, _ := os.ReadFile(filepath.Join(root, tc.maskFile))
				if !strings.Contains(string(b), "\n>=dev-libs/libgreet-2\n") {
					t.Errorf("%s = %q, want the mask line", tc.maskFile, b)
				}
			}
			for p, body := range tc.untouched {
				if b, _ := os.ReadFile(filepath.Join(root, p)); string(b) != body {
					t.Errorf("%s = %q, want it untouched (%q)", p, b, body)
				}
			}
			if b, _ := os.ReadFile(filepath.Join(root, "etc/portage/package.use")); !strings.Contains(string(b), "app-misc/hello -doc\n") {
				t.Errorf("package.use = %q", b)
			}
			if _, err := os.Stat(filepath.Join(root, portage.SetsConf)); err != nil {
				t.Errorf("uninstalled Portage needs %s: %v", portage.SetsConf, err)
			}
			if l, _ := os.Readlink(filepath.Join(w, "bin", "gtar")); filepath.Base(l) != "tar" {
				t.Errorf("gtar -> %q, want tar", l)
			}
			env := c.Env()
			for k, want := range map[string]string{
				"PORTAGE_OVERRIDE_EPREFIX": "/cvmfs/x",
				"DISTDIR":                  filepath.Join(w, "distdir"),
				"PORTAGE_TMPDIR":           filepath.Join(w, "tmp"),
			} {
				if env[k] != want {
					t.Errorf("env %s = %q, want %q", k, env[k], want)
				}
			}
			if !strings.HasPrefix(env["PATH"], filepath.Join(w, "bin")+":/cvmfs/x/usr/bin:") {
				t.Errorf("PATH = %q: want the helpers, then the Prefix's bin dirs", env["PATH"])
			}
			if !strings.Contains(env["PORTAGE_REPOSITORIES"], "main-repo = compatbot-test\n[compatbot-test]\nlocation = "+repo.Dir+"\n") {
				t.Errorf("PORTAGE_REPOSITORIES = %q", env["PORTAGE_REPOSITORIES"])
			}
		})
	}
}

func TestScrub(t *testing.T) {
	upper := t.TempDir()
	for _, p := range []string{"var/log/emerge.log", "var/cache/edb/counter", "tmp/.keep", "var/tmp/portage/x",
		"usr/bin/hello", "var/lib/portage/world", "etc/env.d/99x", "etc/portage/sets/compat", portage.SetsConf} {
		write(t, filepath.Join(upper, p), "x")
	}
	if err := os.Symlink("/build/host/repo/profiles/default", filepath.Join(upper, "etc/portage/make.profile")); err != nil {
		t.Fatal(err)
	}
	removed, err := portage.Scrub(upper, portage.KeptOut)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"etc/portage/make.profile", "tmp", "usr/share/portage", "usr/share/portage/config", "usr/share/portage/config/sets",
		portage.SetsConf, "var/cache", "var/cache/edb", "var/log", "var/log/emerge.log", "var/tmp"}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Errorf("removed %q\nwant    %q", removed, want)
	}
	for _, p := range []string{"usr/bin/hello", "var/lib/portage/world", "etc/env.d/99x", "etc/portage/sets/compat"} {
		if _, err := os.Stat(filepath.Join(upper, p)); err != nil {
			t.Errorf("%s is part of the Prefix and must stay: %v", p, err)
		}
	}
}

// TestDefaultEPrefixIsThePublishPath: by default a build's EPREFIX is the
// path the deploy publishes the target at, in software.eessi.io mounted at
// /cvmfs, so what the build compiles in is where users find it.
func TestDefaultEPrefixIsThePublishPath(t *testing.T) {
	for _, tg := range []sets.Target{{Version: "2025.06", OS: "linux", Arch: "x86_64"}, {Version: "2023.06", OS: "linux", Arch: "aarch64"}} {
		ep, err := portage.ExpandEPrefix("", tg)
		if err != nil {
			t.Fatal(err)
		}
		p, err := publish.Layout{}.Path(tg)
		if err != nil {
			t.Fatal(err)
		}
		if want := "/cvmfs/software.eessi.io/" + p; ep != want {
			t.Errorf("%s: EPREFIX %s, publish path %s", tg, ep, want)
		}
	}
}

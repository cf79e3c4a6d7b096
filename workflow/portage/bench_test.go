package portage_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/compatbot/compatbot/workflow/portage"
	"github.com/compatbot/compatbot/workflow/report"
)

// BenchmarkOverhead builds the same set (testdata/portage/sets/base: two
// packages compiled from C) into an empty prefix twice per iteration: once
// with plain emerge (the same Portage, configuration and environment, run
// directly on a directory), once through compatbot's whole pipeline
// (mirror fill with emerge --pretend --fetchonly, overlay, EPREFIX mount
// namespace, emerge, emerge --depclean, compat tests with the generic-CPU
// scan, artifact). It reports both and the overhead in percent.
//
//	go test -run '^$' -bench Overhead -benchtime 1x ./workflow/portage/
func BenchmarkOverhead(b *testing.B) {
	if os.Getuid() != 0 {
		b.Fatal("needs root: overlay and mount namespace")
	}
	rel := sharedRelease(b)
	repo, err := portage.OpenRepo(testRepo)
	if err != nil {
		b.Fatal(err)
	}
	prof, _ := repo.StableProfile("amd64")
	// Python compiles Portage's modules into __pycache__ on the first run:
	// pay that before measuring, or whichever side runs first loses.
	if out, err := exec.Command("python3", filepath.Join(rel.Dir, "bin", "emerge"), "--version").CombinedOutput(); err != nil {
		b.Fatalf("emerge --version: %v\n%s", err, out)
	}
	var plain, bot time.Duration
	for i := 0; i < b.N; i++ {
		// Alternate which side runs first: page cache and load drift.
		if i%2 == 0 {
			plain += plainEmerge(b, rel, repo, prof)
			bot += viaCompatbot(b)
		} else {
			bot += viaCompatbot(b)
			plain += plainEmerge(b, rel, repo, prof)
		}
	}
	b.ReportMetric(plain.Seconds()/float64(b.N), "plain-emerge-s/op")
	b.ReportMetric(bot.Seconds()/float64(b.N), "compatbot-s/op")
	b.ReportMetric(100*(bot.Seconds()-plain.Seconds())/plain.Seconds(), "overhead-%")
}

// viaCompatbot is the set through the whole pipeline into an empty
// published tree.
func viaCompatbot(b *testing.B) time.Duration {
	e := newRealEnv(b)
	start := time.Now()
	out := e.run(b, "base", "oldtool")
	d := time.Since(start)
	if out.Check.Conclusion != report.Success {
		b.Fatalf("pipeline: %s: %s\n%s", out.Check.Conclusion, out.Check.Title, out.Check.Text)
	}
	return d
}

// plainEmerge is the same emerge into an empty directory, sources from a
// local mirror directory, configuration written by hand.
func plainEmerge(b *testing.B, rel portage.Release, repo portage.Repo, prof string) time.Duration {
	dd := b.TempDir()
	ep := filepath.Join(dd, "plain", "prefix")
	c := portage.Config{Release: rel, Repos: []portage.Repo{repo}, Profile: prof, EPrefix: ep,
		WorkDir: filepath.Join(dd, "plain", "work"), Mirror: abs(b, testDistfiles)}
	if err := os.MkdirAll(ep, 0o755); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := c.Prepare(ep, "compat", filepath.Join(testSets, "base")); err != nil {
		b.Fatal(err)
	}
	argv := c.Emerge(substSet(portage.InstallArgs, "compat")...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"HOME=" + dd, "LANG=C.UTF-8"}
	env := c.Env()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("plain emerge: %v\n%s", err, out)
	}
	return time.Since(start)
}

func substSet(args []string, set string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "@{{.Set}}" {
			a = "@" + set
		}
		out[i] = a
	}
	return out
}

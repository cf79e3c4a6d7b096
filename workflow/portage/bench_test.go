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
		b.Skip("needs root")
	}
	var plain, bot time.Duration
	for i := 0; i < b.N; i++ {
		dd := b.TempDir()
		rel := sharedRelease(b)
		repo, err := portage.OpenRepo(testRepo)
		if err != nil {
			b.Fatal(err)
		}
		prof, _ := repo.StableProfile("amd64")

		// Plain emerge.
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
		plain += time.Since(start)

		// compatbot.
		e := newRealEnv(b)
		start = time.Now()
		out := e.run(b, "base", "oldtool")
		bot += time.Since(start)
		if out.Check.Conclusion != report.Success {
			b.Fatalf("pipeline: %s: %s\n%s", out.Check.Conclusion, out.Check.Title, out.Check.Text)
		}
	}
	b.ReportMetric(plain.Seconds()/float64(b.N), "plain-emerge-s/op")
	b.ReportMetric(bot.Seconds()/float64(b.N), "compatbot-s/op")
	b.ReportMetric(100*(bot.Seconds()-plain.Seconds())/plain.Seconds(), "overhead-%")
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

package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/compattest"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/publish"
	"github.com/compatbot/compatbot/workflow/setscheck"
	"github.com/compatbot/compatbot/workflow/vdb"
)

func init() {
	register(command{Name: "status", Summary: "what each target has published now, per version and os-arch", Run: statusCmd})
}

const statusUsage = `Usage:
  compatbot status [--config FILE] [--repo DIR [--ref REF]]

For each target (test, prod) and each version/os-arch compatbot deployed
there: the current revision, the tag and PR of the deploy that made the
tree, the artifact digest, and how many deploys are waiting. It reads the
publish targets and the bot's database (<data_dir>/compatbot.db) of the
configuration; without --config, data_dir is ./var.

With --repo (the managed compat-layer git repository), it also shows the
drift: whether what is installed in each published tree (its package
database, var/db/pkg) satisfies every atom of the set on the default branch
(or REF), listing the atoms that are not; and the sets never deployed.

Examples:
  compatbot status --config /etc/compatbot/compatbot.yml
  compatbot status --repo ~/compat-layer --ref origin/main

Exit status: 0 shown (drift included), 2 usage, configuration, repository
or database errors.
`

func statusCmd(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("status", statusUsage, stdout, stderr)
	cfgPath := fl.String("config", "", "the configuration `FILE` (YAML)")
	repoDir := fl.String("repo", "", "the managed compat-layer git repository `DIR`, for drift")
	ref := fl.String("ref", "", "the `REF` whose sets are the reference (default: the default branch)")
	if code, done := parseFlags(fl, args, stdout); done {
		return code
	}
	cfg, err := loadLocalConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot status: %v\n", err)
		return 2
	}
	db, err := openDeployDB(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot status: %v\n", err)
		return 2
	}
	defer db.Close()
	pubs, layouts, err := openTargets(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "compatbot status: %v\n", err)
		return 2
	}
	store := &artifact.Store{Dir: filepath.Join(cfg.DataDir, "artifacts")}
	d, err := deploy.New(deploy.Options{DB: db, Targets: pubs, Layouts: layouts, Artifacts: deploy.StoreSource{Store: store}, Verify: deploy.ContentVerifier{Store: store}})
	if err != nil {
		fmt.Fprintf(stderr, "compatbot status: %v\n", err)
		return 2
	}
	st, err := d.Status(context.Background())
	if err != nil {
		fmt.Fprintf(stderr, "compatbot status: %v\n", err)
		return 2
	}
	var refSets *sets.Repo
	if *repoDir != "" {
		if refSets, err = loadReferenceSets(context.Background(), *repoDir, *ref); err != nil {
			fmt.Fprintf(stderr, "compatbot status: %v\n", err)
			return 2
		}
	} else if *ref != "" {
		fmt.Fprintln(stderr, "compatbot status: --ref needs --repo")
		return 2
	}
	if len(st) == 0 && refSets == nil {
		fmt.Fprintln(stdout, "Nothing deployed yet.")
		return 0
	}
	var details []string
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENV\tVERSION\tOS-ARCH\tREVISION\tTAG\tPR\tSETS COMMIT\tDEPLOYED BY\tDIGEST\tPENDING\tDRIFT")
	deployed := map[string]bool{}
	for _, s := range st {
		deployed[s.Env+" "+s.Target.String()] = true
		pr, digest := "-", dashIfEmpty(s.Digest)
		if s.PR > 0 {
			pr = fmt.Sprintf("#%d", s.PR)
		}
		if len(digest) > 19 {
			digest = digest[:19]
		}
		drift := "-"
		if refSets != nil {
			var more string
			drift, more = targetDrift(context.Background(), pubs[s.Env], s, refSets)
			if more != "" {
				details = append(details, fmt.Sprintf("%s %s:\n%s", s.Env, s.Target, more))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s-%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Env, s.Target.Version, s.Target.OS, s.Target.Arch, s.Revision, dashIfEmpty(s.Tag), pr,
			dashIfEmpty(shortSHA(s.SetsSHA)), deployedBy(s), digest, s.Pending, drift)
	}
	if refSets != nil {
		for _, env := range []string{deploy.EnvTest, deploy.EnvProd} {
			for _, t := range refSets.Targets() {
				if !deployed[env+" "+t.String()] {
					fmt.Fprintf(tw, "%s\t%s\t%s-%s\t-\t-\t-\t-\t-\t-\t-\tnot deployed\n", env, t.Version, t.OS, t.Arch)
				}
			}
		}
	}
	tw.Flush()
	for _, d := range details {
		fmt.Fprintf(stdout, "\n%s", d)
	}
	return 0
}

// loadReferenceSets reads the sets drift is measured against: REF, or the
// repository's default branch.
func loadReferenceSets(ctx context.Context, dir, ref string) (*sets.Repo, error) {
	if ref == "" {
		def, err := gitrepo.DefaultBranch(ctx, dir)
		if err != nil {
			return nil, fmt.Errorf("--repo %s: %w", dir, err)
		}
		ref = def
	}
	r, err := setscheck.LoadAt(ctx, dir, ref)
	if err != nil {
		return nil, fmt.Errorf("--repo %s at %s: %w", dir, ref, err)
	}
	return r, nil
}

// targetDrift compares what the published tree of s has installed with the
// reference set of its target: "in sync", or how many atoms are not
// satisfied plus one line per atom.
func targetDrift(ctx context.Context, pub publish.Publisher, s deploy.TargetStatus, ref *sets.Repo) (string, string) {
	sf := ref.Set(s.Target)
	if sf == nil {
		return "no set on the reference", ""
	}
	dir, _, err := pub.Current(ctx)
	if err != nil {
		return "unreadable", "  " + err.Error() + "\n"
	}
	installed, err := vdb.Read(filepath.Join(dir, s.Path))
	if err != nil {
		return "unreadable", "  " + err.Error() + "\n"
	}
	c := compattest.Satisfied(sf, installed)
	if c.Passed {
		return "in sync", ""
	}
	var b strings.Builder
	for _, a := range c.Annotations {
		fmt.Fprintf(&b, "  %s:%d: %s\n", a.Path, a.StartLine, a.Message)
	}
	return c.Summary, b.String()
}

// deployTargets is /status's view of the deploy targets (handlers'
// TargetStatus hook): the same rows as `compatbot status --repo`, as
// Markdown, with the sets read from the bot's git cache.
type deployTargets struct {
	d    *deploy.Engine
	pubs map[string]publish.Publisher
}

func (t deployTargets) TargetStatus(ctx context.Context, repo, gitDir, ref string) (string, error) {
	refSets, err := setscheck.LoadAt(ctx, gitDir, ref)
	if err != nil {
		return "", err
	}
	st, err := t.d.Status(ctx)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("| env | version | os-arch | tag | PR | sets commit | drift | pending |\n|---|---|---|---|---|---|---|---|\n")
	deployed := map[string]bool{}
	var details []string
	for _, s := range st {
		deployed[s.Env+" "+s.Target.String()] = true
		drift, more := targetDrift(ctx, t.pubs[s.Env], s, refSets)
		if more != "" {
			details = append(details, fmt.Sprintf("%s %s:\n\n```\n%s```\n", s.Env, s.Target, more))
		}
		pr := "–"
		if s.PR > 0 {
			pr = fmt.Sprintf("#%d", s.PR)
		}
		fmt.Fprintf(&b, "| %s | %s | %s-%s | `%s` | %s | %s | %s | %d |\n", s.Env, s.Target.Version, s.Target.OS, s.Target.Arch, dashIfEmpty(s.Tag), pr, dashIfEmpty(shortSHA(s.SetsSHA)), drift, s.Pending)
	}
	for _, env := range []string{deploy.EnvTest, deploy.EnvProd} {
		for _, tg := range refSets.Targets() {
			if !deployed[env+" "+tg.String()] {
				fmt.Fprintf(&b, "| %s | %s | %s-%s | – | – | – | not deployed | – |\n", env, tg.Version, tg.OS, tg.Arch)
			}
		}
	}
	for _, d := range details {
		b.WriteString("\n" + d)
	}
	return b.String(), nil
}

// deployedBy is who deployed what a target holds, and when ("-" when
// compatbot does not know).
func deployedBy(s deploy.TargetStatus) string {
	if s.Requester == "" {
		return "-"
	}
	when := s.Published
	if t, err := time.Parse(time.RFC3339Nano, s.Published); err == nil {
		when = t.UTC().Format("2006-01-02 15:04")
	}
	return "@" + s.Requester + " " + when
}

package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"

	"github.com/compatbot/compatbot/bot/config"
	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/publish"
)

func init() {
	register(command{Name: "status", Summary: "what each target has published now, per version and os-arch", Run: statusCmd})
}

const statusUsage = `Usage:
  compatbot status [--config FILE]

For each target (test, prod) and each version/os-arch compatbot deployed
there: the current revision, the tag and PR of the deploy that made the
tree, the artifact digest, and how many deploys are waiting. It reads the
publish targets and the bot's database (<data_dir>/deploy.db) of the
configuration; without --config, data_dir is ./var.

Exit status: 0 shown, 2 usage, configuration or database errors.
`

func statusCmd(args []string, stdout, stderr io.Writer) int {
	fl := newFlags("status", statusUsage, stdout, stderr)
	cfgPath := fl.String("config", "", "the configuration `FILE` (YAML)")
	if code, done := parseFlags(fl, args, stdout); done {
		return code
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "compatbot status: unexpected argument %q\n", fl.Arg(0))
		return 2
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
	pubs := map[string]publish.Publisher{}
	for env, t := range map[string]config.Target{deploy.EnvTest: cfg.Targets.Test, deploy.EnvProd: cfg.Targets.Prod} {
		p, err := publish.Open(targetConfig(cfg, env, t))
		if err != nil {
			fmt.Fprintf(stderr, "compatbot status: targets.%s: %v\n", env, err)
			return 2
		}
		pubs[env] = p
	}
	store := &artifact.Store{Dir: filepath.Join(cfg.DataDir, "artifacts")}
	d, err := deploy.New(deploy.Options{DB: db, Targets: pubs, Artifacts: deploy.StoreSource{Store: store}, Verify: deploy.ContentVerifier{Store: store}})
	if err != nil {
		fmt.Fprintf(stderr, "compatbot status: %v\n", err)
		return 2
	}
	st, err := d.Status(context.Background())
	if err != nil {
		fmt.Fprintf(stderr, "compatbot status: %v\n", err)
		return 2
	}
	if len(st) == 0 {
		fmt.Fprintln(stdout, "Nothing deployed yet.")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tVERSION\tOS-ARCH\tREVISION\tTAG\tPR\tDIGEST\tPENDING")
	for _, s := range st {
		pr, digest := "-", dashIfEmpty(s.Digest)
		if s.PR > 0 {
			pr = fmt.Sprintf("#%d", s.PR)
		}
		if len(digest) > 19 {
			digest = digest[:19]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s-%s\t%d\t%s\t%s\t%s\t%d\n", s.Env, s.Target.Version, s.Target.OS, s.Target.Arch, s.Revision, dashIfEmpty(s.Tag), pr, digest, s.Pending)
	}
	tw.Flush()
	return 0
}

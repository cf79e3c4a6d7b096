package prflow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/mirror"
	"github.com/compatbot/compatbot/workflow/pipeline"
	"github.com/compatbot/compatbot/workflow/report"
)

// A rebuild on the production base is a build variant of its own: its
// trigger is prodBasePrefix + production's lineage (so a production that
// moves again gets a new rebuild) and its check run is named
// "compat <version> <os>-<arch> (prod base)", so the head's own result
// and check run stay as they were.
const prodBasePrefix = "prod-base:"

// emptyLineage stands for a production tree compatbot never deployed to.
const emptyLineage = "empty"

// prodBaseTrigger is the trigger of the rebuild on a production tree of
// lineage lin ("" for a tree without one).
func prodBaseTrigger(lin string) string {
	if lin == "" {
		lin = emptyLineage
	}
	return prodBasePrefix + lin
}

func isProdBase(trigger string) bool { return strings.HasPrefix(trigger, prodBasePrefix) }

// prodBaseCheckName is the check run name of a production-base rebuild.
func prodBaseCheckName(t sets.Target) string { return pipeline.CheckName(t) + " (prod base)" }

func (r buildRow) checkName() string {
	if isProdBase(r.Trigger) {
		return prodBaseCheckName(r.Target)
	}
	return pipeline.CheckName(r.Target)
}

// RebuildOnProd starts (once) the rebuild of the head sha of pr for t on
// production's current tree, whose lineage is prodLineage. It needs the
// head's own passing build: the rebuild takes exactly the sources that
// build put into the mirror. The answer is one Markdown line for the PR
// saying what happened (started, still running, passed, failed).
func (b *Builder) RebuildOnProd(ctx context.Context, repo string, pr int, sha string, t sets.Target, prodLineage string) (string, error) {
	name := "`" + prodBaseCheckName(t) + "`"
	orig, err := b.testBuild(ctx, repo, pr, sha, t)
	if err != nil {
		return "", err
	}
	if orig == nil {
		return fmt.Sprintf("%s: not started: %s has no passing build at %s to rebuild.", name, t, short(sha)), nil
	}
	trg := prodBaseTrigger(prodLineage)
	k := orig.key()
	k.trg = trg
	if cur, err := b.row(ctx, k); err == nil && cur.State == "done" {
		if cur.Digest != "" {
			return fmt.Sprintf("%s passed already (artifact `%s`): deploy it with `/deploy test`.", name, shortDigest(cur.Digest)), nil
		}
		return fmt.Sprintf("%s ended %s: %s. Push a fix (its build puts the sources into the mirror again) and deploy again.", name, cur.Conclusion, cur.Title), nil
	} else if err == nil {
		return fmt.Sprintf("%s is running already.", name), nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	if err := b.Build(ctx, BuildRequest{Repo: repo, Installation: orig.Installation, PR: pr, BaseRef: orig.BaseRef, BaseSHA: orig.BaseSHA,
		HeadSHA: sha, ConfigSHA: orig.ConfigSHA, GitDir: orig.GitDir, Targets: []sets.Target{t}, Trigger: trg, AllowLibcUpdate: orig.AllowLibcUpdate}); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s started: %s at %s on production's tree (lineage `%s`), sources from the mirror only.", name, t, short(sha), lineageShort(prodLineage)), nil
}

// testBuild is the newest passing build of the head that is not itself a
// production-base rebuild: the one whose sources were mirrored.
func (b *Builder) testBuild(ctx context.Context, repo string, pr int, sha string, t sets.Target) (*buildRow, error) {
	rows, err := b.rows(ctx, `repo=? AND pr=? AND head_sha=? AND version=? AND os=? AND arch=? AND state='done' AND digest<>''`,
		repo, pr, sha, t.Version, t.OS, t.Arch)
	if err != nil {
		return nil, err
	}
	for i := len(rows) - 1; i >= 0; i-- {
		if !isProdBase(rows[i].Trigger) {
			return &rows[i], nil
		}
	}
	return nil, nil
}

// prodBase is the setup of one production-base rebuild.
type prodBase struct {
	distDir string
	build   pipeline.BuildConfig
	entries []mirror.Entry
}

// prepareProdBase fills a private DISTDIR from the mirror with the sources
// the head's test build recorded. A missing or mismatching file fails the
// build with the file named, before anything is built.
func (b *Builder) prepareProdBase(ctx context.Context, r *buildRow, dataDir string) (*prodBase, *report.Check) {
	fail := func(title, summary string) (*prodBase, *report.Check) {
		return nil, &report.Check{Name: r.checkName(), Conclusion: report.Failure, Title: title, Summary: summary}
	}
	switch {
	case b.opts.ProdLower == nil:
		return fail("No production tree configured", "compatbot has no production target to rebuild on (prflow Options.ProdLower is not set).")
	case b.opts.Mirror == nil:
		return fail("No source mirror configured", "A rebuild on the production base takes its sources from the mirror only, and no mirror is configured.")
	}
	orig, err := b.testBuild(ctx, r.Repo, r.PR, r.HeadSHA, r.Target)
	if err != nil {
		return fail("Cannot read the test build's record", err.Error())
	}
	if orig == nil || !strings.HasPrefix(orig.Distfiles, manifestMark) {
		return fail("No mirror record of the test build's sources",
			fmt.Sprintf("The passing build of %s at %s recorded no sources in the mirror, so there is nothing to rebuild from. Push again to build and mirror it.", r.Target, short(r.HeadSHA)))
	}
	ents, err := mirror.ParseManifest("recorded Manifest of "+orig.RunID, []byte(orig.Distfiles))
	if err != nil {
		return fail("The recorded Manifest of the test build is unreadable", err.Error())
	}
	dist := filepath.Join(dataDir, "mirror-distdir", r.RunID)
	if _, err := os.Stat(dist); err != nil || !r.resumed {
		// Filled beside and renamed into place: a remote run taken up
		// after a restart keeps the DISTDIR its job may be reading, and
		// one that exists is whole.
		tmp := dist + ".tmp"
		if err := os.RemoveAll(tmp); err != nil {
			return fail("Cannot prepare DISTDIR", err.Error())
		}
		for _, e := range ents {
			// One at a time, so the failure names the file for certain.
			if err := b.opts.Mirror.Materialize(ctx, []mirror.Entry{e}, tmp); err != nil {
				os.RemoveAll(tmp)
				return fail(fmt.Sprintf("Source %s is missing from the mirror or does not match it", e.Name),
					fmt.Sprintf("A rebuild on the production base takes its sources from the mirror only, and `%s` cannot be taken from it:\n\n```\n%v\n```\n\nNothing was built.", e.Name, err))
			}
		}
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return fail("Cannot prepare DISTDIR", err.Error())
		}
		if err := os.RemoveAll(dist); err != nil {
			return fail("Cannot prepare DISTDIR", err.Error())
		}
		if err := os.Rename(tmp, dist); err != nil {
			return fail("Cannot prepare DISTDIR", err.Error())
		}
	}
	cfg := b.opts.Build
	cfg.DistDir = dist
	cfg.Env = maps.Clone(cfg.Env)
	if cfg.Env == nil {
		cfg.Env = map[string]string{}
	}
	// Portage must not fetch: no mirrors and fetch commands that fail,
	// besides the sandbox's closed network when the sandbox is on.
	cfg.Env["GENTOO_MIRRORS"] = ""
	cfg.Env["FETCHCOMMAND"] = "false"
	cfg.Env["RESUMECOMMAND"] = "false"
	return &prodBase{distDir: dist, build: cfg, entries: ents}, nil
}

// describe turns the pipeline's outcome into the rebuild's: its artifact
// is promotable only with the production lineage it was built on.
func (pb *prodBase) describe(out *outcome, linErr error) {
	out.distfiles = recordManifest(pb.entries)
	if out.check.Conclusion != report.Success {
		out.check.Title = "On the production base: " + out.check.Title
		return
	}
	if linErr != nil {
		out.check.Conclusion = report.Failure
		out.check.Title = "Cannot read the lineage of the production tree"
		out.check.Summary = linErr.Error() + "\n\n" + out.check.Summary
		return
	}
	out.check.Title = "On the production base: " + out.check.Title
	out.check.Summary = fmt.Sprintf("Rebuilt on production's tree (lineage `%s`) with %d source files from the mirror only. Deploy it with `/deploy test`; `/deploy prod` then promotes it.\n\n",
		lineageShort(out.lineage), len(pb.entries)) + out.check.Summary
}

// manifestMark starts a recorded Manifest, so a build that mirrored no
// files differs from one that mirrored nothing (no mirror, or it failed).
// ParseManifest skips the line: it is not a DIST line.
const manifestMark = "# compatbot: sources of this build in the mirror\n"

func recordManifest(ents []mirror.Entry) string {
	return manifestMark + string(mirror.FormatManifest(ents))
}

func lineageShort(l string) string {
	if l == "" || l == emptyLineage {
		return "empty"
	}
	if len(l) > 12 {
		return l[:12]
	}
	return l
}

package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compatbot/compatbot/workflow/artifact"
	"github.com/google/go-cmp/cmp"
)

// The crash tests re-run this test binary as a child that deploys (or
// rolls back) with a failpoint that SIGKILLs it at one step, then restart
// compatbot in the parent (new Engine, same database and repositories)
// and check what Recover makes of it.
const childEnv = "COMPATBOT_DEPLOY_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		if err := child(role); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		// Reaching here means the failpoint never fired.
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func child(role string) error {
	dir := os.Getenv("COMPATBOT_DEPLOY_TEST_DIR")
	store := &artifact.Store{Dir: filepath.Join(dir, "artifacts")}
	v := &compatVerifier{content: ContentVerifier{Store: store}}
	d, db, _, err := openDeployer(dir, store, v, newMemChangelog(), nil, time.Now, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	switch role {
	case "deploy":
		pr, _ := strconv.Atoi(os.Getenv("COMPATBOT_DEPLOY_TEST_PR"))
		_, err = d.DeployTest(ctx, req(pr, sha(pr), Item{Target: x86, Digest: os.Getenv("COMPATBOT_DEPLOY_TEST_DIGEST")}))
	case "rollback":
		_, err = d.Rollback(ctx, EnvTest, "", "carol")
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	return err
}

func runChild(t *testing.T, r *rig, role, failEnv, failpoint, digest string, pr int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role, "COMPATBOT_DEPLOY_TEST_DIR="+r.dir,
		"COMPATBOT_DEPLOY_TEST_DIGEST="+digest, "COMPATBOT_DEPLOY_TEST_PR="+strconv.Itoa(pr), failEnv+"="+failpoint)
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child at %s: want killed by SIGKILL, got %v\n%s", failpoint, err, out)
	}
}

func TestCrashRecovery(t *testing.T) {
	prefixB := map[string]string{"startprefix": "#!/bin/sh\n", "usr/bin/bash": "bash-5.3\n", "etc/motd": "<whiteout>", "usr/bin/zsh": "zsh\n"}
	for _, tc := range []struct {
		failEnv, failpoint string
		outcome            string // Recovered.Outcome
		published          bool
		failedStep         string
	}{
		{FailpointEnv, "after-enqueue", "resumed", true, ""},
		// Failpoints fire right after the external step, before the journal
		// records it: the journal lags the world, the worst case.
		{FailpointEnv, "after-tx-open", "aborted", false, "open transaction"},
		{"COMPATBOT_PUBLISH_FAILPOINT", "after-mount", "aborted", false, "open transaction"},
		{FailpointEnv, "before-apply", "aborted", false, "apply"},
		{FailpointEnv, "after-apply", "aborted", false, "apply"},
		{FailpointEnv, "before-publish", "aborted", false, "publish"},
		{"COMPATBOT_PUBLISH_FAILPOINT", "after-revision", "aborted", false, "publish"},
		{"COMPATBOT_PUBLISH_FAILPOINT", "after-commit", "published", true, ""},
		{FailpointEnv, "after-publish", "published", true, ""},
		{FailpointEnv, "after-journal-published", "published", true, ""},
		{FailpointEnv, "after-verify", "published", true, ""},
	} {
		t.Run(tc.failpoint, func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			a := r.artifact(prefixA)
			ra := r.deployTest(1, a)
			oldTree := r.targetTree(EnvTest, x86)
			b := r.artifact(prefixB)
			linB := NextLineage(NextLineage("", a), b)
			newTree := merge(oldTree, map[string]string{"usr/bin/bash": "bash-5.3\n", "etc/motd": "<deleted>", "usr/bin/zsh": "zsh\n"}, markers(linB, b))

			runChild(t, r, "deploy", tc.failEnv, tc.failpoint, b, 2)
			r.open() // restart
			recs, err := r.d.Recover(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].Outcome != tc.outcome || recs[0].Result.PR != 2 {
				t.Fatalf("recovered %+v, want one %s of PR 2", recs, tc.outcome)
			}
			r.noOpenTransaction(EnvTest)
			got := r.targetTree(EnvTest, x86)
			res := recs[0].Result
			if tc.published {
				if diff := cmp.Diff(newTree, got); diff != "" {
					t.Errorf("tree is not exactly the new one (-want +got):\n%s", diff)
				}
				wantTag := "2025.06-linux-x86_64-pr2-" + sha(2)[:7]
				if tags := r.tags(EnvTest); !cmp.Equal(tags, []string{wantTag, ra.Items[0].Tag}) {
					t.Errorf("tags %v", tags)
				}
				if !res.OK() || res.Items[0].State != stVerified {
					t.Errorf("result %+v", res)
				}
				contains(t, "changelog", r.clog.file("changelog/2025.06.md"), wantTag)
			} else {
				if diff := cmp.Diff(oldTree, got); diff != "" {
					t.Errorf("tree is not exactly the old one (-want +got):\n%s", diff)
				}
				if tags := r.tags(EnvTest); !cmp.Equal(tags, []string{ra.Items[0].Tag}) {
					t.Errorf("tags %v", tags)
				}
				if res.OK() || res.Items[0].State != stAborted || res.Items[0].FailedStep != tc.failedStep {
					t.Errorf("result item %+v, want aborted at %s", res.Items[0], tc.failedStep)
				}
				if strings.Contains(r.clog.file("changelog/2025.06.md"), "pr2") {
					t.Errorf("changelog names the aborted deploy")
				}
			}
			// The PR is told, and the journal has nothing left in flight.
			if len(r.notify.outcomes) != 1 || !r.notify.outcomes[0].Recovered {
				t.Fatalf("outcome notifications %+v", r.notify.outcomes)
			}
			md := r.notify.outcomes[0].Markdown()
			if tc.published {
				contains(t, "notification", md, "Deployed PR #2 to `test`")
			} else {
				contains(t, "notification", md, "Deploy failed", "Failed at step **"+tc.failedStep+"**", "aborted")
			}
			if tc.outcome != "resumed" {
				contains(t, "notification", md, "compatbot restarted")
			}
			var inflight int
			r.db.QueryRow(`SELECT COUNT(*) FROM deploy_items WHERE state NOT IN ('verified', 'failed', 'aborted')`).Scan(&inflight)
			if inflight != 0 {
				t.Errorf("%d items still in flight", inflight)
			}
			if n, _ := r.d.PendingChangelog(ctx); n != 0 {
				t.Errorf("%d changelog entries pending", n)
			}
			// A second Recover has nothing to do.
			if recs, err := r.d.Recover(ctx); err != nil || len(recs) != 0 {
				t.Errorf("second Recover: %+v %v", recs, err)
			}
			// And deploying works again.
			r.deployTest(3, a)
		})
	}
}

func TestCrashDuringRollback(t *testing.T) {
	for _, tc := range []struct {
		failEnv, failpoint string
		outcome            string
	}{
		{FailpointEnv, "after-rollback", "rolled-back"},
		{"COMPATBOT_PUBLISH_FAILPOINT", "after-clone", "rollback-failed"},
	} {
		t.Run(tc.failpoint, func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			a := r.artifact(prefixA)
			ra := r.deployTest(1, a)
			treeA := r.targetTree(EnvTest, x86)
			if _, err := r.d.DeployTest(ctx, req(2, sha(2), Item{Target: x86, Digest: r.artifact(map[string]string{"startprefix": "B\n"})})); err != nil {
				t.Fatal(err)
			}
			treeB := r.targetTree(EnvTest, x86)
			runChild(t, r, "rollback", tc.failEnv, tc.failpoint, "", 0)
			r.open()
			recs, err := r.d.Recover(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].Outcome != tc.outcome {
				t.Fatalf("recovered %+v, want %s", recs, tc.outcome)
			}
			r.noOpenTransaction(EnvTest)
			md := r.notify.outcomes[0].Markdown()
			if tc.outcome == "rolled-back" {
				if diff := cmp.Diff(treeA, r.targetTree(EnvTest, x86)); diff != "" {
					t.Errorf("tree after recovered rollback (-want +got):\n%s", diff)
				}
				contains(t, "notification", md, "Rolled `test` back to tag `"+ra.Items[0].Tag+"`", "compatbot restarted")
				contains(t, "changelog", r.clog.file("changelog/2025.06.md"), "rollback to `"+ra.Items[0].Tag+"`")
			} else {
				if diff := cmp.Diff(treeB, r.targetTree(EnvTest, x86)); diff != "" {
					t.Errorf("tree after failed rollback (-want +got):\n%s", diff)
				}
				contains(t, "notification", md, "Rollback of `test`", "failed", "published tree is unchanged")
			}
		})
	}
}

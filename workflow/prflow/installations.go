package prflow

import (
	"context"

	"github.com/compatbot/compatbot/workflow/state"
)

// The installation of each repository is remembered from its events
// (rememberInstallation), from installation events, and from lookups
// through GitHub's API; these are the exported ways in for the bot side.

// RememberInstallation records that installation inst of the App sees
// repo (a no-op for 0).
func RememberInstallation(ctx context.Context, db *state.DB, repo string, inst int64) error {
	return rememberInstallation(ctx, db, repo, inst)
}

// ForgetInstallation forgets every repository of installation inst (the
// App was uninstalled): a later deploy looks it up again rather than use a
// token GitHub would refuse.
func ForgetInstallation(ctx context.Context, db *state.DB, inst int64) error {
	_, err := db.ExecContext(ctx, `DELETE FROM prflow_installations WHERE installation=?`, inst)
	return err
}

// ForgetRepoInstallation forgets repo if installation inst is the one
// recorded for it (the repository was removed from that installation; a
// newer one may already have been recorded and is kept).
func ForgetRepoInstallation(ctx context.Context, db *state.DB, repo string, inst int64) error {
	_, err := db.ExecContext(ctx, `DELETE FROM prflow_installations WHERE repo=? AND installation=?`, repo, inst)
	return err
}

package prflow

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/compatbot/compatbot/workflow/state"
)

// DeployLog is what the lifecycle recorded about the command behind a
// GitHub Deployment: the page a deployment status's log_url shows.
type DeployLog struct {
	Repo, Env, Kind, Tag, User, State string
	PR                                int
	HeadSHA                           string
	Created                           time.Time
	Reply                             string // the answer posted on the PR (Markdown); empty while running
}

// DeployLogOf returns the record of the command whose GitHub Deployment
// is id; ok is false when there is none.
func DeployLogOf(ctx context.Context, db *state.DB, id int64) (DeployLog, bool, error) {
	var l DeployLog
	var created int64
	err := db.QueryRowContext(ctx, `SELECT repo, env, kind, tag, user, state, pr, head_sha, created_at, reply FROM prflow_deploy_calls WHERE deployment_id=? AND deployment_id<>0 ORDER BY created_at DESC LIMIT 1`, id).
		Scan(&l.Repo, &l.Env, &l.Kind, &l.Tag, &l.User, &l.State, &l.PR, &l.HeadSHA, &created, &l.Reply)
	if errors.Is(err, sql.ErrNoRows) {
		return l, false, nil
	}
	l.Created = time.Unix(created, 0).UTC()
	return l, err == nil, err
}

// SetDeploymentID records the GitHub Deployment of a command that the bot
// side created itself (a rollback's), so DeployLogOf finds it.
func SetDeploymentID(ctx context.Context, db *state.DB, repo string, commentID int64, line int, id int64) error {
	_, err := db.ExecContext(ctx, `UPDATE prflow_deploy_calls SET deployment_id=? WHERE repo=? AND comment_id=? AND line=?`, id, repo, commentID, line)
	return err
}

// DeploymentIDOf is the GitHub Deployment recorded for a command (0: none).
func DeploymentIDOf(ctx context.Context, db *state.DB, repo string, commentID int64, line int) (int64, error) {
	var id int64
	err := db.QueryRowContext(ctx, `SELECT deployment_id FROM prflow_deploy_calls WHERE repo=? AND comment_id=? AND line=?`, repo, commentID, line).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

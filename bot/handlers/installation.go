package handlers

import (
	"context"
	"fmt"
	"strings"

	"github.com/compatbot/compatbot/bot/intake"
	"github.com/compatbot/compatbot/workflow/prflow"
)

// installationEvent is the payload of `installation` (the App installed,
// uninstalled, suspended) and `installation_repositories` (repositories
// added to or removed from an installation).
type installationEvent struct {
	Action       string       `json:"action"`
	Installation installation `json:"installation"`
	// installation created: the repositories it starts with (absent when
	// the installation covers all of the account's repositories and
	// GitHub chose not to list them).
	Repositories []repository `json:"repositories"`
	// installation_repositories added/removed.
	RepositoriesAdded   []repository `json:"repositories_added"`
	RepositoriesRemoved []repository `json:"repositories_removed"`
}

// installation keeps the repository → installation map that deploys use
// (ghports looks a repository up through it, and asks GitHub when it has
// nothing) in step with GitHub: a repository is known from the moment the
// App is installed on it, not from its first pull request, and a removed
// or uninstalled one is forgotten, so no token is asked for an
// installation GitHub has deleted.
func (h *Handler) installationChanged(ctx context.Context, d *intake.Delivery) error {
	var ev installationEvent
	if err := decode(d, &ev); err != nil {
		return err
	}
	id := ev.Installation.ID
	if id <= 0 {
		return intake.Permanent(errPayload("installation.id is required"))
	}
	db := h.opts.DB
	var add, remove []repository
	switch d.Event + "/" + ev.Action {
	case "installation/created", "installation/new_permissions_accepted", "installation/unsuspend":
		add = ev.Repositories
	case "installation/deleted", "installation/suspend":
		// A suspended installation gets no tokens either; unsuspend
		// lists its repositories again (or the API lookup finds them).
		return prflow.ForgetInstallation(ctx, db, id)
	case "installation_repositories/added":
		add = ev.RepositoriesAdded
	case "installation_repositories/removed":
		remove = ev.RepositoriesRemoved
	default:
		return nil
	}
	for _, r := range add {
		if err := validFullName(r.FullName); err != nil {
			return err
		}
		if err := prflow.RememberInstallation(ctx, db, r.FullName, id); err != nil {
			return fmt.Errorf("remembering %s in installation %d: %w", r.FullName, id, err)
		}
	}
	for _, r := range remove {
		if err := validFullName(r.FullName); err != nil {
			return err
		}
		if err := prflow.ForgetRepoInstallation(ctx, db, r.FullName, id); err != nil {
			return fmt.Errorf("forgetting %s of installation %d: %w", r.FullName, id, err)
		}
	}
	h.log.Info("installation event", "event", d.Event, "action", ev.Action, "installation", id, "added", len(add), "removed", len(remove))
	return nil
}

// validFullName checks an owner/name from an installation payload, whose
// repositories carry no clone_url (validRepo wants one).
func validFullName(full string) error {
	o, n, ok := strings.Cut(full, "/")
	if !ok || o == "" || n == "" || strings.Contains(n, "/") {
		return intake.Permanent(fmt.Errorf("payload repository full_name %q is not owner/name", full))
	}
	return nil
}

// Package authz decides who may run which comment command. The rules come
// from the repository config (sets.Config.Deploy) as read from the default
// branch, never from the PR under discussion, so a PR cannot grant itself
// rights. Decide is the pure decision; Resolver fetches what it needs from
// GitHub (permission level, team memberships).
package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/compatbot/compatbot/bot/commands"
	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/sets"
	"github.com/google/go-github/v60/github"
)

// Action is what a command asks to do.
type Action string

const (
	DeployTest   Action = "deploy-test"
	DeployProd   Action = "deploy-prod"
	Rebuild      Action = "rebuild"
	RollbackTest Action = "rollback-test"
	RollbackProd Action = "rollback-prod"
	Status       Action = "status"
	Help         Action = "help"
)

// ActionOf maps a parsed command to its action.
func ActionOf(c commands.Command) Action {
	switch c.Name {
	case commands.Deploy:
		if c.Env == "prod" {
			return DeployProd
		}
		return DeployTest
	case commands.Rollback:
		if c.Env == "prod" {
			return RollbackProd
		}
		return RollbackTest
	case commands.Rebuild:
		return Rebuild
	case commands.Status:
		return Status
	}
	return Help
}

// Levels of GitHub repository roles, lowest first.
var Levels = []string{"none", "read", "triage", "write", "maintain", "admin"}

// Rank orders a role name; unknown names rank as none.
func Rank(level string) int { return max(slices.Index(Levels, level), 0) }

// DefaultLevel is the level an action needs when the config says nothing:
// the level sets.DefaultConfig gives its rule.
func DefaultLevel(a Action) string {
	perm, _, _ := Rule(sets.DefaultConfig().Deploy, a)
	return perm.Level
}

// Rule returns the permission the policy sets for a, with the config key
// it comes from; ok is false for actions anyone may run.
func Rule(p sets.DeployPolicy, a Action) (perm sets.Permission, key string, ok bool) {
	switch a {
	case DeployTest:
		return p.Test, "deploy.test", true
	case DeployProd:
		return p.Prod, "deploy.prod", true
	case Rebuild:
		return p.Rebuild, "deploy.rebuild", true
	case RollbackTest, RollbackProd:
		return p.Rollback, "deploy.rollback", true
	}
	return sets.Permission{}, "", false
}

// Subject is the person asking.
type Subject struct {
	Login string
	Level string          // role on the repository: none, read, triage, write, maintain, admin
	Teams map[string]bool // "org/slug" -> active member, for the teams the rule lists
}

// Decision of Decide; Reason is Markdown fit to post when refused.
type Decision struct {
	Allowed bool
	Reason  string
}

// Decide says whether who may perform a on a PR by prAuthor. A rule grants
// by level (the rule's, or DefaultLevel when the rule has none) or by being
// listed in its users or teams. Nobody may deploy their own PR to prod
// unless the policy sets AllowSelfProd, whatever their level.
func Decide(p sets.DeployPolicy, a Action, who Subject, prAuthor string) Decision {
	perm, key, ok := Rule(p, a)
	if !ok {
		return Decision{Allowed: true}
	}
	cmd := commandText(a)
	if a == DeployProd && !p.AllowSelfProd && prAuthor != "" && strings.EqualFold(who.Login, prAuthor) {
		return Decision{Reason: fmt.Sprintf("@%s may not `%s` their own pull request: another person has to, unless the repository config sets `deploy.allow_self_prod: true`.", who.Login, cmd)}
	}
	level := perm.Level
	if level == "" {
		level = DefaultLevel(a)
	}
	if Rank(who.Level) >= Rank(level) {
		return Decision{Allowed: true}
	}
	for _, u := range perm.Users {
		if strings.EqualFold(u, who.Login) {
			return Decision{Allowed: true}
		}
	}
	for _, t := range perm.Teams {
		if who.Teams[strings.ToLower(t)] {
			return Decision{Allowed: true}
		}
	}
	have := who.Level
	if have == "" {
		have = "none"
	}
	reason := fmt.Sprintf("@%s may not `%s`: it needs the `%s` role or higher on this repository (you have `%s`)", who.Login, cmd, level, have)
	if len(perm.Users)+len(perm.Teams) > 0 {
		reason += fmt.Sprintf(", or being listed in `%s` users or teams", key)
	}
	return Decision{Reason: reason + " of the repository config on the default branch."}
}

func commandText(a Action) string {
	switch a {
	case DeployTest:
		return "/deploy test"
	case DeployProd:
		return "/deploy prod"
	case RollbackTest:
		return "/rollback test"
	case RollbackProd:
		return "/rollback prod"
	}
	return "/" + string(a)
}

// Resolver asks GitHub for what Decide needs.
type Resolver struct {
	Client *github.Client
}

// Level returns login's role on owner/repo: role_name (which knows maintain
// and triage) when it is one of Levels, else the legacy permission field
// (custom roles report their base there). A login GitHub does not know is
// "none".
func (r *Resolver) Level(ctx context.Context, owner, repo, login string) (string, error) {
	u := fmt.Sprintf("repos/%s/%s/collaborators/%s/permission", owner, repo, login)
	req, err := r.Client.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	var out struct {
		Permission string `json:"permission"`
		RoleName   string `json:"role_name"`
	}
	if _, err := r.Client.Do(ghclient.WithNotFoundAnswer(ctx), req, &out); err != nil {
		if statusOf(err) == http.StatusNotFound {
			return "none", nil
		}
		return "", fmt.Errorf("permission of %s on %s/%s: %w", login, owner, repo, err)
	}
	if slices.Contains(Levels, out.RoleName) {
		return out.RoleName, nil
	}
	if slices.Contains(Levels, out.Permission) {
		return out.Permission, nil
	}
	return "none", nil
}

// InTeam reports whether login is an active member of org/slug. 404 (not a
// member, or no such team) and 403 (the App may not read the org's members)
// both mean no.
func (r *Resolver) InTeam(ctx context.Context, orgSlug, login string) (bool, error) {
	org, slug, ok := strings.Cut(orgSlug, "/")
	if !ok {
		return false, fmt.Errorf("team %q is not org/slug", orgSlug)
	}
	m, _, err := r.Client.Teams.GetTeamMembershipBySlug(ghclient.WithNotFoundAnswer(ctx), org, slug, login)
	if err != nil {
		if s := statusOf(err); s == http.StatusNotFound || s == http.StatusForbidden {
			return false, nil
		}
		return false, fmt.Errorf("membership of %s in %s: %w", login, orgSlug, err)
	}
	return m.GetState() == "active", nil
}

func statusOf(err error) int {
	var e *github.ErrorResponse
	if errors.As(err, &e) && e.Response != nil {
		return e.Response.StatusCode
	}
	return 0
}

// Authorize fetches login's level and, only when the level does not already
// grant it, the teams the rule lists; then decides. Actions anyone may run
// cost no API call.
func (r *Resolver) Authorize(ctx context.Context, owner, repo string, p sets.DeployPolicy, a Action, login, prAuthor string) (Decision, error) {
	perm, _, ok := Rule(p, a)
	if !ok {
		return Decision{Allowed: true}, nil
	}
	who := Subject{Login: login, Teams: map[string]bool{}}
	if a == DeployProd && !p.AllowSelfProd && strings.EqualFold(login, prAuthor) {
		return Decide(p, a, who, prAuthor), nil
	}
	lvl, err := r.Level(ctx, owner, repo, login)
	if err != nil {
		return Decision{}, err
	}
	who.Level = lvl
	if d := Decide(p, a, who, prAuthor); d.Allowed {
		return d, nil
	}
	for _, t := range perm.Teams {
		in, err := r.InTeam(ctx, t, login)
		if err != nil {
			return Decision{}, err
		}
		who.Teams[strings.ToLower(t)] = in
		if in {
			break
		}
	}
	return Decide(p, a, who, prAuthor), nil
}

package handlers

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/compatbot/compatbot/workflow/prflow"
	"slices"
	"strings"
	"time"

	"github.com/compatbot/compatbot/bot/authz"
	"github.com/compatbot/compatbot/bot/commands"
	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/bot/intake"
	"github.com/compatbot/compatbot/sets"
	"github.com/compatbot/compatbot/workflow/deploy"
	"github.com/compatbot/compatbot/workflow/gitrepo"
	"github.com/compatbot/compatbot/workflow/report"
	"github.com/compatbot/compatbot/workflow/setscheck"
	"github.com/google/go-github/v60/github"
)

type issueCommentEvent struct {
	Action string `json:"action"`
	Issue  struct {
		Number      int       `json:"number"`
		User        user      `json:"user"`
		PullRequest *struct{} `json:"pull_request"`
	} `json:"issue"`
	Comment struct {
		ID        int64     `json:"id"`
		Body      string    `json:"body"`
		User      user      `json:"user"`
		CreatedAt time.Time `json:"created_at"`
	} `json:"comment"`
	Repository   repository   `json:"repository"`
	Installation installation `json:"installation"`
}

// maxComment leaves room under GitHub's 65,536-character comment limit.
const maxComment = 65000

// replyMarker starts every reply so a reply whose post was cut short can be
// found again instead of posted twice.
func replyMarker(commentID int64) string {
	return fmt.Sprintf("<!-- compatbot reply to comment %d -->", commentID)
}

func (h *Handler) isBot(u user) bool {
	return u.Type == "Bot" || strings.HasSuffix(u.Login, "[bot]") || (h.opts.BotLogin != "" && strings.EqualFold(u.Login, h.opts.BotLogin))
}

// pullState is what the handler needs to know about the PR now.
type pullState struct {
	number  int
	author  string
	headSHA string
	headRef string
	baseRef string
	// baseHint is GitHub's base.sha; mergeSHA the merge's commit on the
	// base branch (merged PRs).
	baseHint string
	mergeSHA string
	merged   bool
	labels   []string
	state    string
	repo     repository
	inst     int64
	gh       *github.Client
	config   *sets.Config
	cfgErr   error
	gitDir   string
	rev      *setscheck.Revisions
	targets  []sets.Target
	targErr  error
	loaded   bool
}

// issueComment reads the commands of a new comment on a PR, checks each,
// runs the accepted ones, reacts to them and answers in one reply. Edited
// and deleted comments, comments on issues and comments by bots are
// ignored, as is a comment with no command: it costs no API call.
func (h *Handler) issueComment(ctx context.Context, d *intake.Delivery) error {
	var ev issueCommentEvent
	if err := decode(d, &ev); err != nil {
		return err
	}
	if ev.Action != "created" || ev.Issue.PullRequest == nil || h.isBot(ev.Comment.User) {
		return nil
	}
	var results []commands.Result
	for _, r := range commands.Parse(ev.Comment.Body) {
		if !r.Ignore {
			results = append(results, r)
		}
	}
	if len(results) == 0 {
		return nil
	}
	if err := validRepo(ev.Repository); err != nil {
		return err
	}
	repo := ev.Repository.FullName
	replyState, err := h.replyState(ctx, repo, ev.Comment.ID)
	if err != nil {
		return err
	}
	if replyState == "posted" || replyState == "none" {
		return nil // handled by an earlier delivery of the same comment
	}
	gh, err := h.client(ctx, ev.Installation.ID)
	if err != nil {
		return err
	}
	var p *pullState
	if slices.ContainsFunc(results, func(r commands.Result) bool { return r.Command != nil }) {
		if p, err = h.loadPull(ctx, gh, ev.Repository, ev.Installation.ID, ev.Issue.Number); err != nil {
			return err
		}
	} else {
		// Only usage answers: no need to look at the PR.
		p = &pullState{number: ev.Issue.Number, repo: ev.Repository, inst: ev.Installation.ID, gh: gh}
	}
	var sections []string
	reactions := map[string]bool{}
	for _, r := range results {
		if r.Reply != "" {
			sections = append(sections, fmt.Sprintf("Line %d: %s", r.Line, r.Reply))
			continue
		}
		sec, reaction, err := h.command(ctx, d, &ev, p, *r.Command)
		if err != nil {
			return err
		}
		if reaction != "" {
			reactions[reaction] = true
		}
		if sec != "" {
			sections = append(sections, sec)
		}
	}
	rctx := ghclient.WithRetrySafe(ctx) // GitHub answers 200 for an existing reaction
	for _, content := range []string{"+1", "rocket"} {
		if reactions[content] {
			if _, _, err := gh.Reactions.CreateIssueCommentReaction(rctx, p.owner(), p.name(), ev.Comment.ID, content); err != nil {
				return fmt.Errorf("react to comment %d: %w", ev.Comment.ID, err)
			}
		}
	}
	if len(sections) == 0 {
		return h.noReply(ctx, repo, ev.Comment.ID)
	}
	body := replyMarker(ev.Comment.ID) + "\n@" + ev.Comment.User.Login + "\n\n" + strings.Join(sections, "\n\n---\n\n")
	if r := []rune(body); len(r) > maxComment {
		// GitHub refuses comments over 65,536 characters.
		body = string(r[:maxComment]) + "\n\n*(reply shortened)*"
	}
	return h.postReply(ctx, gh, p, ev.Comment.ID, replyState == "pending", body)
}

// defaultBranch is the repository's default branch, the config's source;
// the PR's base when the payload and the PR do not name it.
func (p *pullState) defaultBranch() string {
	if p.repo.DefaultBranch != "" {
		return p.repo.DefaultBranch
	}
	return p.baseRef
}

func (p *pullState) owner() string { o, _, _ := strings.Cut(p.repo.FullName, "/"); return o }
func (p *pullState) name() string  { _, n, _ := strings.Cut(p.repo.FullName, "/"); return n }

// replyState is where the reply to commentID stands: "" (not begun),
// "pending" (posted with an outcome unknown), "posted" or "none" (nothing
// to say).
func (h *Handler) replyState(ctx context.Context, repo string, commentID int64) (string, error) {
	var st string
	err := h.opts.DB.QueryRowContext(ctx, `SELECT state FROM comment_replies WHERE repo=? AND comment_id=?`, repo, commentID).Scan(&st)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	return st, nil
}

// noReply records that commentID needs no reply.
func (h *Handler) noReply(ctx context.Context, repo string, commentID int64) error {
	_, err := h.opts.DB.ExecContext(ctx, `INSERT INTO comment_replies(repo, comment_id, state) VALUES(?,?, 'none') ON CONFLICT DO UPDATE SET state='none'`, repo, commentID)
	return err
}

// postReply posts the reply once. The row goes to pending before the POST;
// a pending row found on a later attempt means the outcome of that POST is
// unknown, so the PR's comments are searched for the marker first.
func (h *Handler) postReply(ctx context.Context, gh *github.Client, p *pullState, commentID int64, wasPending bool, body string) error {
	repo := p.repo.FullName
	if wasPending {
		opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
		for {
			cs, resp, err := gh.Issues.ListComments(ctx, p.owner(), p.name(), p.number, opt)
			if err != nil {
				return fmt.Errorf("look for an earlier reply: %w", err)
			}
			for _, c := range cs {
				if strings.HasPrefix(c.GetBody(), replyMarker(commentID)) && h.isBot(user{Login: c.GetUser().GetLogin(), Type: c.GetUser().GetType()}) {
					_, err := h.opts.DB.ExecContext(ctx, `UPDATE comment_replies SET state='posted', reply_id=? WHERE repo=? AND comment_id=?`, c.GetID(), repo, commentID)
					return err
				}
			}
			if resp.NextPage == 0 {
				break
			}
			opt.Page = resp.NextPage
		}
	} else if _, err := h.opts.DB.ExecContext(ctx, `INSERT INTO comment_replies(repo, comment_id, state) VALUES(?,?, 'pending')`, repo, commentID); err != nil {
		return err
	}
	c, _, err := gh.Issues.CreateComment(ctx, p.owner(), p.name(), p.number, &github.IssueComment{Body: github.String(body)})
	if err != nil {
		return fmt.Errorf("reply on %s#%d: %w", repo, p.number, err)
	}
	_, err = h.opts.DB.ExecContext(ctx, `UPDATE comment_replies SET state='posted', reply_id=? WHERE repo=? AND comment_id=?`, c.GetID(), repo, commentID)
	return err
}

func (h *Handler) loadPull(ctx context.Context, gh *github.Client, repo repository, inst int64, n int) (*pullState, error) {
	o, name, _ := strings.Cut(repo.FullName, "/")
	pr, _, err := gh.PullRequests.Get(ctx, o, name, n)
	if err != nil {
		return nil, fmt.Errorf("get %s#%d: %w", repo.FullName, n, err)
	}
	if repo.DefaultBranch == "" {
		repo.DefaultBranch = pr.GetBase().GetRepo().GetDefaultBranch()
	}
	return &pullState{number: n, author: pr.GetUser().GetLogin(), headSHA: pr.GetHead().GetSHA(), headRef: pr.GetHead().GetRef(),
		baseRef: pr.GetBase().GetRef(), baseHint: pr.GetBase().GetSHA(), mergeSHA: pr.GetMergeCommitSHA(), merged: pr.GetMerged(),
		state: pr.GetState(), repo: repo, inst: inst, gh: gh, labels: labelNames(pr.Labels)}, nil
}

// load fetches the default branch and the PR into the git cache and reads
// the config from the default branch (never from the PR) and the targets
// the PR changes. Only commands that need them pay for it.
func (h *Handler) load(ctx context.Context, p *pullState) error {
	if p.loaded {
		return nil
	}
	def := p.defaultBranch()
	var err error
	t := target{repo: p.repo, installation: p.inst, pr: p.number, headSHA: p.headSHA, baseRef: p.baseRef, baseHint: p.baseHint}
	p.gitDir, err = h.fetch(ctx, t, def)
	if err != nil {
		return err
	}
	p.rev, p.targErr = readPR(ctx, p.gitDir, t)
	p.targets = changedTargets(p.rev)
	if p.targErr == nil && p.rev.Head.Config != nil {
		// readPR read the default branch's config already.
		p.config = p.rev.Head.Config
	} else {
		// The PR could not be read: the config is still needed for the
		// answer (whose rights count, or why nobody's can be checked).
		fsys, err := gitrepo.TreeFS(ctx, p.gitDir, "refs/heads/"+def)
		if err != nil {
			return fmt.Errorf("read %s of %s: %w", def, p.repo.FullName, err)
		}
		p.config, p.cfgErr = sets.LoadRepoConfig(fsys)
	}
	p.loaded = true
	return nil
}

// command checks and runs one command and returns the section of the reply
// about it ("" for none) and the reaction it earns ("" when refused). Its
// outcome is recorded, so a repeated delivery gives the same answer without
// acting twice.
func (h *Handler) command(ctx context.Context, d *intake.Delivery, ev *issueCommentEvent, p *pullState, c commands.Command) (string, string, error) {
	repo := p.repo.FullName
	var section, reaction string
	err := h.opts.DB.QueryRowContext(ctx, `SELECT section, reaction FROM commands WHERE repo=? AND comment_id=? AND line=?`, repo, ev.Comment.ID, c.Line).Scan(&section, &reaction)
	if err == nil {
		return section, reaction, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", "", err
	}
	who := ev.Comment.User.Login
	outcome := "done"
	refuse := func(reason string) {
		outcome, reaction = "refused", ""
		section = fmt.Sprintf("`%s` refused: %s", c, reason)
	}
	action := authz.ActionOf(c)
	switch action {
	case authz.Status, authz.Help:
		reaction = "+1"
	default:
		if err := h.load(ctx, p); err != nil {
			return "", "", err
		}
		if p.cfgErr != nil {
			refuse(fmt.Sprintf("the repository config on the default branch is invalid, so nobody's rights can be checked:\n\n```\n%s\n```", p.cfgErr))
			break
		}
		dec, err := (&authz.Resolver{Client: p.gh}).Authorize(ctx, p.owner(), p.name(), p.config.Deploy, action, who, p.author)
		if err != nil {
			return "", "", err
		}
		if !dec.Allowed {
			refuse(dec.Reason)
			break
		}
		then, err := h.headAt(ctx, repo, p.number, ev.Comment.CreatedAt)
		if err != nil {
			return "", "", err
		}
		if then != "" && then != p.headSHA {
			refuse(fmt.Sprintf("it was written when the head of this PR was %s, and %s has been pushed since. Check the new commit and write the command again.", short(then), short(p.headSHA)))
			break
		}
		reaction = "+1"
		if c.Name == commands.Deploy || c.Name == commands.Rollback {
			reaction = "rocket"
		}
	}
	if outcome != "refused" {
		var err error
		var refusal *prflow.Refusal
		section, err = h.act(ctx, d, ev, p, c)
		if errors.As(err, &refusal) {
			refuse(refusal.Reason)
		} else if err != nil {
			return "", "", err
		}
	}
	_, err = h.opts.DB.ExecContext(ctx, `INSERT INTO commands(repo, comment_id, line, pr, command, user, sha, outcome, reaction, section, delivery_id, created_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)`,
		repo, ev.Comment.ID, c.Line, p.number, c.String(), who, p.headSHA, outcome, reaction, section, d.ID, h.now().Unix())
	return section, reaction, err
}

// act runs an accepted command.
func (h *Handler) act(ctx context.Context, d *intake.Delivery, ev *issueCommentEvent, p *pullState, c commands.Command) (string, error) {
	switch c.Name {
	case commands.Help:
		return commands.HelpText(), nil
	case commands.Status:
		return h.status(ctx, p)
	case commands.Rebuild:
		return h.rebuild(ctx, ev, p, c)
	case commands.Deploy:
		return h.deploy(ctx, ev, p, c)
	case commands.Rollback:
		return h.rollback(ctx, ev, p, c)
	}
	return "", nil
}

func (h *Handler) rebuild(ctx context.Context, ev *issueCommentEvent, p *pullState, c commands.Command) (string, error) {
	var known []string
	for _, v := range p.config.Versions {
		known = append(known, v.Arches...)
	}
	for _, a := range c.Arches {
		ok := false
		for _, k := range known {
			if a == k || strings.HasSuffix(k, "-"+a) {
				ok = true
			}
		}
		if !ok && len(known) > 0 {
			slices.Sort(known)
			known = slices.Compact(known)
			return "", &prflow.Refusal{Reason: fmt.Sprintf("`%s` is not an arch of this repository (it has %s).", a, strings.Join(known, ", "))}
		}
	}
	t := target{repo: p.repo, installation: p.inst, pr: p.number, headSHA: p.headSHA, headRef: p.headRef, baseRef: p.baseRef,
		baseHint: p.baseHint, allowLibc: slices.Contains(p.labels, AllowLibcUpdateLabel)}
	// The reaction acknowledges it; the new check run is the answer.
	_, err := h.runSetsCheck(ctx, p.gh, t, fmt.Sprintf("rebuild:%d:%d", ev.Comment.ID, c.Line), c.Arches)
	return "", err
}

func (h *Handler) deploy(ctx context.Context, ev *issueCommentEvent, p *pullState, c commands.Command) (string, error) {
	if p.targErr != nil {
		return "", &prflow.Refusal{Reason: fmt.Sprintf("the sets of this PR could not be read: %v", p.targErr)}
	}
	if h.opts.Deployer != nil {
		req := prflow.DeployRequest{Repo: p.repo.FullName, Installation: p.inst, PR: p.number, HeadSHA: p.headSHA, BaseRef: p.baseRef, Merged: p.merged,
			MergeSHA: p.mergeSHA, BaseSHA: p.rev.BaseSHA, ConfigSHA: p.rev.ConfigSHA, Author: p.author, Requester: ev.Comment.User.Login, Env: c.Env, Targets: p.targets, GitDir: p.gitDir, CommentID: ev.Comment.ID, Line: c.Line}
		if c.Env == "prod" {
			return h.opts.Deployer.DeployProd(ctx, req)
		}
		return h.opts.Deployer.DeployTest(ctx, req)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "`%s` for commit %s: the deploy pipeline is not enabled on this server, so nothing was published.", c, short(p.headSHA))
	runs, err := h.runs.ForSHA(ctx, p.repo.FullName, p.headSHA)
	if err != nil {
		return "", err
	}
	for _, r := range runs {
		if r.Name == setscheck.CheckName && r.Conclusion != string(report.Success) {
			fmt.Fprintf(&b, " Note that the %s check of this commit has not passed (%s); a deploy needs it to.", r.Name, dash(r.Conclusion))
		}
	}
	if len(p.targets) == 0 {
		b.WriteString(" This PR changes no package set, so there would be nothing to deploy.")
		return b.String(), nil
	}
	repoName := map[string]string{"test": "test", "prod": "production"}[c.Env]
	fmt.Fprintf(&b, " It would publish to the %s repository, in one transaction per version and os-arch:\n\n| version | os-arch | tag |\n|---|---|---|\n", repoName)
	for _, t := range p.targets {
		osArch := t.OS + "-" + t.Arch
		if t.OS == "" && t.Arch == "" {
			osArch = "all"
		}
		// The tag the deploy would give it; – where deploy.TagName refuses the
		// target (it would not be published).
		tag := "–"
		if name, err := deploy.TagName(t, p.number, p.headSHA); err == nil {
			tag = "`" + name + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.Version, osArch, tag)
	}
	return b.String(), nil
}

func (h *Handler) rollback(ctx context.Context, ev *issueCommentEvent, p *pullState, c commands.Command) (string, error) {
	if h.opts.Deployer != nil {
		return h.opts.Deployer.Rollback(ctx, prflow.RollbackRequest{Repo: p.repo.FullName, Installation: p.inst, PR: p.number, Env: c.Env, Tag: c.Tag,
			Requester: ev.Comment.User.Login, CommentID: ev.Comment.ID, Line: c.Line})
	}
	to := "the tag before the last deploy"
	if c.Tag != "" {
		to = "tag `" + c.Tag + "`"
	}
	repoName := map[string]string{"test": "test", "prod": "production"}[c.Env]
	return fmt.Sprintf("`%s`: the deploy pipeline is not enabled on this server, so nothing was rolled back. It would roll the %s repository back to %s, publishing that tree as a new revision and removing the newer tags.", c, repoName, to), nil
}

func (h *Handler) status(ctx context.Context, p *pullState) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "Status of #%d at %s (%s):\n\n", p.number, short(p.headSHA), p.state)
	runs, err := h.runs.ForSHA(ctx, p.repo.FullName, p.headSHA)
	if err != nil {
		return "", err
	}
	if len(runs) == 0 {
		b.WriteString("No checks have run for this commit yet.\n")
	} else {
		b.WriteString("| check | status | conclusion | summary |\n|---|---|---|---|\n")
		for _, r := range runs {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.Name, r.Status, dash(r.Conclusion), dash(strings.ReplaceAll(r.Title, "|", "\\|")))
		}
	}
	var reqs []prflow.CommandRecord
	if h.opts.Deployer != nil {
		if reqs, err = h.opts.Deployer.Requests(ctx, p.repo.FullName, p.number, 10); err != nil {
			return "", err
		}
	}
	if len(reqs) == 0 {
		b.WriteString("\nNo deploy requests.\n")
	} else {
		b.WriteString("\nDeploy requests (newest first):\n\n| # | request | commit | by | when | state |\n|---|---|---|---|---|---|\n")
	}
	for _, r := range reqs {
		req := "/" + r.Kind + " " + r.Env
		if r.Tag != "" {
			req += " " + r.Tag
		}
		fmt.Fprintf(&b, "| %d | `%s` | %s | @%s | %s | %s |\n", r.ID, req, dash(short(r.HeadSHA)), r.User, r.Time.UTC().Format("2006-01-02 15:04 UTC"), r.State)
	}
	if h.opts.Targets != nil {
		if err := h.load(ctx, p); err != nil {
			return "", err
		}
		def := p.defaultBranch()
		md, err := h.opts.Targets.TargetStatus(ctx, p.repo.FullName, p.gitDir, "refs/heads/"+def)
		if err != nil {
			return "", err
		}
		b.WriteString("\nDeploy targets (drift against `" + def + "`):\n\n" + md)
	}
	return b.String(), nil
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func labelNames(ls []*github.Label) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.GetName())
	}
	return out
}

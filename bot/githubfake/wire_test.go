package githubfake_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/compatbot/compatbot/bot/githubfake"
)

// TestWireBytes pins the exact bytes of the fake's answers that clients
// parse: GitHub's error bodies (404, 400, 409, 422 with and without
// "errors"), empty lists as [] rather than null, and the Link header of a
// paginated list. The steps share one server and run in order.
func TestWireBytes(t *testing.T) {
	gh, _ := githubfake.New(1)
	t.Cleanup(gh.Close)
	repo := gh.AddRepo("o", "r", 2, "")
	repo.Branches["main"] = sha
	gh.SetPull("o/r", githubfake.Pull{Number: 1, HeadRef: "feature", HeadSHA: sha, BaseRef: "main", BaseSHA: sha})
	tok := gh.DevToken()

	msg := func(m string) string {
		return `{"documentation_url":"` + githubfake.DocsURL + `","message":` + strconv.Quote(m) + "}\n"
	}
	validation := func(errs string) string {
		return `{"documentation_url":"` + githubfake.DocsURL + `","errors":[` + errs + `],"message":"Validation Failed"}` + "\n"
	}
	const unchecked = "\x00" // body not compared (it carries ids and times)
	long := strings.Repeat("é", 141)
	steps := []struct {
		method, path, body string
		status             int
		want               string
		link               string
	}{
		{"GET", "/repos/o/nope", "", 404, msg("Not Found"), ""},
		{"GET", "/no/such/route", "", 404, msg("Not Found"), ""},
		{"POST", "/repos/o/r/check-runs", "{", 400, msg("Problems parsing JSON"), ""},
		// The body is decoded before the repository is looked up, as on GitHub.
		{"POST", "/repos/o/nope/check-runs", "{", 400, msg("Problems parsing JSON"), ""},
		{"POST", "/repos/o/nope/check-runs", "{}", 404, msg("Not Found"), ""},
		{"POST", "/repos/o/r/check-runs", "{}", 422, validation(`{"resource":"CheckRun","code":"missing_field","field":"name"},{"resource":"CheckRun","code":"missing_field","field":"head_sha"}`), ""},
		{"POST", "/repos/o/r/check-runs", `{"name":"x","head_sha":"` + sha + `","status":"done","actions":[{"label":"l"}]}`, 422,
			validation(`{"resource":"CheckRun","code":"custom","field":"status","message":"done is not a valid status"},{"resource":"CheckRun","code":"custom","field":"actions","message":"label (max 20), description (max 40) and identifier (max 20) are required"}`), ""},
		{"POST", "/repos/o/r/check-runs", `{"name":"x","head_sha":"nope"}`, 422, msg("No commit found for SHA: nope"), ""},
		{"PATCH", "/repos/o/r/check-runs/999", `{}`, 404, msg("Not Found"), ""},
		{"GET", "/repos/o/r/check-runs/999/annotations", "", 404, msg("Not Found"), ""},
		{"GET", "/repos/o/r/commits/main/check-runs", "", 200, `{"check_runs":[],"total_count":0}` + "\n", ""},
		{"POST", "/repos/o/r/check-runs", `{"name":"x","head_sha":"` + sha + `","conclusion":"failure"}`, 201, unchecked, ""},
		// GitHub answers []; the fake has answered null for a run without
		// annotations (go-github decodes both to nil). Pinned, not endorsed.
		{"GET", "/repos/o/r/check-runs/1002/annotations", "", 200, "null\n", ""},
		{"PATCH", "/repos/o/r/check-runs/1002", `{"conclusion":"nope"}`, 422, validation(`{"resource":"CheckRun","code":"custom","field":"conclusion","message":"nope is not a valid conclusion"}`), ""},

		{"GET", "/repos/o/r/deployments", "", 200, "[]\n", ""},
		{"POST", "/repos/o/r/deployments", `{"ref":"main"}`, 409, msg("Conflict: Commit status checks failed for main."), ""},
		{"POST", "/repos/o/r/deployments", `{}`, 422, validation(`{"resource":"Deployment","code":"missing_field","field":"ref"}`), ""},
		{"POST", "/repos/o/r/deployments", `{"ref":"nope","required_contexts":[]}`, 422, msg("No ref found for: nope"), ""},
		{"POST", "/repos/o/r/deployments/999/statuses", `{"state":"success"}`, 404, msg("Not Found"), ""},
		{"GET", "/repos/o/r/deployments/999", "", 404, msg("Not Found"), ""},
		{"POST", "/repos/o/r/deployments", `{"ref":"feature","required_contexts":[]}`, 201, unchecked, ""},
		{"GET", "/repos/o/r/deployments/1003/statuses", "", 200, "[]\n", ""},
		{"POST", "/repos/o/r/deployments/1003/statuses", `{"state":"done"}`, 422, validation(`{"resource":"DeploymentStatus","code":"invalid","field":"state"}`), ""},
		{"POST", "/repos/o/r/deployments/1003/statuses", `{"state":"success","description":"` + long + `"}`, 422,
			validation(`{"resource":"DeploymentStatus","code":"custom","field":"description","message":"description is too long (maximum is 140 characters)"}`), ""},

		{"POST", "/repos/o/r/issues/9/comments", `{"body":"x"}`, 404, msg("Not Found"), ""},
		{"GET", "/repos/o/r/issues/9/comments", "", 404, msg("Not Found"), ""},
		{"POST", "/repos/o/r/issues/1/comments", `{"body":"  "}`, 422, validation(`{"resource":"IssueComment","code":"missing_field","field":"body"}`), ""},
		{"GET", "/repos/o/r/issues/1/comments", "", 200, "[]\n", ""},
		{"POST", "/repos/o/r/issues/1/comments", `{"body":"a"}`, 201, unchecked, ""},
		{"POST", "/repos/o/r/issues/1/comments", `{"body":"b"}`, 201, unchecked, ""},
		{"POST", "/repos/o/r/issues/1/comments", `{"body":"c"}`, 201, unchecked, ""},
		{"GET", "/repos/o/r/issues/1/comments?per_page=2", "", 200, unchecked, `<` + gh.URL + `/repos/o/r/issues/1/comments?per_page=2&page=2>; rel="next"`},
		{"GET", "/repos/o/r/issues/1/comments?per_page=2&page=2", "", 200, unchecked, ""},
		{"GET", "/repos/o/r/issues/1/comments?per_page=2&page=3", "", 200, "[]\n", ""},
		{"POST", "/repos/o/r/issues/comments/999/reactions", `{"content":"+1"}`, 404, msg("Not Found"), ""},
		{"POST", "/repos/o/r/issues/comments/1004/reactions", `{"content":"wow"}`, 422, validation(`{"resource":"Reaction","code":"invalid","field":"content"}`), ""},
		{"POST", "/repos/o/r/issues/comments/1004/reactions", `{"content":"+1"}`, 201, `{"content":"+1","id":10040,"user":{"login":"compatbot[bot]","type":"Bot"}}` + "\n", ""},
		{"POST", "/repos/o/r/issues/comments/1004/reactions", `{"content":"+1"}`, 200, `{"content":"+1","id":10040,"user":{"login":"compatbot[bot]","type":"Bot"}}` + "\n", ""},

		{"PUT", "/repos/o/r/contents/a.txt", `{}`, 422, msg("Invalid request.\n\n\"message\" and \"content\" are required."), ""},
		{"PUT", "/repos/o/r/contents/a.txt", `{"message":"m","content":"!"}`, 422, msg("content is not valid Base64"), ""},
		{"PUT", "/repos/o/r/contents/a.txt", `{"message":"m","content":"eA==","branch":"nope"}`, 404, msg("Branch nope not found"), ""},
		{"PUT", "/repos/o/r/contents/a.txt", `{"message":"m","content":"eA==","sha":"abc"}`, 409, msg("a.txt does not match abc"), ""},
		{"PUT", "/repos/o/r/contents/a.txt", `{"message":"m","content":"eA=="}`, 201, unchecked, ""},
		{"PUT", "/repos/o/r/contents/a.txt", `{"message":"m","content":"eA=="}`, 422, msg("Invalid request.\n\n\"sha\" wasn't supplied."), ""},
		{"PUT", "/repos/o/r/contents/a.txt", `{"message":"m","content":"eA==","sha":"abc"}`, 409, msg("a.txt does not match abc"), ""},
		{"GET", "/repos/o/r/contents/a.txt?ref=nope", "", 404, msg("No commit found for the ref nope"), ""},
		{"GET", "/repos/o/r/contents/b.txt", "", 404, msg("Not Found"), ""},

		{"GET", "/repos/o/r/pulls/9", "", 404, msg("Not Found"), ""},
		{"GET", "/repos/o/r/collaborators/ghost/permission", "", 404, msg("Not Found"), ""},
		{"GET", "/orgs/o/teams/t/memberships/ghost", "", 404, msg("Not Found"), ""},
	}
	for _, st := range steps {
		req, err := http.NewRequest(st.method, gh.URL+st.path, strings.NewReader(st.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "token "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		name := st.method + " " + st.path + " " + st.body
		if resp.StatusCode != st.status {
			t.Errorf("%s: status %d, want %d (%s)", name, resp.StatusCode, st.status, body)
		}
		if st.want != unchecked && string(body) != st.want {
			t.Errorf("%s: body\n%q\nwant\n%q", name, body, st.want)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
		if got := resp.Header.Get("Link"); got != st.link {
			t.Errorf("%s: Link %q, want %q", name, got, st.link)
		}
	}
}

package webhook

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestVerify(t *testing.T) {
	body := []byte(`{"zen":"Keep it logically awesome."}`)
	old, cur := []byte("old-secret"), []byte("new-secret")
	tests := []struct {
		name    string
		header  string
		secrets [][]byte
		want    error
	}{
		{"current secret", Sign(body, cur), [][]byte{cur}, nil},
		{"rotated: old still accepted", Sign(body, old), [][]byte{cur, old}, nil},
		{"retired secret", Sign(body, old), [][]byte{cur}, ErrBadSignature},
		{"missing", "", [][]byte{cur}, ErrNoSignature},
		{"sha1 is not accepted", "sha1=" + strings.Repeat("0", 40), [][]byte{cur}, ErrMalformedSignature},
		{"short", "sha256=abcd", [][]byte{cur}, ErrMalformedSignature},
		{"not hex", "sha256=" + strings.Repeat("zz", 32), [][]byte{cur}, ErrMalformedSignature},
		{"body changed", Sign(append(body, ' '), cur), [][]byte{cur}, ErrBadSignature},
		{"no secret configured", Sign(body, cur), nil, ErrNoSecret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Verify(body, tc.header, tc.secrets); got != tc.want {
				t.Errorf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecodeTolerant(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Info
		key     string
	}{
		{"pull_request", `{"action":"opened","number":7,"pull_request":{"number":7,"head":{"sha":"abc"}},"repository":{"full_name":"eessi/compat"},"installation":{"id":42}}`,
			Info{"opened", "eessi/compat", 7, 42}, "eessi/compat#7"},
		{"issue_comment on a PR", `{"action":"created","issue":{"number":9,"pull_request":{}},"comment":{"body":"/deploy test"},"repository":{"full_name":"o/r"}}`,
			Info{"created", "o/r", 9, 0}, "o/r#9"},
		{"check_run", `{"action":"rerequested","check_run":{"id":1,"pull_requests":[{"number":3},{"number":4}]},"repository":{"full_name":"o/r"}}`,
			Info{"rerequested", "o/r", 3, 0}, "o/r#3"},
		{"check_suite without PRs", `{"action":"requested","check_suite":{"pull_requests":[]},"repository":{"full_name":"o/r"}}`,
			Info{"requested", "o/r", 0, 0}, "o/r"},
		{"installation", `{"action":"created","installation":{"id":5}}`, Info{"created", "", 0, 5}, "installation/5"},
		{"nothing known", `{"zen":"x","hook_id":1}`, Info{}, "global"},
		{"wrong type kept partial", `{"action":["odd"],"repository":{"full_name":"o/r"},"pull_request":{"number":2}}`,
			Info{"", "o/r", 2, 0}, "o/r#2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Decode = %+v, want %+v", got, tc.want)
			}
			if got.Key() != tc.key {
				t.Errorf("Key = %q, want %q", got.Key(), tc.key)
			}
		})
	}
	for _, bad := range []string{``, `[]`, `null`, `{"action":`, `"s"`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) succeeded, want an error", bad)
		}
	}
}

func TestRead(t *testing.T) {
	secret := []byte("s3cret")
	body := `{"action":"opened","pull_request":{"number":1},"repository":{"full_name":"o/r"}}`
	form := "payload=" + url.QueryEscape(body)
	req := func(ct, b, sig, event, id string) *http.Request {
		r := httptest.NewRequest("POST", "/webhook", strings.NewReader(b))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		if sig != "" {
			r.Header.Set("X-Hub-Signature-256", sig)
		}
		if event != "" {
			r.Header.Set("X-GitHub-Event", event)
		}
		if id != "" {
			r.Header.Set("X-GitHub-Delivery", id)
		}
		return r
	}
	s := func(b string) string { return Sign([]byte(b), secret) }
	tests := []struct {
		name   string
		r      *http.Request
		max    int64
		status int
		reason string
	}{
		{"json", req("application/json", body, s(body), "pull_request", "d1"), 0, 0, ""},
		{"json with charset", req("application/json; charset=utf-8", body, s(body), "pull_request", "d1"), 0, 0, ""},
		{"form", req("application/x-www-form-urlencoded", form, s(form), "pull_request", "d1"), 0, 0, ""},
		{"form signed over payload only", req("application/x-www-form-urlencoded", form, s(body), "pull_request", "d1"), 0, 401, ReasonSignature},
		{"form without payload", req("application/x-www-form-urlencoded", "x=1", s("x=1"), "pull_request", "d1"), 0, 400, ReasonMalformed},
		{"unsigned", req("application/json", body, "", "pull_request", "d1"), 0, 401, ReasonSignature},
		{"too large", req("application/json", body, s(body), "pull_request", "d1"), 10, 413, ReasonTooLarge},
		{"no event", req("application/json", body, s(body), "", "d1"), 0, 400, ReasonMissingHeader},
		{"no delivery id", req("application/json", body, s(body), "pull_request", ""), 0, 400, ReasonMissingHeader},
		{"malformed json", req("application/json", "{nope", s("{nope"), "pull_request", "d1"), 0, 400, ReasonMalformed},
		{"xml", req("application/xml", "<a/>", s("<a/>"), "pull_request", "d1"), 0, 415, ReasonContentType},
		{"GET", httptest.NewRequest("GET", "/webhook", nil), 0, 405, ReasonMethod},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(tc.r, [][]byte{secret}, tc.max)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				if string(got.Payload) != body || got.Info.Key() != "o/r#1" || got.ID != "d1" || got.Event != "pull_request" {
					t.Errorf("Read = %+v", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("Read succeeded, want %d %s", tc.status, tc.reason)
			}
			if err.Status != tc.status || err.Reason != tc.reason || err.Message == "" {
				t.Errorf("Read error = %+v, want %d %s with a message", err, tc.status, tc.reason)
			}
		})
	}
}

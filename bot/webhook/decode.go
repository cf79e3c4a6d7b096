package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Info is what the intake needs from a payload. Everything is optional:
// payloads of older and newer GitHub versions differ, and an event compatbot
// does not handle must still be stored.
type Info struct {
	Action       string
	Repo         string // owner/name, empty for org- or app-level events
	Number       int    // PR (or issue) number, 0 when the event is not about one
	Installation int64
}

// Key serialises processing: "owner/repo#N" for events about one PR or
// issue, "owner/repo" for other repository events, and a fallback for
// events without a repository (installation events) so they serialise
// among themselves.
func (i Info) Key() string {
	switch {
	case i.Repo != "" && i.Number > 0:
		return i.Repo + "#" + strconv.Itoa(i.Number)
	case i.Repo != "":
		return i.Repo
	case i.Installation != 0:
		return "installation/" + strconv.FormatInt(i.Installation, 10)
	}
	return "global"
}

// The envelope declares only what Info needs, so unknown and missing fields
// never fail decoding; json.RawMessage would allocate for nothing.
type envelope struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest *struct {
		Number int `json:"number"`
	} `json:"pull_request"`
	Issue *struct {
		Number int `json:"number"`
	} `json:"issue"`
	CheckRun *struct {
		PullRequests []struct {
			Number int `json:"number"`
		} `json:"pull_requests"`
	} `json:"check_run"`
	CheckSuite *struct {
		PullRequests []struct {
			Number int `json:"number"`
		} `json:"pull_requests"`
	} `json:"check_suite"`
	Repository *struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	Installation *struct {
		ID int64 `json:"id"`
	} `json:"installation"`
}

// Decode extracts Info from a payload. Only a payload that is not a JSON
// object is an error; a field of an unexpected type is left empty, since
// the rest of the delivery may still be worth storing and handling.
func Decode(payload []byte) (Info, error) {
	if first := firstByte(payload); first != '{' {
		return Info{}, fmt.Errorf("payload is not a JSON object (starts with %q)", first)
	}
	var e envelope
	if err := json.Unmarshal(payload, &e); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return Info{}, fmt.Errorf("payload is not valid JSON: %v", err)
		}
	}
	info := Info{Action: e.Action}
	if e.Repository != nil {
		info.Repo = e.Repository.FullName
	}
	if e.Installation != nil {
		info.Installation = e.Installation.ID
	}
	switch {
	case e.PullRequest != nil && e.PullRequest.Number > 0:
		info.Number = e.PullRequest.Number
	case e.Issue != nil && e.Issue.Number > 0:
		info.Number = e.Issue.Number
	case e.CheckRun != nil && len(e.CheckRun.PullRequests) > 0:
		// A check run on a commit shared by several PRs is keyed by the
		// first; the handler still sees the whole list in the payload.
		info.Number = e.CheckRun.PullRequests[0].Number
	case e.CheckSuite != nil && len(e.CheckSuite.PullRequests) > 0:
		info.Number = e.CheckSuite.PullRequests[0].Number
	case e.Number > 0:
		info.Number = e.Number
	}
	return info, nil
}

func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

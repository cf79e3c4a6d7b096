package webhook

import (
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

// Decode extracts Info from a payload, validating it as JSON on the way.
// Only a payload that is not a JSON object is an error; a field of an
// unexpected type counts as absent, since the rest of the delivery may
// still be worth storing and handling.
func Decode(payload []byte) (Info, error) {
	s := scan{data: payload}
	if err := s.document(); err != nil {
		return Info{}, err
	}
	if first := firstByte(payload); first != '{' {
		return Info{}, fmt.Errorf("payload is not a JSON object (starts with %q)", first)
	}
	info := s.info
	switch {
	case s.prNumber > 0:
		info.Number = int(s.prNumber)
	case s.issueNumber > 0:
		info.Number = int(s.issueNumber)
	case s.checkRunPR > 0:
		// A check run on a commit shared by several PRs is keyed by the
		// first; the handler still sees the whole list in the payload.
		info.Number = int(s.checkRunPR)
	case s.checkSuitePR > 0:
		info.Number = int(s.checkSuitePR)
	case s.topNumber > 0:
		info.Number = int(s.topNumber)
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

package githubfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"
)

// This file is the App's webhook delivery log, as GitHub keeps it:
// GET /app/hook/deliveries (App JWT; newest first; cursor pagination with
// per_page up to 100 and a Link rel="next"), and POST
// /app/hook/deliveries/{id}/attempts, which redelivers: 202 Accepted, a new
// entry with redelivery=true and the same guid, and, when the test set
// HookURL, the payload really POSTed there, signed with HookSecret, with
// the original X-GitHub-Delivery (GitHub keeps the guid on redelivery).

// HookDelivery is one attempt in the App's delivery log.
type HookDelivery struct {
	ID          int64
	GUID        string
	Event       string
	Action      string
	StatusCode  int // the webhook's answer; 0: no answer (timeout, refused)
	DeliveredAt time.Time
	Redelivery  bool
	Payload     []byte
	// Installation is the payload's installation id (0 if none).
	Installation int64
}

// AddHookDelivery records an attempt GitHub made (as if compatbot had
// been down: status 0, or answered statusCode) and returns it with its id.
func (s *Server) AddHookDelivery(d HookDelivery) HookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	d.ID = s.id()
	if d.DeliveredAt.IsZero() {
		d.DeliveredAt = time.Now()
	}
	s.hookDeliveries = append(s.hookDeliveries, &d)
	return d
}

// HookDeliveries returns the delivery log, oldest first.
func (s *Server) HookDeliveries() []HookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]HookDelivery, len(s.hookDeliveries))
	for i, d := range s.hookDeliveries {
		out[i] = *d
	}
	return out
}

// SetHook makes redeliveries POST to url, signed with secret, as GitHub
// does with the App's webhook URL and secret.
func (s *Server) SetHook(url string, secret []byte) {
	s.mu.Lock()
	s.hookURL, s.hookSecret = url, secret
	s.mu.Unlock()
}

func hookStatus(code int) string {
	switch {
	case code == 0:
		return "Timed out"
	case code >= 200 && code < 300:
		return "OK"
	}
	return "Invalid HTTP Response: " + strconv.Itoa(code)
}

func (s *Server) hookDeliveryJSON(d *HookDelivery) map[string]any {
	m := map[string]any{"id": d.ID, "guid": d.GUID, "delivered_at": d.DeliveredAt.UTC().Format(time.RFC3339),
		"redelivery": d.Redelivery, "duration": 0.12, "status": hookStatus(d.StatusCode), "status_code": d.StatusCode,
		"event": d.Event, "action": nil, "installation_id": nil, "repository_id": nil, "throttled_at": nil}
	if d.Action != "" {
		m["action"] = d.Action
	}
	if d.Installation != 0 {
		m["installation_id"] = d.Installation
	}
	return m
}

func (s *Server) listHookDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	per := 30
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeValidation(w, ValidationError{Resource: "Hook", Code: "invalid", Field: "per_page"})
			return
		}
		per = min(n, 100)
	}
	// Newest first; the cursor is the id to continue below, opaque to
	// clients as GitHub's is.
	all := append([]*HookDelivery(nil), s.hookDeliveries...)
	sort.Slice(all, func(i, j int) bool { return all[i].ID > all[j].ID })
	start := 0
	if c := q.Get("cursor"); c != "" {
		id, err := strconv.ParseInt(c, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "Invalid cursor")
			return
		}
		for start < len(all) && all[start].ID >= id {
			start++
		}
	}
	end := min(start+per, len(all))
	page := all[start:end]
	if end < len(all) {
		next := url.Values{"per_page": {strconv.Itoa(per)}, "cursor": {strconv.FormatInt(all[end-1].ID, 10)}}
		w.Header().Set("Link", `<`+s.URL+`/app/hook/deliveries?`+next.Encode()+`>; rel="next"`)
	}
	writeList(w, page, s.hookDeliveryJSON)
}

func (s *Server) redeliverHookDelivery(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var orig *HookDelivery
	for _, d := range s.hookDeliveries {
		if err == nil && d.ID == id {
			orig = d
		}
	}
	if orig == nil {
		notFound(w)
		return
	}
	re := &HookDelivery{ID: s.id(), GUID: orig.GUID, Event: orig.Event, Action: orig.Action, DeliveredAt: time.Now(),
		Redelivery: true, Payload: orig.Payload, Installation: orig.Installation}
	s.hookDeliveries = append(s.hookDeliveries, re)
	if s.hookURL != "" {
		// Sent with the lock held: redeliveries reach the hook in the order
		// they were asked for, and the test sees the answer in the log as
		// soon as the 202 arrives.
		re.StatusCode = s.postHook(re)
	}
	writeJSON(w, http.StatusAccepted, map[string]any{})
}

func (s *Server) postHook(d *HookDelivery) int {
	req, err := http.NewRequest(http.MethodPost, s.hookURL, bytes.NewReader(d.Payload))
	if err != nil {
		return 0
	}
	mac := hmac.New(sha256.New, s.hookSecret)
	mac.Write(d.Payload)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/fake")
	req.Header.Set("X-GitHub-Event", d.Event)
	req.Header.Set("X-GitHub-Delivery", d.GUID)
	req.Header.Set("X-GitHub-Hook-Installation-Target-Type", "integration")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

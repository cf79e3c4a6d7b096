// Package webhook reads GitHub webhook requests: it checks the
// X-Hub-Signature-256 HMAC against the configured secrets, enforces a body
// size cap, accepts JSON and form-encoded deliveries, and pulls out of the
// payload the few fields the intake needs (action, installation, the key
// that serialises processing) with a tolerant decoder.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultMaxBody is GitHub's own cap on a webhook payload: it does not send
// bigger deliveries, so anything larger is not from GitHub.
const DefaultMaxBody = 25 << 20

// Reasons a request is refused, used as the metrics label and in the reply.
const (
	ReasonMethod        = "method"
	ReasonSignature     = "signature"
	ReasonTooLarge      = "too_large"
	ReasonMissingHeader = "missing_header"
	ReasonContentType   = "content_type"
	ReasonMalformed     = "malformed"
	ReasonRead          = "read"
	ReasonBusy          = "busy"
)

// Error is a refused request: the HTTP status to answer, a short reason
// label, and a message for the sender.
type Error struct {
	Status  int
	Reason  string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Signature errors, distinguished so logs say which case it was; all are
// answered 401.
var (
	ErrNoSignature        = errors.New("missing X-Hub-Signature-256 header")
	ErrMalformedSignature = errors.New(`malformed X-Hub-Signature-256: want "sha256=" and 64 hex digits`)
	ErrBadSignature       = errors.New("X-Hub-Signature-256 does not match any configured webhook secret")
	ErrNoSecret           = errors.New("no webhook secret configured")
)

// Sign returns the X-Hub-Signature-256 value GitHub sends for body.
func Sign(body, secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks header (the X-Hub-Signature-256 value) against body with
// each secret in turn, so a secret can be rotated by configuring old and new
// together. Comparison is constant-time per secret.
func Verify(body []byte, header string, secrets [][]byte) error {
	if len(secrets) == 0 {
		return ErrNoSecret
	}
	sig, err := parseSignature(header)
	if err != nil {
		return err
	}
	for _, s := range secrets {
		p := macPoolFor(s)
		m := p.Get().(*mac)
		m.h.Reset()
		m.h.Write(body)
		ok := hmac.Equal(sig[:], m.h.Sum(m.sum[:0]))
		p.Put(m)
		if ok {
			return nil
		}
	}
	return ErrBadSignature
}

// parseSignature reads an X-Hub-Signature-256 value: "sha256=" and 64 hex
// digits.
func parseSignature(header string) (sig [sha256.Size]byte, err error) {
	if header == "" {
		return sig, ErrNoSignature
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return sig, ErrMalformedSignature
	}
	if _, err := hex.Decode(sig[:], []byte(hexSig)); err != nil {
		return sig, ErrMalformedSignature
	}
	return sig, nil
}

// A mac is a keyed HMAC-SHA256 with room for its sum. Keying one costs two
// SHA-256 blocks and three allocations; at thousands of deliveries a
// second they are kept, per secret, and Reset (which restores the keyed
// state) between uses.
type mac struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

type macPool struct {
	secret string
	pool   *sync.Pool
}

// macPools is copied on write: secrets are few and fixed after start.
var macPools atomic.Pointer[[]macPool]

// maxMACPools bounds the cache, so a caller passing ever new secrets
// (tests) does not grow it for ever; other secrets get a fresh pool.
const maxMACPools = 16

func macPoolFor(secret []byte) *sync.Pool {
	if ps := macPools.Load(); ps != nil {
		for _, p := range *ps {
			if p.secret == string(secret) {
				return p.pool
			}
		}
	}
	key := string(secret)
	p := &sync.Pool{New: func() any { return &mac{h: hmac.New(sha256.New, []byte(key))} }}
	for {
		old := macPools.Load()
		var ps []macPool
		if old != nil {
			if len(*old) >= maxMACPools {
				return p
			}
			ps = append(ps, *old...)
		}
		ps = append(ps, macPool{secret: key, pool: p})
		if macPools.CompareAndSwap(old, &ps) {
			return p
		}
	}
}

// Request is a verified, decoded delivery.
type Request struct {
	ID      string // X-GitHub-Delivery
	Event   string // X-GitHub-Event
	Payload []byte // the JSON document, also for form-encoded deliveries
	Info    Info
	buf     *[]byte
}

// Release hands the body buffer back for reuse; Payload must not be used
// afterwards. Optional: an unreleased buffer is garbage collected.
func (r *Request) Release() {
	if r.buf != nil {
		putBuf(r.buf)
		r.buf = nil
		r.Payload = nil
	}
}

// Bodies are read into pooled buffers: at thousands of deliveries a second
// allocating and zeroing each body shows in the CPU profile. Large buffers
// are dropped so one 25 MiB delivery does not stay resident.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, firstChunk); return &b }}

// firstChunk is the most a request gets before it has sent anything: the
// buffer then grows with what arrives, never from what Content-Length
// promises, so a sender that announces 25 MiB and sends one byte costs
// 32 KiB.
const firstChunk = 32 << 10

func putBuf(b *[]byte) {
	if cap(*b) <= 1<<20 {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

// Read reads and checks one webhook request with no limiter; see
// ReadLimited.
func Read(r *http.Request, secrets [][]byte, maxBody int64) (*Request, *Error) {
	return ReadLimited(r, secrets, maxBody, nil)
}

// ReadLimited reads and checks one webhook request. Only a nil error means
// the request came from GitHub (a configured secret signed it); the *Error
// says how to answer otherwise. The order matters, since until the
// signature matches the sender is anyone on the internet:
//
//   - a missing or malformed X-Hub-Signature-256 is refused before the body
//     is read;
//   - a Content-Length over maxBody is refused, and the body is never read
//     past maxBody;
//   - lim (if not nil) admits the request, charging its announced length,
//     so the memory held by unverified bodies is bounded whatever the
//     number of senders;
//   - the HMAC is computed as the body arrives, and nothing in the body or
//     the other headers is believed before it matches.
func ReadLimited(r *http.Request, secrets [][]byte, maxBody int64, lim *Limiter) (*Request, *Error) {
	if r.Method != http.MethodPost {
		return nil, &Error{http.StatusMethodNotAllowed, ReasonMethod, "webhooks are POST requests"}
	}
	if len(secrets) == 0 {
		return nil, &Error{http.StatusUnauthorized, ReasonSignature, ErrNoSecret.Error()}
	}
	sig, err := parseSignature(r.Header.Get("X-Hub-Signature-256"))
	if err != nil {
		return nil, &Error{http.StatusUnauthorized, ReasonSignature, err.Error()}
	}
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	if r.ContentLength > maxBody {
		return nil, tooLarge(maxBody)
	}
	charge := r.ContentLength
	if charge < 0 {
		charge = maxBody // chunked: it may be as long as allowed
	}
	release, werr := lim.admit(r.Context(), charge)
	if werr != nil {
		return nil, werr
	}
	buf := bufPool.Get().(*[]byte)
	body, pooled, err := readBody(r.Body, maxBody, buf, secrets, sig)
	release()
	if !pooled {
		putBuf(buf)
		buf = nil
	}
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, tooLarge(maxBody)
		case errors.Is(err, ErrBadSignature):
			return nil, &Error{http.StatusUnauthorized, ReasonSignature, err.Error()}
		}
		return nil, &Error{http.StatusBadRequest, ReasonRead, "reading the body: " + err.Error()}
	}
	req, werr := parse(r, body)
	if werr != nil {
		if buf != nil {
			putBuf(buf)
		}
		return nil, werr
	}
	req.buf = buf
	return req, nil
}

// parse reads the headers and payload of a request whose body is verified.
func parse(r *http.Request, body []byte) (*Request, *Error) {
	req := &Request{ID: r.Header.Get("X-GitHub-Delivery"), Event: r.Header.Get("X-GitHub-Event")}
	switch {
	case req.Event == "":
		return nil, &Error{http.StatusBadRequest, ReasonMissingHeader, "missing X-GitHub-Event header"}
	case req.ID == "":
		return nil, &Error{http.StatusBadRequest, ReasonMissingHeader, "missing X-GitHub-Delivery header"}
	case len(req.ID) > 200:
		return nil, &Error{http.StatusBadRequest, ReasonMalformed, "X-GitHub-Delivery longer than 200 bytes"}
	}
	ct := r.Header.Get("Content-Type")
	mt := "application/json"
	if ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return nil, &Error{http.StatusUnsupportedMediaType, ReasonContentType, fmt.Sprintf("Content-Type %q: %v", ct, err)}
		}
	}
	switch mt {
	case "application/json":
		req.Payload = body
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, &Error{http.StatusBadRequest, ReasonMalformed, "form body: " + err.Error()}
		}
		p, ok := form["payload"]
		if !ok || len(p) != 1 {
			return nil, &Error{http.StatusBadRequest, ReasonMalformed, "form body must carry exactly one payload= field"}
		}
		req.Payload = []byte(p[0])
	default:
		return nil, &Error{http.StatusUnsupportedMediaType, ReasonContentType, fmt.Sprintf("Content-Type %q: want application/json or application/x-www-form-urlencoded", mt)}
	}
	info, err := Decode(req.Payload)
	if err != nil {
		return nil, &Error{http.StatusBadRequest, ReasonMalformed, err.Error()}
	}
	req.Info = info
	return req, nil
}

func tooLarge(max int64) *Error {
	return &Error{http.StatusRequestEntityTooLarge, ReasonTooLarge, "body larger than " + strconv.FormatInt(max, 10) + " bytes"}
}

// chunkSize is the unit in which bodies beyond firstChunk are read before
// their signature is checked. The chunks are pooled: a refused body's go
// back for the next request, so a flood of wrongly signed bodies reuses
// the same memory instead of leaving garbage behind each one.
const chunkSize = 256 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// readBody reads at most maxBody bytes, feeding each piece to one keyed
// HMAC per secret as it arrives, and returns the body only if one of them
// matches sig (else ErrBadSignature). Memory follows what has arrived,
// never what Content-Length announces: the first firstChunk bytes go into
// buf, the rest into pooled chunks, which a verified body is copied out of
// into one slice of its exact size (pooled is then false: the result is
// not buf).
func readBody(r io.Reader, maxBody int64, buf *[]byte, secrets [][]byte, sig [sha256.Size]byte) (body []byte, pooled bool, err error) {
	macs := make([]*mac, len(secrets))
	pools := make([]*sync.Pool, len(secrets))
	for i, s := range secrets {
		pools[i] = macPoolFor(s)
		macs[i] = pools[i].Get().(*mac)
		macs[i].h.Reset()
	}
	var chunks []*[]byte
	defer func() {
		for i, m := range macs {
			pools[i].Put(m)
		}
		for _, c := range chunks {
			*c = (*c)[:cap(*c)]
			chunkPool.Put(c)
		}
	}()
	head := (*buf)[:0]
	var tail []byte // the chunk being filled
	total := int64(0)
	for {
		dst := head[len(head):cap(head)]
		if len(dst) == 0 {
			if len(tail) == cap(tail) {
				c := chunkPool.Get().(*[]byte)
				chunks = append(chunks, c)
				tail = (*c)[:0]
			}
			dst = tail[len(tail):cap(tail)]
		}
		k, err := r.Read(dst)
		if k > 0 {
			for _, m := range macs {
				m.h.Write(dst[:k])
			}
			if chunks == nil {
				head = head[:len(head)+k]
			} else {
				tail = tail[:len(tail)+k]
				*chunks[len(chunks)-1] = tail
			}
			if total += int64(k); total > maxBody {
				return nil, false, &http.MaxBytesError{Limit: maxBody}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, err
		}
	}
	*buf = head
	ok := false
	for _, m := range macs {
		if hmac.Equal(sig[:], m.h.Sum(m.sum[:0])) {
			ok = true
		}
	}
	if !ok {
		return nil, false, ErrBadSignature
	}
	if chunks == nil {
		return head, true, nil
	}
	body = make([]byte, 0, total)
	body = append(body, head...)
	for _, c := range chunks {
		body = append(body, *c...)
	}
	return body, false, nil
}

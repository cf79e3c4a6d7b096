// Package webhook reads GitHub webhook requests: it checks the
// X-Hub-Signature-256 HMAC against the configured secrets, enforces a body
// size cap, accepts JSON and form-encoded deliveries, and pulls out of the
// payload the few fields the intake needs (action, installation, the key
// that serialises processing) with a tolerant decoder.
package webhook

import (
	"bytes"
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
	if header == "" {
		return ErrNoSignature
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return ErrMalformedSignature
	}
	var sig [sha256.Size]byte
	if _, err := hex.Decode(sig[:], []byte(hexSig)); err != nil {
		return ErrMalformedSignature
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
	buf     *bytes.Buffer
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
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		b.Reset()
		bufPool.Put(b)
	}
}

// Read reads and checks one webhook request. Only a nil error means the
// request came from GitHub (a configured secret signed it); the *Error says
// how to answer otherwise. The order matters: the signature is checked
// before anything in the body or headers is believed.
func Read(r *http.Request, secrets [][]byte, maxBody int64) (*Request, *Error) {
	if r.Method != http.MethodPost {
		return nil, &Error{http.StatusMethodNotAllowed, ReasonMethod, "webhooks are POST requests"}
	}
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	if r.ContentLength > maxBody {
		return nil, tooLarge(maxBody)
	}
	buf := bufPool.Get().(*bytes.Buffer)
	req, werr := read(r, secrets, maxBody, buf)
	if werr != nil {
		putBuf(buf)
		return nil, werr
	}
	req.buf = buf
	return req, nil
}

func read(r *http.Request, secrets [][]byte, maxBody int64, buf *bytes.Buffer) (*Request, *Error) {
	body, err := readBody(r.Body, r.ContentLength, maxBody, buf)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(maxBody)
		}
		return nil, &Error{http.StatusBadRequest, ReasonRead, "reading the body: " + err.Error()}
	}
	if err := Verify(body, r.Header.Get("X-Hub-Signature-256"), secrets); err != nil {
		return nil, &Error{http.StatusUnauthorized, ReasonSignature, err.Error()}
	}
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

// readBody reads at most max bytes into buf, growing it once when the
// length is announced.
func readBody(r io.Reader, n, max int64, buf *bytes.Buffer) ([]byte, error) {
	lr := &io.LimitedReader{R: r, N: max + 1}
	if n > 0 {
		buf.Grow(int(n) + 1)
	}
	if _, err := buf.ReadFrom(lr); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > max {
		return nil, &http.MaxBytesError{Limit: max}
	}
	return buf.Bytes(), nil
}

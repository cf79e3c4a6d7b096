// Package githubfake is a test double of GitHub's REST API, served over real
// HTTP with httptest. GitHub cannot be reached from tests, so this fake
// stands in for it; it answers the routes compatbot uses the way GitHub
// does, including GitHub's errors: 401 for a bad token or App JWT, 404 for
// what the token cannot see, 422 "Validation Failed" with GitHub's error
// shape, 409 for conflicts, and rate-limit responses (403 with Retry-After
// for the secondary limit; 403 or 429 with X-RateLimit-Remaining: 0 and
// X-RateLimit-Reset for the primary one). Tests can make the next N calls of
// a route fail (FailNext) and read every call made (Calls).
//
// Git itself is not faked: a repository's clone_url points at whatever real
// git remote the test serves (a file:// URL or git http-backend).
package githubfake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// DocsURL is the documentation_url GitHub puts in its error bodies.
const DocsURL = "https://docs.github.com/rest"

// Call is one request the fake received.
type Call struct {
	Method string
	Path   string
	Route  string // the matched pattern, e.g. "POST /repos/{owner}/{repo}/check-runs"
	Query  string
	Body   []byte
	Status int
	Token  string
	// UserAgent is the request's User-Agent: GitHub refuses requests
	// without one, and tests check compatbot names its version in it.
	UserAgent string
}

// Failure is what FailNext makes a route answer.
type Failure struct {
	Status     int
	Message    string
	RetryAfter int       // seconds; sets Retry-After
	Reset      time.Time // with RateLimited: X-RateLimit-Reset
	// RateLimited adds X-RateLimit-Remaining: 0 (the primary limit).
	RateLimited bool
	// After carries the request out before answering with the failure, as
	// when GitHub's front end times out on a request the API completed.
	After bool
}

// ServerError is a 502 as GitHub's front end sends during incidents.
func ServerError() Failure { return Failure{Status: http.StatusBadGateway, Message: "Server Error"} }

// SecondaryRateLimit is GitHub's secondary (abuse) limit answer.
func SecondaryRateLimit(retryAfter int) Failure {
	return Failure{Status: http.StatusForbidden, RetryAfter: retryAfter,
		Message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID."}
}

// PrimaryRateLimit is the answer once the hourly quota is spent; status is
// 403 or 429 (GitHub uses both).
func PrimaryRateLimit(status int, reset time.Time) Failure {
	return Failure{Status: status, RateLimited: true, Reset: reset, Message: "API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID."}
}

// NotFound is GitHub's 404, also what it briefly answers for an object a
// webhook just announced.
func NotFound() Failure { return Failure{Status: http.StatusNotFound, Message: "Not Found"} }

// Server is the fake GitHub.
type Server struct {
	*httptest.Server
	AppID   int64
	AppSlug string

	pub *rsa.PublicKey
	mux *http.ServeMux

	mu        sync.Mutex
	nextID    int64
	tokens    map[string]token
	calls     []Call
	failures  map[string][]*Failure // nil: let that call through
	users     map[string]bool
	repos     map[string]*Repo
	teams     map[string]map[string]string // "org/slug" -> login -> state
	checkRuns map[int64]*CheckRun
	comments  map[int64]*Comment
	reactions map[int64][]Reaction
	deploys   map[int64]*Deployment

	hookDeliveries []*HookDelivery
	hookURL        string
	hookSecret     []byte
	manifestApps   []*ManifestApp
}

type token struct {
	installation int64 // 0: development token valid everywhere
	expires      time.Time
}

var (
	keyOnce sync.Once
	keyPEM  []byte
	key     *rsa.PrivateKey
)

// New starts a fake GitHub for an App with the given id and returns it with
// the App's private key (PEM), as GitHub hands it out on registration. The
// server is closed at the end of the test by the caller (Close).
func New(appID int64) (*Server, []byte) {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		key = k
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	})
	s := &Server{
		AppID: appID, AppSlug: "compatbot", pub: &key.PublicKey,
		nextID: 1000, tokens: map[string]token{}, failures: map[string][]*Failure{},
		users: map[string]bool{}, repos: map[string]*Repo{}, teams: map[string]map[string]string{},
		checkRuns: map[int64]*CheckRun{}, comments: map[int64]*Comment{}, reactions: map[int64][]Reaction{},
		deploys: map[int64]*Deployment{},
	}
	s.mux = http.NewServeMux()
	s.routes()
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s, keyPEM
}

// APIURL is the base for clients, with a trailing slash.
func (s *Server) APIURL() string { return s.URL + "/" }

// DevToken registers and returns a development token (like a personal
// access token) valid for every repository.
func (s *Server) DevToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := "ghp_" + randHex(18)
	s.tokens[t] = token{expires: time.Now().Add(24 * time.Hour)}
	return t
}

// FailNext makes the next n calls of route (a pattern as listed in Call.Route,
// e.g. "POST /repos/{owner}/{repo}/check-runs") answer f instead.
func (s *Server) FailNext(route string, n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, ok := strings.Cut(route, " "); !ok {
		panic("githubfake: route needs a method: " + route)
	}
	for range n {
		s.failures[route] = append(s.failures[route], &f)
	}
}

// FailNextAfter lets the next skip calls of route through, then fails n.
func (s *Server) FailNextAfter(route string, skip, n int, f Failure) {
	s.mu.Lock()
	for range skip {
		s.failures[route] = append(s.failures[route], nil)
	}
	s.mu.Unlock()
	s.FailNext(route, n, f)
}

// Calls returns every call received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallCount is how many calls matched route.
func (s *Server) CallCount(route string) int {
	n := 0
	for _, c := range s.Calls() {
		if c.Route == route {
			n++
		}
	}
	return n
}

// ResetCalls forgets the calls recorded so far.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	s.calls = nil
	s.mu.Unlock()
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	_, route := s.mux.Handler(r)
	rec := &recorder{ResponseWriter: w, status: 200}
	auth := r.Header.Get("Authorization")
	defer func() {
		s.mu.Lock()
		s.calls = append(s.calls, Call{Method: r.Method, Path: r.URL.Path, Route: route, Query: r.URL.RawQuery, Body: body, Status: rec.status, Token: auth, UserAgent: r.Header.Get("User-Agent")})
		s.mu.Unlock()
	}()
	h := w.Header()
	h.Set("X-GitHub-Request-Id", strings.ToUpper(randHex(8)))
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", "4999")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")

	if r.Header.Get("User-Agent") == "" {
		// GitHub's answer to a request without a User-Agent.
		writeError(rec, http.StatusForbidden, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header")
		return
	}
	if route == "" {
		notFound(rec)
		return
	}
	f, failing := s.takeFailure(route)
	if failing && f.After {
		if inst, ok := s.checkToken(auth); ok {
			s.mux.ServeHTTP(httptest.NewRecorder(), r.WithContext(withInstallation(r.Context(), inst)))
		}
	}
	if failing {
		if f.RetryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(f.RetryAfter))
		}
		if f.RateLimited {
			h.Set("X-RateLimit-Remaining", "0")
			h.Set("X-RateLimit-Used", "5000")
			h.Set("X-RateLimit-Reset", strconv.FormatInt(f.Reset.Unix(), 10))
		}
		writeError(rec, f.Status, f.Message)
		return
	}
	switch {
	case noAuth[route]:
		// The manifest flow: a browser's form post, and the code's
		// conversion, which GitHub answers without credentials.
	case needsJWT(r.URL.Path, route):
		if err := s.checkJWT(auth); err != nil {
			writeError(rec, http.StatusUnauthorized, err.Error())
			return
		}
	default:
		inst, ok := s.checkToken(auth)
		if !ok {
			writeError(rec, http.StatusUnauthorized, "Bad credentials")
			return
		}
		r = r.WithContext(withInstallation(r.Context(), inst))
	}
	s.mux.ServeHTTP(rec, r)
}

func (s *Server) takeFailure(route string) (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.failures[route]
	if len(q) == 0 {
		return Failure{}, false
	}
	s.failures[route] = q[1:]
	if q[0] == nil {
		return Failure{}, false
	}
	return *q[0], true
}

// checkJWT verifies an App JWT as GitHub does: RS256, signed with the App's
// key, iss = the App id, not expired, at most 10 minutes long.
func (s *Server) checkJWT(auth string) error {
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		//lint:ignore ST1005 GitHub's own message, verbatim
		return fmt.Errorf("A JSON web token could not be decoded")
	}
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodRS256 {
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		}
		return s.pub, nil
	})
	if err != nil {
		//lint:ignore ST1005 GitHub's own message, verbatim
		return fmt.Errorf("A JSON web token could not be decoded")
	}
	if claims.Issuer != strconv.FormatInt(s.AppID, 10) {
		return fmt.Errorf("'Issuer' claim ('iss') must be an Integer")
	}
	if claims.ExpiresAt == nil || claims.IssuedAt == nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) > 11*time.Minute {
		return fmt.Errorf("'Expiration time' claim ('exp') is too far in the future")
	}
	return nil
}

func (s *Server) checkToken(auth string) (int64, bool) {
	t, ok := strings.CutPrefix(auth, "token ")
	if !ok {
		t, ok = strings.CutPrefix(auth, "Bearer ")
	}
	if !ok {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tk, ok := s.tokens[t]
	if !ok || time.Now().After(tk.expires) {
		return 0, false
	}
	return tk.installation, true
}

func (s *Server) id() int64 {
	s.nextID++
	return s.nextID
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("POST /app/installations/{id}/access_tokens", s.locked(s.accessToken))
	m.HandleFunc("GET /app/hook/deliveries", s.locked(s.listHookDeliveries))
	m.HandleFunc("POST /settings/apps/new", s.locked(s.newAppFromManifest))
	m.HandleFunc("POST /organizations/{org}/settings/apps/new", s.locked(s.newAppFromManifest))
	m.HandleFunc("POST /app-manifests/{code}/conversions", s.locked(s.convertManifest))
	m.HandleFunc("POST /app/hook/deliveries/{id}/attempts", s.locked(s.redeliverHookDelivery))
	m.HandleFunc("GET /repos/{owner}/{repo}", s.inRepo(s.getRepo))
	m.HandleFunc("GET /repos/{owner}/{repo}/installation", s.locked(s.getRepoInstallation))
	m.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}", s.inRepo(s.getPull))
	m.HandleFunc("GET /repos/{owner}/{repo}/collaborators/{user}/permission", s.inRepo(s.getPermission))
	m.HandleFunc("GET /orgs/{org}/teams/{slug}/memberships/{user}", s.locked(s.getMembership))
	m.HandleFunc("POST /repos/{owner}/{repo}/check-runs", withBody(s, s.createCheckRun))
	m.HandleFunc("PATCH /repos/{owner}/{repo}/check-runs/{id}", withBody(s, s.updateCheckRun))
	m.HandleFunc("GET /repos/{owner}/{repo}/check-runs/{id}", s.inRepo(s.getCheckRun))
	m.HandleFunc("GET /repos/{owner}/{repo}/check-runs/{id}/annotations", s.inRepo(s.listAnnotations))
	m.HandleFunc("GET /repos/{owner}/{repo}/commits/{ref}/check-runs", s.inRepo(s.listCheckRuns))
	m.HandleFunc("POST /repos/{owner}/{repo}/issues/{number}/comments", withBody(s, s.createComment))
	m.HandleFunc("GET /repos/{owner}/{repo}/issues/{number}/comments", s.inRepo(s.listComments))
	m.HandleFunc("POST /repos/{owner}/{repo}/issues/comments/{id}/reactions", withBody(s, s.createReaction))
	m.HandleFunc("POST /repos/{owner}/{repo}/deployments", withBody(s, s.createDeployment))
	m.HandleFunc("GET /repos/{owner}/{repo}/deployments", s.inRepo(s.listDeployments))
	m.HandleFunc("GET /repos/{owner}/{repo}/deployments/{id}", s.inRepo(s.getDeployment))
	m.HandleFunc("POST /repos/{owner}/{repo}/deployments/{id}/statuses", withBody(s, s.createDeploymentStatus))
	m.HandleFunc("GET /repos/{owner}/{repo}/deployments/{id}/statuses", s.inRepo(s.listDeploymentStatuses))
	m.HandleFunc("GET /repos/{owner}/{repo}/contents/{path...}", s.inRepo(s.getContents))
	m.HandleFunc("PUT /repos/{owner}/{repo}/contents/{path...}", withBody(s, s.putContents))
}

// TokenValid reports whether tok is a live token the fake issued; a git
// server in a test uses it to authenticate fetches like GitHub does.
func (s *Server) TokenValid(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tok]
	return ok && time.Now().Before(t.expires)
}

// Package ghclient makes GitHub API clients for compatbot: one per App
// installation (authenticated with ghinstallation), or one with a static
// token for development, all sharing a Transport that honours rate limits,
// retries what is safe to retry and counts calls.
package ghclient

import (
	"context"
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/golang-jwt/jwt/v4"
	"github.com/google/go-github/v60/github"
	"golang.org/x/oauth2"
)

// DefaultAPIURL is github.com's REST API.
const DefaultAPIURL = "https://api.github.com/"

// Config says how to reach and authenticate to GitHub.
type Config struct {
	// APIURL is the REST API base: https://api.github.com/ or, for GitHub
	// Enterprise Server, https://HOST/api/v3/.
	APIURL     string
	AppID      int64
	PrivateKey []byte // PEM
	// Token replaces AppID/PrivateKey for development: every installation
	// uses it.
	Token string
	// Transport carries the requests; default http.DefaultTransport.
	Transport http.RoundTripper
	// Limits of the rate-limit and retry layer.
	Limits Limits
}

// Factory hands out clients per installation id, cached: the installation
// transport renews its token itself shortly before it expires.
type Factory struct {
	apiURL *url.URL
	appID  int64
	key    *rsa.PrivateKey
	token  string
	tr     *Transport

	mu      sync.Mutex
	clients map[int64]*installation
	app     *github.Client // AppClient's, made on first use
}

type installation struct {
	client *github.Client
	itr    *ghinstallation.Transport
}

// New checks cfg and returns a Factory.
func New(cfg Config) (*Factory, error) {
	api := cfg.APIURL
	if api == "" {
		api = DefaultAPIURL
	}
	if !strings.HasSuffix(api, "/") {
		api += "/"
	}
	u, err := url.Parse(api)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("ghclient: github.api_url %q is not an absolute URL", cfg.APIURL)
	}
	f := &Factory{apiURL: u, appID: cfg.AppID, token: cfg.Token, clients: map[int64]*installation{}}
	f.tr = &Transport{Base: cfg.Transport, Limits: cfg.Limits}
	switch {
	case cfg.Token != "":
	case cfg.AppID > 0 && len(cfg.PrivateKey) > 0:
		k, err := jwt.ParseRSAPrivateKeyFromPEM(cfg.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("ghclient: private key: %w", err)
		}
		f.key = k
	default:
		return nil, errNoCredentials
	}
	return f, nil
}

// Stats are the API call totals of every client of f.
func (f *Factory) Stats() Stats { return f.tr.Stats() }

func (f *Factory) newClient(hc *http.Client) *github.Client {
	c := github.NewClient(hc)
	// Set the base directly: WithEnterpriseURLs would append /api/v3/ to
	// hosts that do not already carry it, which breaks test servers.
	base := *f.apiURL
	c.BaseURL = &base
	upload := *f.apiURL
	if upload.Host != "api.github.com" {
		upload.Path = strings.TrimSuffix(upload.Path, "api/v3/") + "api/uploads/"
		c.UploadURL = &upload
	}
	return c
}

// Client returns the client of an installation (ids come from the webhook
// payload's installation.id).
func (f *Factory) Client(ctx context.Context, installationID int64) (*github.Client, error) {
	in, err := f.installation(installationID)
	if err != nil {
		return nil, err
	}
	return in.client, nil
}

func (f *Factory) installation(id int64) (*installation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := id
	if f.token != "" {
		key = 0
	}
	if in, ok := f.clients[key]; ok {
		return in, nil
	}
	var in *installation
	if f.token != "" {
		ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: f.token, TokenType: "token"})
		// One token, one quota: every installation shares its limits.
		hc := &http.Client{Transport: &oauth2.Transport{Source: ts, Base: f.tr.For("token")}}
		in = &installation{client: f.newClient(hc)}
	} else {
		if id <= 0 {
			return nil, fmt.Errorf("ghclient: installation id %d: the webhook payload carries no installation", id)
		}
		// One AppsTransport per installation: ghinstallation writes its
		// BaseURL on every token refresh, which would race if shared.
		// Its requests carry its own key in the Transport: a rate limit
		// hit by one installation holds none of the others.
		atr := ghinstallation.NewAppsTransportFromPrivateKey(f.tr.For(fmt.Sprintf("installation/%d", id)), f.appID, f.key)
		atr.BaseURL = strings.TrimSuffix(f.apiURL.String(), "/")
		itr := ghinstallation.NewFromAppsTransport(atr, id)
		itr.BaseURL = atr.BaseURL
		in = &installation{client: f.newClient(&http.Client{Transport: itr}), itr: itr}
	}
	f.clients[key] = in
	return in, nil
}

// InstallationToken returns a token for git over HTTPS as the
// installation (user x-access-token), renewed before it expires.
func (f *Factory) InstallationToken(ctx context.Context, installationID int64) (string, error) {
	if f.token != "" {
		return f.token, nil
	}
	in, err := f.installation(installationID)
	if err != nil {
		return "", err
	}
	tok, err := in.itr.Token(ctx)
	if err != nil {
		return "", fmt.Errorf("ghclient: token of installation %d: %w", installationID, err)
	}
	return tok, nil
}

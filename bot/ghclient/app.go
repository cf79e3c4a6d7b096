package ghclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"
)

// ErrNotInstalled is returned by RepoInstallation when GitHub says the App
// is not installed on the repository (404).
var ErrNotInstalled = errors.New("the App is not installed on the repository")

// AppClient is a client authenticated as the App itself (a JWT signed with
// its private key), for the /app endpoints and installation lookups. A
// development token has no App behind it: it gets an error saying so.
func (f *Factory) AppClient() (*github.Client, error) {
	if f.key == nil {
		return nil, errors.New("ghclient: a development token (github.token) cannot act as the App: configure github.app_id and github.private_key")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.app == nil {
		// Its own limit key: the App's JWT budget is not an installation's.
		atr := ghinstallation.NewAppsTransportFromPrivateKey(f.tr.For("app"), f.appID, f.key)
		atr.BaseURL = strings.TrimSuffix(f.apiURL.String(), "/")
		f.app = f.newClient(&http.Client{Transport: atr})
	}
	return f.app, nil
}

// RepoInstallation asks GitHub which installation of the App can see
// owner/name (GET /repos/{owner}/{repo}/installation): how compatbot finds
// a repository it has had no event from yet. ErrNotInstalled when GitHub
// answers 404.
func (f *Factory) RepoInstallation(ctx context.Context, owner, name string) (int64, error) {
	app, err := f.AppClient()
	if err != nil {
		return 0, err
	}
	// A 404 here is an answer (not installed), not GitHub lagging.
	in, _, err := app.Apps.FindRepositoryInstallation(WithNotFoundAnswer(ctx), owner, name)
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound {
		return 0, fmt.Errorf("%s/%s: %w", owner, name, ErrNotInstalled)
	}
	if err != nil {
		return 0, fmt.Errorf("ghclient: installation of %s/%s: %w", owner, name, err)
	}
	return in.GetID(), nil
}

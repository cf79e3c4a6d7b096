package main

import (
	"context"
	"log/slog"

	"github.com/compatbot/compatbot/bot/config"
	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/compatbot/compatbot/bot/intake"
	"github.com/compatbot/compatbot/bot/redeliver"
	"github.com/compatbot/compatbot/workflow/state"
)

// startRedelivery runs missed-delivery recovery (bot/redeliver) until ctx
// ends: at start and every github.redeliver_interval, deliveries GitHub
// could not make and the intake never stored are redelivered. It needs
// the App's key (a development token has no delivery log); without it, or
// with a negative interval, it does nothing. The returned wait blocks
// until it has stopped (after ctx ends), before the database closes.
func startRedelivery(ctx context.Context, cfg *config.Config, db *state.DB, log *slog.Logger) (wait func()) {
	none := func() {}
	if cfg.GitHub.AppID == 0 || len(cfg.GitHub.PrivateKey) == 0 || cfg.GitHub.RedeliverInterval.D() < 0 {
		log.Info("missed-delivery recovery off (needs github.app_id and a private key; github.redeliver_interval not negative)")
		return none
	}
	f, err := ghclient.New(ghclient.Config{APIURL: cfg.GitHub.APIURL, AppID: cfg.GitHub.AppID, PrivateKey: cfg.GitHub.PrivateKey})
	if err != nil {
		log.Warn("missed-delivery recovery off", "error", err)
		return none
	}
	app, err := f.AppClient()
	if err != nil {
		log.Warn("missed-delivery recovery off", "error", err)
		return none
	}
	r, err := redeliver.New(redeliver.Options{App: app, Interval: cfg.GitHub.RedeliverInterval.D(), Logger: log,
		Stored: func(ctx context.Context, id string) (bool, error) { return intake.Stored(ctx, db, id) }})
	if err != nil {
		log.Warn("missed-delivery recovery off", "error", err)
		return none
	}
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	return func() { <-done }
}

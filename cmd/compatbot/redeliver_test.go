package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/compatbot/compatbot/bot/config"
	"github.com/compatbot/compatbot/bot/githubfake"
	"github.com/compatbot/compatbot/bot/intake"
)

// A delivery GitHub could not make while compatbot was down is asked for
// again when the server starts, and arrives at its /webhook to be
// processed like any other.
func TestServeRecoversMissedDeliveriesAtStart(t *testing.T) {
	gh, key := githubfake.New(99)
	defer gh.Close()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "app.pem")
	os.WriteFile(keyFile, key, 0o600)
	cfgPath := filepath.Join(dir, "compatbot.yml")
	os.WriteFile(cfgPath, fmt.Appendf(nil, `listen: 127.0.0.1:0
data_dir: %s
github:
  api_url: %s
  app_id: 99
  private_key_file: %s
  webhook_secret: %s
`, filepath.Join(dir, "var"), gh.APIURL(), keyFile, testSecret), 0o600)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// GitHub redelivers to the App's webhook URL; the server's address is
	// known only once it listens, so the hook is a proxy that waits for it.
	addrc := make(chan string, 1)
	target := sync.OnceValue(func() *url.URL { u, _ := url.Parse("http://" + <-addrc); return u })
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httputil.NewSingleHostReverseProxy(target()).ServeHTTP(w, r)
	}))
	defer hook.Close()
	gh.SetHook(hook.URL+"/webhook", []byte(testSecret))
	const lost = "00000000-0000-4000-8000-000000000042"
	gh.AddHookDelivery(githubfake.HookDelivery{GUID: lost, Event: "pull_request", Action: "synchronize", StatusCode: 0,
		DeliveredAt: time.Now().Add(-time.Hour), Payload: prBody(42), Installation: 1})

	processed := make(chan string, 4)
	np := processorOf(intake.ProcessorFunc(func(ctx context.Context, d *intake.Delivery) error {
		processed <- d.ID
		return nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- serve(ctx, cfg, np, io.Discard, func(a string) { addrc <- a }) }()
	select {
	case id := <-processed:
		if id != lost {
			t.Errorf("processed %q, want the lost delivery %q", id, lost)
		}
	case code := <-done:
		t.Fatalf("serve exited %d before the lost delivery came", code)
	}
	cancel()
	<-done
	if n := gh.CallCount("POST /app/hook/deliveries/{id}/attempts"); n != 1 {
		t.Errorf("%d redelivery requests, want 1", n)
	}
}

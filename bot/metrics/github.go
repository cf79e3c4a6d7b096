package metrics

import (
	"strings"
	"sync"

	"github.com/compatbot/compatbot/bot/ghclient"
	"github.com/prometheus/client_golang/prometheus"
)

// githubCollector reads the GitHub client's totals at scrape time, so the
// transport keeps no Prometheus types and a scrape costs nothing between
// scrapes.
type githubCollector struct {
	mu    sync.Mutex
	stats func() ghclient.Stats

	byStatus, remaining, limit, reset, retries, waits, limited *prometheus.Desc
}

// RegisterGitHub exports the API calls of the clients stats reads
// (ghclient.Factory.Stats): requests by HTTP status, retries, rate-limit
// waits and give-ups, and the rate-limit budget left per installation.
// A second call replaces the first one's source (a server re-wired in the
// same process reports its new clients).
func (r *Registry) RegisterGitHub(stats func() ghclient.Stats) {
	c := register(r, "compatbot_github_api_requests_total", func() (*githubCollector, prometheus.Collector) {
		c := &githubCollector{
			byStatus: prometheus.NewDesc("compatbot_github_api_requests_total",
				"GitHub API requests sent (every attempt), by the HTTP status of the answer; status=\"error\" got none.", []string{"status"}, nil),
			remaining: prometheus.NewDesc("compatbot_github_rate_limit_remaining",
				"Requests left in GitHub's hourly core budget, as its last answer said, per installation (\"app\": the App's own JWT requests, \"token\": a development token).", []string{"installation"}, nil),
			limit: prometheus.NewDesc("compatbot_github_rate_limit_limit",
				"GitHub's hourly core budget per installation.", []string{"installation"}, nil),
			reset: prometheus.NewDesc("compatbot_github_rate_limit_reset_timestamp_seconds",
				"When GitHub's budget of the installation is renewed (Unix time).", []string{"installation"}, nil),
			retries: prometheus.NewDesc("compatbot_github_api_retries_total", "Attempts that repeated an earlier one (5xx, network error, fresh 404).", nil, nil),
			waits:   prometheus.NewDesc("compatbot_github_rate_limit_waits_total", "Times a request waited for a rate limit.", nil, nil),
			limited: prometheus.NewDesc("compatbot_github_rate_limited_total", "Requests given up because the rate-limit wait would be too long.", nil, nil),
		}
		return c, c
	})
	c.mu.Lock()
	c.stats = stats
	c.mu.Unlock()
}

func (c *githubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.byStatus, c.remaining, c.limit, c.reset, c.retries, c.waits, c.limited} {
		ch <- d
	}
}

func (c *githubCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	stats := c.stats
	c.mu.Unlock()
	st := stats()
	for status, n := range st.ByStatus {
		ch <- prometheus.MustNewConstMetric(c.byStatus, prometheus.CounterValue, float64(n), status)
	}
	for key, rl := range st.RateLimits {
		inst := strings.TrimPrefix(key, "installation/")
		if inst == "" {
			inst = "app"
		}
		ch <- prometheus.MustNewConstMetric(c.remaining, prometheus.GaugeValue, float64(rl.Remaining), inst)
		ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(rl.Limit), inst)
		if !rl.Reset.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.reset, prometheus.GaugeValue, float64(rl.Reset.Unix()), inst)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(st.Retries))
	ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(st.RateLimitWaits))
	ch <- prometheus.MustNewConstMetric(c.limited, prometheus.CounterValue, float64(st.RateLimited))
}

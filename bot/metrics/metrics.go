// Package metrics is compatbot's metric registry, on the official Prometheus
// client (github.com/prometheus/client_golang): the exposition format is the
// one every scraper speaks, and the Go runtime and process collectors give
// the memory, GC, goroutine, file-descriptor and CPU series an operator
// expects from any Go service. The package keeps a small API of its own
// (Counter, Histogram, GaugeFunc by name, registered once and shared) so
// the intake and the wiring do not spell out client_golang's types, and it
// holds the collector of GitHub API calls and rate limits (github.go). The
// decorators that time builds, deploys and publishes are bot/metrics/timed.
package metrics

import (
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Default is the registry `compatbot serve` exposes at /metrics, with the
// Go runtime and process collectors. Packages that count something (GitHub
// API calls, builds) register on it.
var Default = NewServiceRegistry()

// Registry holds metric families by name.
type Registry struct {
	reg *prometheus.Registry

	mu       sync.Mutex
	families map[string]any
}

// NewRegistry returns an empty registry (tests use one each, so their
// counts start at zero).
func NewRegistry() *Registry {
	return &Registry{reg: prometheus.NewRegistry(), families: map[string]any{}}
}

// NewServiceRegistry is a registry with the Go runtime collector (go_*:
// goroutines, GC, memory) and the process collector (process_*: CPU, RSS,
// open file descriptors, start time).
func NewServiceRegistry() *Registry {
	r := NewRegistry()
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Prometheus is the underlying registry, to register collectors of one's
// own.
func (r *Registry) Prometheus() *prometheus.Registry { return r.reg }

// register returns the family already registered under name or registers
// the one make builds. A second registration of a name with another kind
// is a programming error.
func register[T any](r *Registry, name string, make func() (T, prometheus.Collector)) T {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.families[name]; ok {
		t, ok := f.(T)
		if !ok {
			panic("metrics: " + name + " registered twice with different kinds")
		}
		return t
	}
	t, c := make()
	r.reg.MustRegister(c)
	r.families[name] = t
	return t
}

// CounterVec is a counter family split by label values.
type CounterVec struct {
	vec    *prometheus.CounterVec
	labels int
}

// Counter is one monotonically increasing series.
type Counter struct{ c prometheus.Counter }

// Add adds v (which must not be negative) to the counter.
func (c *Counter) Add(v float64) { c.c.Add(v) }

// Inc adds one.
func (c *Counter) Inc() { c.c.Inc() }

// Value is the current total.
func (c *Counter) Value() float64 {
	var m dto.Metric
	c.c.Write(&m)
	return m.GetCounter().GetValue()
}

// Counter registers (or returns the already registered) counter family
// name with the given label names. Registering the same name twice returns
// the first family, so independent packages can share a counter.
func (r *Registry) Counter(name, help string, labels ...string) *CounterVec {
	return register(r, name, func() (*CounterVec, prometheus.Collector) {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		return &CounterVec{vec: v, labels: len(labels)}, v
	})
}

// With returns the series for the label values, in the order of the label
// names; missing values are empty.
func (cv *CounterVec) With(values ...string) *Counter {
	return &Counter{cv.vec.WithLabelValues(pad(values, cv.labels)...)}
}

// pad makes values exactly n long, valid UTF-8: client_golang panics on a
// count mismatch or on invalid UTF-8, this package's callers leave trailing
// labels out, and some values (an event name) come from request headers.
func pad(values []string, n int) []string {
	out := make([]string, n)
	copy(out, values)
	for i, v := range out {
		out[i] = strings.ToValidUTF8(v, "\uFFFD")
	}
	return out
}

// GaugeFunc registers a gauge whose value is read from f at scrape time.
// A second registration of name keeps the first.
func (r *Registry) GaugeFunc(name, help string, f func() float64) {
	register(r, name, func() (prometheus.GaugeFunc, prometheus.Collector) {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
		return g, g
	})
}

// HistogramVec is a histogram family split by label values.
type HistogramVec struct {
	vec    *prometheus.HistogramVec
	labels int
}

// Histogram counts observations into cumulative buckets.
type Histogram struct{ o prometheus.Observer }

// Histogram registers (or returns) a histogram without labels with the
// given upper bounds, which must be sorted ascending.
func (r *Registry) Histogram(name, help string, bounds []float64) *Histogram {
	return r.HistogramVec(name, help, bounds).With()
}

// HistogramVec registers (or returns) a histogram family with labels.
func (r *Registry) HistogramVec(name, help string, bounds []float64, labels ...string) *HistogramVec {
	return register(r, name, func() (*HistogramVec, prometheus.Collector) {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: bounds}, labels)
		return &HistogramVec{vec: v, labels: len(labels)}, v
	})
}

// With returns the series for the label values.
func (hv *HistogramVec) With(values ...string) *Histogram {
	return &Histogram{hv.vec.WithLabelValues(pad(values, hv.labels)...)}
}

// Observe records one value.
func (h *Histogram) Observe(v float64) { h.o.Observe(v) }

// Totals returns the number of observations and their sum.
func (h *Histogram) Totals() (count uint64, sum float64) {
	var m dto.Metric
	h.o.(prometheus.Metric).Write(&m)
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// Write writes every family, sorted by name, in the text format (what
// /metrics answers a scraper that asks for nothing else).
func (r *Registry) Write(w io.Writer) error {
	mfs, err := r.reg.Gather()
	if err != nil {
		return err
	}
	sort.Slice(mfs, func(i, j int) bool { return mfs[i].GetName() < mfs[j].GetName() })
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

// Handler serves the registry at a scrape endpoint, in the format the
// scraper negotiates (text or OpenMetrics).
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError})
}

// githubAPICalls counts GitHub API requests by the webhook event that
// caused them; handlers report through ObserveAPICalls.
var githubAPICalls = Default.Counter("compatbot_github_api_calls_total", "GitHub API requests made, by the webhook event that caused them.", "event")

var apiCallsPerDelivery = Default.Histogram("compatbot_github_api_calls_per_delivery", "GitHub API requests one delivery cost.", []float64{0, 1, 2, 5, 10, 20, 50, 100})

// ObserveAPICalls records that processing one delivery of event made calls
// GitHub API requests. Its signature fits handlers.Options.ObserveCalls.
func ObserveAPICalls(event string, calls int) {
	githubAPICalls.With(event).Add(float64(calls))
	apiCallsPerDelivery.Observe(float64(calls))
}

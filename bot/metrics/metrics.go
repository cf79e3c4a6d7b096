// Package metrics is a small registry of counters, gauges and histograms
// written out in the Prometheus text exposition format (version 0.0.4).
// It is hand-written so the bot needs no client library: the handful of
// metric kinds compatbot exports fit in one file.
package metrics

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Default is the registry `compatbot serve` exposes at /metrics. Packages
// that count something (GitHub API calls, builds) register on it.
var Default = NewRegistry()

// Registry holds metric families by name.
type Registry struct {
	mu       sync.Mutex
	families map[string]family
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{families: map[string]family{}} }

type family interface {
	write(w io.Writer, name string)
}

func (r *Registry) register(name string, make func() family) family {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.families[name]; ok {
		return f
	}
	f := make()
	r.families[name] = f
	return f
}

// CounterVec is a counter family split by label values.
type CounterVec struct {
	help   string
	labels []string
	mu     sync.Mutex
	series map[string]*Counter
}

// Counter is one monotonically increasing series.
type Counter struct {
	labelValues []string
	bits        atomic.Uint64
}

// Add adds v (which must not be negative) to the counter.
func (c *Counter) Add(v float64) {
	for {
		old := c.bits.Load()
		if c.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Inc adds one.
func (c *Counter) Inc() { c.Add(1) }

// Value is the current total.
func (c *Counter) Value() float64 { return math.Float64frombits(c.bits.Load()) }

// Counter registers (or returns the already registered) counter family
// name with the given label names. Registering the same name twice returns
// the first family, so independent packages can share a counter.
func (r *Registry) Counter(name, help string, labels ...string) *CounterVec {
	f := r.register(name, func() family {
		return &CounterVec{help: help, labels: labels, series: map[string]*Counter{}}
	})
	cv, ok := f.(*CounterVec)
	if !ok {
		panic("metrics: " + name + " registered twice with different kinds")
	}
	return cv
}

// With returns the series for the label values, in the order of the label
// names; missing values are empty.
func (cv *CounterVec) With(values ...string) *Counter {
	vals := make([]string, len(cv.labels))
	copy(vals, values)
	k := strings.Join(vals, "\xff")
	cv.mu.Lock()
	defer cv.mu.Unlock()
	c, ok := cv.series[k]
	if !ok {
		c = &Counter{labelValues: vals}
		cv.series[k] = c
	}
	return c
}

func (cv *CounterVec) write(w io.Writer, name string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, escapeHelp(cv.help), name)
	cv.mu.Lock()
	keys := make([]string, 0, len(cv.series))
	for k := range cv.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	series := make([]*Counter, len(keys))
	for i, k := range keys {
		series[i] = cv.series[k]
	}
	cv.mu.Unlock()
	for _, c := range series {
		fmt.Fprintf(w, "%s%s %s\n", name, labelString(cv.labels, c.labelValues), formatFloat(c.Value()))
	}
}

type gaugeFunc struct {
	help string
	f    func() float64
}

func (g *gaugeFunc) write(w io.Writer, name string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", name, escapeHelp(g.help), name, name, formatFloat(g.f()))
}

// GaugeFunc registers a gauge whose value is read from f at scrape time.
// A second registration of name keeps the first.
func (r *Registry) GaugeFunc(name, help string, f func() float64) {
	r.register(name, func() family { return &gaugeFunc{help: help, f: f} })
}

// Histogram counts observations into cumulative buckets.
type Histogram struct {
	help    string
	bounds  []float64
	mu      sync.Mutex
	counts  []uint64 // per bucket, not cumulative; last is +Inf
	sum     float64
	samples uint64
}

// Histogram registers (or returns) a histogram with the given upper bounds,
// which must be sorted ascending.
func (r *Registry) Histogram(name, help string, bounds []float64) *Histogram {
	f := r.register(name, func() family {
		return &Histogram{help: help, bounds: bounds, counts: make([]uint64, len(bounds)+1)}
	})
	h, ok := f.(*Histogram)
	if !ok {
		panic("metrics: " + name + " registered twice with different kinds")
	}
	return h
}

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v)
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.samples++
	h.mu.Unlock()
}

// Totals returns the number of observations and their sum.
func (h *Histogram) Totals() (count uint64, sum float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.samples, h.sum
}

func (h *Histogram) write(w io.Writer, name string) {
	h.mu.Lock()
	counts := append([]uint64(nil), h.counts...)
	sum, n := h.sum, h.samples
	h.mu.Unlock()
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, escapeHelp(h.help), name)
	var cum uint64
	for i, b := range h.bounds {
		cum += counts[i]
		fmt.Fprintf(w, "%s_bucket{le=\"%s\"} %d\n", name, formatFloat(b), cum)
	}
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", name, n, name, formatFloat(sum), name, n)
}

// Write writes every family, sorted by name, in the text format.
func (r *Registry) Write(w io.Writer) {
	r.mu.Lock()
	names := make([]string, 0, len(r.families))
	for n := range r.families {
		names = append(names, n)
	}
	fams := make([]family, len(names))
	sort.Strings(names)
	for i, n := range names {
		fams[i] = r.families[n]
	}
	r.mu.Unlock()
	for i, f := range fams {
		f.write(w, names[i])
	}
}

// Handler serves the registry at a scrape endpoint.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		r.Write(w)
	})
}

func labelString(names, values []string) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteString(`="`)
		b.WriteString(escapeLabel(values[i]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// Label values may carry anything (an event name from a request header);
// the format allows only these three escapes.
var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
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

package metrics

import (
	"bytes"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestExposition(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("x_total", "things\ncounted", "reason")
	c.With("bad\"sig").Add(2)
	c.With("ok").Inc()
	// An event name from a request header may be anything; client_golang
	// would panic on invalid UTF-8, the registry repairs it.
	c.With("\xff").Inc()
	if r.Counter("x_total", "ignored") != c {
		t.Fatal("second registration of a name must return the first family")
	}
	r.GaugeFunc("depth", "queue depth", func() float64 { return 7 })
	h := r.Histogram("lat_seconds", "latency", []float64{0.001, 0.01})
	h.Observe(0.0005)
	h.Observe(0.005)
	h.Observe(1)
	if n, sum := h.Totals(); n != 3 || sum != 1.0055 {
		t.Errorf("Totals = %d, %v; want 3, 1.0055", n, sum)
	}
	hv := r.HistogramVec("op_seconds", "per op", []float64{1}, "op", "outcome")
	hv.With("publish").Observe(2) // a missing trailing label is empty

	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	want := `# HELP depth queue depth
# TYPE depth gauge
depth 7
# HELP lat_seconds latency
# TYPE lat_seconds histogram
lat_seconds_bucket{le="0.001"} 1
lat_seconds_bucket{le="0.01"} 2
lat_seconds_bucket{le="+Inf"} 3
lat_seconds_sum 1.0055
lat_seconds_count 3
# HELP op_seconds per op
# TYPE op_seconds histogram
op_seconds_bucket{op="publish",outcome="",le="1"} 0
op_seconds_bucket{op="publish",outcome="",le="+Inf"} 1
op_seconds_sum{op="publish",outcome=""} 2
op_seconds_count{op="publish",outcome=""} 1
# HELP x_total things\ncounted
# TYPE x_total counter
x_total{reason="bad\"sig"} 2
x_total{reason="ok"} 1
x_total{reason="\uFFFD"} 1
`
	got, _ := io.ReadAll(rec.Body)
	if string(got) != strings.ReplaceAll(want, `\uFFFD`, "\uFFFD") {
		t.Errorf("exposition:\n%s\nwant:\n%s", got, want)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("content type %q", ct)
	}
	// A scraper asking for OpenMetrics gets it.
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	rec = httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") || !strings.HasSuffix(rec.Body.String(), "# EOF\n") {
		t.Errorf("OpenMetrics: content type %q, body ends %q", ct, rec.Body.String()[max(0, rec.Body.Len()-20):])
	}
}

func TestRegisteringANameAsAnotherKindPanics(t *testing.T) {
	r := NewRegistry()
	r.Counter("n", "n")
	defer func() {
		if recover() == nil {
			t.Error("no panic for a counter registered again as a histogram")
		}
	}()
	r.Histogram("n", "n", nil)
}

// The service registry carries what every Go service exposes: the Go
// runtime's and the process's series.
func TestServiceRegistryHasRuntimeAndProcessCollectors(t *testing.T) {
	var b bytes.Buffer
	if err := NewServiceRegistry().Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"go_goroutines ", "go_gc_duration_seconds", "go_memstats_heap_alloc_bytes ", "go_info{version=",
		"process_resident_memory_bytes ", "process_open_fds ", "process_cpu_seconds_total ", "process_start_time_seconds "} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("service registry lacks %q", want)
		}
	}
	b.Reset()
	NewRegistry().Write(&b)
	if strings.Contains(b.String(), "go_goroutines") {
		t.Error("a plain registry (tests') carries the runtime collector")
	}
}

func TestCounterConcurrentAdds(t *testing.T) {
	c := NewRegistry().Counter("n", "n").With()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				c.Inc()
			}
		}()
	}
	wg.Wait()
	if c.Value() != 8000 {
		t.Fatalf("value = %v, want 8000", c.Value())
	}
}

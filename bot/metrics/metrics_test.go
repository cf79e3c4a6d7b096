package metrics

import (
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
	if r.Counter("x_total", "ignored") != c {
		t.Fatal("second registration of a name must return the first family")
	}
	r.GaugeFunc("depth", "queue depth", func() float64 { return 7 })
	h := r.Histogram("lat_seconds", "latency", []float64{0.001, 0.01})
	h.Observe(0.0005)
	h.Observe(0.005)
	h.Observe(1)

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
# HELP x_total things\ncounted
# TYPE x_total counter
x_total{reason="bad\"sig"} 2
x_total{reason="ok"} 1
`
	got, _ := io.ReadAll(rec.Body)
	if string(got) != want {
		t.Errorf("exposition:\n%s\nwant:\n%s", got, want)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("content type %q", ct)
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

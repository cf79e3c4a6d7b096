package intake

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/compatbot/compatbot/bot/metrics"
	"github.com/compatbot/compatbot/bot/webhook"
	"github.com/compatbot/compatbot/workflow/state"
)

// prPayload is shaped like a pull_request delivery, padded to size bytes
// with a PR body, so the decoder walks a realistic document. The body is
// words drawn at random from a vocabulary, like prose, rather than one
// repeated byte: what is stored and checksummed looks like a delivery.
var benchWords = strings.Fields(`the a of to and in for is on that with by this be as are from at or an it
	compat layer gentoo prefix eessi set sets package packages version update upgrade security fix build
	test deploy prod overlay lmod python gcc binutils glibc cvmfs repository tag rollback changelog mirror
	x86_64 aarch64 2025.06 2026.06 CVE-2025-31115 maintainer reviewer contributor see issue #1234 ok`)

func prPayload(pr, size int) []byte {
	head := fmt.Sprintf(`{"action":"synchronize","number":%d,"pull_request":{"url":"https://api.github.com/repos/eessi/compat-layer/pulls/%d","id":%d,"number":%d,"state":"open","title":"Add sys-devel/gcc-13.2.0 to 2025.06","user":{"login":"contributor","id":1,"type":"User"},"head":{"ref":"gcc13","sha":"4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c","repo":{"full_name":"contributor/compat-layer"}},"base":{"ref":"main","sha":"0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"},"body":"`, pr, pr, 1000+pr, pr)
	tail := `"},"before":"0a1b","after":"4f1c","repository":{"id":99,"full_name":"eessi/compat-layer","private":false,"default_branch":"main"},"installation":{"id":12345},"sender":{"login":"contributor"}}`
	pad := size - len(head) - len(tail)
	if pad < 0 {
		pad = 0
	}
	r := rand.New(rand.NewPCG(uint64(pr), uint64(size)))
	var body strings.Builder
	for body.Len() < pad {
		body.WriteString(benchWords[r.IntN(len(benchWords))])
		body.WriteByte(' ')
	}
	return []byte(head + body.String()[:pad] + tail)
}

// BenchmarkIntake measures what GitHub sees: 16 concurrent senders over real
// HTTP on loopback, each delivery signed and verified, persisted in SQLite on
// disk (t.TempDir) with synchronous=FULL, and acknowledged only once its
// batch is fsync'd. Processing is not running: this is intake alone.
func BenchmarkIntake(b *testing.B) {
	for _, size := range []int{2 << 10, 25 << 10} {
		b.Run(fmt.Sprintf("payload=%dKiB", size>>10), func(b *testing.B) { benchIntake(b, size, 0) })
	}
}

// BenchmarkCommitDelay compares writer linger settings (2 KiB payloads).
func BenchmarkCommitDelay(b *testing.B) {
	for _, d := range []time.Duration{-1, 100 * time.Microsecond, 200 * time.Microsecond, 500 * time.Microsecond, time.Millisecond} {
		b.Run(fmt.Sprintf("delay=%v", max(d, 0)), func(b *testing.B) { benchIntake(b, 2<<10, d) })
	}
}

func benchIntake(b *testing.B, size int, delay time.Duration) {
	db, err := state.Open(filepath.Join(b.TempDir(), "compatbot.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	reg := metrics.NewRegistry()
	in, err := New(context.Background(), Options{
		DB: db, Processor: ProcessorFunc(func(context.Context, *Delivery) error { return nil }),
		Secrets: [][]byte{secret}, Metrics: reg, CommitDelay: delay,
		Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	srv := httptest.NewServer(in)
	defer srv.Close()

	runSenders(b, srv.URL, size, reg, db)
}

// runSenders drives b.N signed deliveries from 16 concurrent senders to url
// and reports throughput, latency percentiles and CPU per delivery.
func runSenders(b *testing.B, url string, size int, reg *metrics.Registry, db *state.DB) {
	const senders = 16
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders, MaxConnsPerHost: senders}}
	bodies := make([][]byte, 32)
	sigs := make([]string, len(bodies))
	for i := range bodies {
		bodies[i] = prPayload(i+1, size)
		sigs[i] = webhook.Sign(bodies[i], secret)
	}
	var next atomic.Int64
	lat := make([][]time.Duration, senders)
	var wg sync.WaitGroup
	b.SetBytes(int64(size))
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				j := i % len(bodies)
				req, _ := http.NewRequest("POST", url, bytes.NewReader(bodies[j]))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "pull_request")
				req.Header.Set("X-GitHub-Delivery", deliveryID(i))
				req.Header.Set("X-Hub-Signature-256", sigs[j])
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[s] = append(lat[s], time.Since(t0))
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	// CPU per delivery (server and client, user and system) says what the
	// machine could do unloaded: 2 cores / this = the CPU-bound ceiling.
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(all)), "cpu-µs/delivery")
	commits, rows := reg.Histogram("compatbot_intake_commit_batch_size", "", nil).Totals()
	b.ReportMetric(rows/float64(commits), "rows/commit")
	var n int
	db.QueryRow(`SELECT count(*) FROM intake_deliveries`).Scan(&n)
	if n != len(all) {
		b.Fatalf("%d deliveries acknowledged, %d stored", len(all), n)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// deliveryID makes ids like GitHub's: version 1 UUIDs from a 100 ns clock,
// from a few hosts (node ids), so their text is in random order while their
// time is not.
func deliveryID(i int) string {
	return v1UUID(benchEpoch+uint64(i)*37, uint64(i%8))
}

var benchEpoch = uint64(time.Now().UnixNano()/100) + 0x01b21dd213814000

func v1UUID(ts, node uint64) string {
	return fmt.Sprintf("%08x-%04x-1%03x-%04x-%012x", uint32(ts), uint16(ts>>32), uint16(ts>>48)&0xfff, 0x8000|node&0x3fff, 0x5e0000000000|node)
}

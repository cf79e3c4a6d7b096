package intake

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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
// batch is fsync'd. Processing is not running: this is intake alone. The
// senders run in a child process, as GitHub's do elsewhere, each a plain
// keep-alive HTTP/1.1 connection (see rawSender).
func BenchmarkIntake(b *testing.B) {
	for _, size := range []int{2 << 10, 25 << 10} {
		b.Run(fmt.Sprintf("payload=%dKiB", size>>10), func(b *testing.B) { benchIntake(b, size, 0, "raw") })
	}
}

// BenchmarkIntakeNetHTTPSenders is BenchmarkIntake/payload=2KiB with
// senders built on net/http's Client, for comparison: on this 2-core
// machine their CPU is taken from the server measured.
func BenchmarkIntakeNetHTTPSenders(b *testing.B) { benchIntake(b, 2<<10, 0, "net/http") }

// BenchmarkCommitDelay compares writer linger settings (2 KiB payloads).
func BenchmarkCommitDelay(b *testing.B) {
	for _, d := range []time.Duration{-1, 100 * time.Microsecond, 200 * time.Microsecond, 500 * time.Microsecond, time.Millisecond} {
		b.Run(fmt.Sprintf("delay=%v", max(d, 0)), func(b *testing.B) { benchIntake(b, 2<<10, d, "raw") })
	}
}

func benchIntake(b *testing.B, size int, delay time.Duration, sender string) {
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

	b.SetBytes(int64(size))
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	all, senderCPU := sendFromProcess(b, srv.URL, b.N, size, sender)
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()

	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	// CPU per delivery (user and system) of the server process and of the
	// senders' process: 2 cores / their sum is the CPU-bound ceiling here.
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(all)), "server-cpu-µs/delivery")
	b.ReportMetric(float64(senderCPU.Microseconds())/float64(len(all)), "sender-cpu-µs/delivery")
	commits, rows := reg.Histogram("compatbot_intake_commit_batch_size", "", nil).Totals()
	b.ReportMetric(rows/float64(commits), "rows/commit")
	var n int
	db.QueryRow(`SELECT count(*) FROM intake_deliveries`).Scan(&n)
	if n != len(all) {
		b.Fatalf("%d deliveries acknowledged, %d stored", len(all), n)
	}
}

const senders = 16

// sendFromProcess runs the senders in a child process (this test binary,
// which TestMain turns into the senders) and returns each delivery's
// latency and the child's CPU time. In-process senders would share the server's two Ps and
// their CPU would be counted as the server's.
func sendFromProcess(b *testing.B, url string, n, size int, sender string) ([]time.Duration, time.Duration) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("INTAKE_BENCH_SEND=%s %d %d %s", url, n, size, sender))
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("senders: %v\n%s%s", err, out.Bytes(), stderr.Bytes())
	}
	var all []time.Duration
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "latency-ns "); ok {
			d, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			all = append(all, time.Duration(d))
		}
	}
	if len(all) != n {
		b.Fatalf("senders reported %d latencies, want %d\n%s", len(all), n, stderr.Bytes())
	}
	return all, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// TestMain runs the senders instead of the tests when sendFromProcess
// started this binary as its child.
func TestMain(m *testing.M) {
	if spec := os.Getenv("INTAKE_BENCH_SEND"); spec != "" {
		os.Exit(runSenders(spec))
	}
	os.Exit(m.Run())
}

// runSenders is the child's side of sendFromProcess: it prints one
// latency per delivery.
func runSenders(spec string) int {
	var url, sender string
	var n, size int
	if _, err := fmt.Sscan(spec, &url, &n, &size, &sender); err != nil {
		fmt.Fprintf(os.Stderr, "INTAKE_BENCH_SEND=%q: %v\n", spec, err)
		return 2
	}
	all, err := send(url, n, size, sender)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w := bufio.NewWriter(os.Stdout)
	for _, d := range all {
		fmt.Fprintf(w, "latency-ns %d\n", int64(d))
	}
	if err := w.Flush(); err != nil {
		return 1
	}
	return 0
}

// send posts n signed deliveries from 16 concurrent senders of the given
// kind and returns each one's latency.
func send(url string, n, size int, sender string) ([]time.Duration, error) {
	bodies := make([][]byte, 32)
	sigs := make([]string, len(bodies))
	for i := range bodies {
		bodies[i] = prPayload(i+1, size)
		sigs[i] = webhook.Sign(bodies[i], secret)
	}
	var next atomic.Int64
	lat := make([][]time.Duration, senders)
	errs := make([]error, senders)
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders, MaxConnsPerHost: senders}}
	for s := 0; s < senders; s++ {
		var post func(i int) (int, error)
		switch sender {
		case "raw":
			rs, err := newRawSender(url)
			if err != nil {
				return nil, err
			}
			defer rs.close()
			post = func(i int) (int, error) {
				j := i % len(bodies)
				return rs.post(deliveryID(i), sigs[j], bodies[j])
			}
		case "net/http":
			post = func(i int) (int, error) {
				j := i % len(bodies)
				req, _ := http.NewRequest("POST", url, bytes.NewReader(bodies[j]))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "pull_request")
				req.Header.Set("X-GitHub-Delivery", deliveryID(i))
				req.Header.Set("X-Hub-Signature-256", sigs[j])
				resp, err := client.Do(req)
				if err != nil {
					return 0, err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode, nil
			}
		default:
			return nil, fmt.Errorf("unknown sender %q (want raw or net/http)", sender)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				status, err := post(i)
				if err != nil {
					errs[s] = err
					return
				}
				lat[s] = append(lat[s], time.Since(t0))
				if status != http.StatusAccepted {
					errs[s] = fmt.Errorf("delivery %d: status %d", i, status)
					return
				}
			}
		}()
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return all, errors.Join(errs...)
}

// rawSender is one keep-alive HTTP/1.1 connection that writes each request
// with one write and parses the response itself, as load generators such
// as wrk do. net/http's Client costs about 50 µs of CPU per request here
// (a read and a write goroutine per connection, header maps), against
// about 30 µs for this; on a 2-core machine that difference is CPU taken
// from the server being measured.
type rawSender struct {
	host string
	c    net.Conn
	r    *bufio.Reader
	req  []byte
}

func newRawSender(url string) (*rawSender, error) {
	host := strings.TrimPrefix(url, "http://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	return &rawSender{host: host, c: c, r: bufio.NewReader(c)}, nil
}

func (s *rawSender) close() { s.c.Close() }

func (s *rawSender) post(id, sig string, body []byte) (int, error) {
	r := append(s.req[:0], "POST / HTTP/1.1\r\nHost: "...)
	r = append(r, s.host...)
	r = append(r, "\r\nContent-Type: application/json\r\nX-GitHub-Event: pull_request\r\nX-GitHub-Delivery: "...)
	r = append(r, id...)
	r = append(r, "\r\nX-Hub-Signature-256: "...)
	r = append(r, sig...)
	r = append(r, "\r\nContent-Length: "...)
	r = strconv.AppendInt(r, int64(len(body)), 10)
	r = append(r, "\r\n\r\n"...)
	s.req = append(r, body...)
	if _, err := s.c.Write(s.req); err != nil {
		return 0, err
	}
	return readResponse(s.r)
}

// readResponse reads one HTTP/1.1 response with a Content-Length body and
// returns its status.
func readResponse(r *bufio.Reader) (int, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	code, ok := bytes.CutPrefix(line, []byte("HTTP/1.1 "))
	if !ok || len(code) < 3 {
		return 0, fmt.Errorf("status line %q", line)
	}
	status, err := strconv.Atoi(string(code[:3]))
	if err != nil {
		return 0, fmt.Errorf("status line %q: %w", line, err)
	}
	length := -1
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, fmt.Errorf("content length %q: %w", v, err)
			}
		}
	}
	if length < 0 {
		return 0, errors.New("response without Content-Length")
	}
	_, err = r.Discard(length)
	return status, err
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

// Package testsshd starts a real OpenSSH server (Debian's openssh-server)
// on a localhost port for tests of what compatbot does over ssh: a fresh
// host key and client key in a temporary directory, the client key as the
// only authorized key, and an ssh_config naming it all, so `ssh -F
// <config> <Host>` reaches it with nothing from ~/.ssh. It runs as the
// test's user (root in CI: sshd needs root to switch to the logged-in
// user), and is stopped when the test ends.
package testsshd

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Server is a running sshd.
type Server struct {
	// Host is the Host alias of ConfigFile: pass it as the ssh host.
	Host string
	// ConfigFile is an ssh_config for the client (ssh -F).
	ConfigFile string
	Port       string
}

// Options shape the remote side.
type Options struct {
	// Path is the PATH of remote commands (SetEnv); default /usr/bin:/bin.
	Path string
}

var listening = regexp.MustCompile(`Server listening on 127\.0\.0\.1 port \d+`)

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// Start starts sshd, or skips the test when sshd cannot run here (not
// installed, not root): .ci/run installs openssh-server and runs as root,
// so CI always runs these tests.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		if sshd, err = exec.LookPath("/usr/sbin/sshd"); err != nil {
			t.Skip("sshd not installed (Debian: apt-get install openssh-server; .ci/run does)")
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("sshd tests need root (CI runs as root)")
	}
	if o.Path == "" {
		o.Path = "/usr/bin:/bin"
	}
	dir := t.TempDir()
	keygen := func(name string) {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "compatbot-test", "-f", filepath.Join(dir, name)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %s: %v: %s", name, err, out)
		}
	}
	keygen("host_key")
	keygen("client_key")
	pub, err := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("authorized_keys", string(pub))
	// sshd insists on its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	sshdConfig := `ListenAddress 127.0.0.1
Port %[3]s
HostKey %[1]s/host_key
AuthorizedKeysFile %[1]s/authorized_keys
PidFile none
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv PATH=%[2]s
`
	// sshd takes no port 0: a free port is asked of the kernel and handed
	// over; another process may take it in between, so a failed bind is
	// tried again with a new one.
	var port string
	var stop func()
	for attempt := 0; ; attempt++ {
		port = freePort(t)
		cfg := write("sshd_config", fmt.Sprintf(sshdConfig, dir, o.Path, port))
		var log string
		if stop, log = run(t, sshd, cfg); stop != nil {
			break
		}
		if attempt == 4 || !strings.Contains(log, "Address already in use") {
			t.Fatalf("sshd did not start:\n%s", log)
		}
	}
	t.Cleanup(stop)
	hostPub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(hostPub))
	write("known_hosts", fmt.Sprintf("[127.0.0.1]:%s %s %s\n", port, f[0], f[1]))
	client := write("ssh_config", fmt.Sprintf(`Host test-stratum0
	HostName 127.0.0.1
	Port %[2]s
	User %[3]s
	IdentityFile %[1]s/client_key
	IdentitiesOnly yes
	UserKnownHostsFile %[1]s/known_hosts
	StrictHostKeyChecking yes
	LogLevel ERROR
`, dir, port, currentUser()))
	return &Server{Host: "test-stratum0", ConfigFile: client, Port: port}
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

// run starts sshd in the foreground (-D) logging to stderr (-e) and waits
// for its "Server listening" line: no polling. It returns stop, or nil and
// the log when sshd exited first.
func run(t testing.TB, sshd, cfg string) (func(), string) {
	t.Helper()
	cmd := exec.Command(sshd, "-D", "-e", "-f", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up := make(chan bool, 1)
	var mu sync.Mutex
	var log strings.Builder
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if !signalled && listening.MatchString(sc.Text()) {
				up <- true
				signalled = true
			}
		}
		if !signalled {
			up <- false
		}
	}()
	logText := func() string {
		mu.Lock()
		defer mu.Unlock()
		return log.String()
	}
	stop := func() {
		cmd.Process.Kill()
		<-logDone
		cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", logText())
		}
	}
	if <-up {
		return stop, ""
	}
	<-logDone
	cmd.Wait()
	return nil, logText()
}

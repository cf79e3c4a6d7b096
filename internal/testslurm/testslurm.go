// Package testslurm runs a real single-node Slurm cluster for tests:
// munged, slurmctld and slurmd from Debian's slurm-wlm and munge packages,
// on localhost ports, with all state in a temporary directory, started
// once and stopped when the tests end. Only tests import it.
package testslurm

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cluster is a running single-node cluster. Env makes the Slurm client
// commands (sbatch, squeue, scontrol, scancel) talk to it.
type Cluster struct {
	Dir  string
	Env  []string
	Node string
	pids []string // pid files of the daemons, stopped in reverse
}

// Binaries are the programs the cluster needs; a test that finds one
// missing must fail (CI installs them), never skip.
var Binaries = []string{"munged", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "squeue"}

// Start starts the daemons under dir and waits until the node is idle.
func Start(dir string) (*Cluster, error) {
	for _, b := range Binaries {
		if _, err := exec.LookPath(b); err != nil {
			return nil, fmt.Errorf("testslurm: %s not found (Debian: apt-get install slurm-wlm munge): %w", b, err)
		}
	}
	c := &Cluster{Dir: dir, Node: "localhost"}
	for _, d := range []string{"state", "spool", "log", "munge"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	key := make([]byte, 1024)
	if f, err := os.Open("/dev/urandom"); err == nil {
		f.Read(key)
		f.Close()
	}
	keyFile, sock := filepath.Join(dir, "munge", "munge.key"), filepath.Join(dir, "munge", "munge.sock")
	if err := os.WriteFile(keyFile, key, 0o400); err != nil {
		return nil, err
	}
	c.pids = append(c.pids, filepath.Join(dir, "munge", "munged.pid"))
	if err := run("munged", "--key-file="+keyFile, "--socket="+sock, "--pid-file="+c.pids[0],
		"--log-file="+filepath.Join(dir, "log", "munged.log"), "--seed-file="+filepath.Join(dir, "munge", "seed"), "-f"); err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		c.Stop()
		return nil, err
	}
	conf := filepath.Join(dir, "slurm.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`ClusterName=compatbot-test
SlurmctldHost=localhost
SlurmctldPort=%d
SlurmdPort=%d
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=%[3]s/munge/munge.sock
CredType=cred/munge
StateSaveLocation=%[3]s/state
SlurmdSpoolDir=%[3]s/spool
SlurmctldPidFile=%[3]s/slurmctld.pid
SlurmdPidFile=%[3]s/slurmd.pid
SlurmctldLogFile=%[3]s/log/slurmctld.log
SlurmdLogFile=%[3]s/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# A batch job is scheduled when it is submitted: Slurm's default lets it
# wait up to 3 s, which every test would pay.
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MpiDefault=none
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=zen4 Nodes=localhost MaxTime=INFINITE State=UP
`, ports[0], ports[1], dir)), 0o644); err != nil {
		c.Stop()
		return nil, err
	}
	c.Env = []string{"SLURM_CONF=" + conf}
	c.pids = append(c.pids, filepath.Join(dir, "slurmctld.pid"), filepath.Join(dir, "slurmd.pid"))
	if err := c.run("slurmctld", "-c", "-i"); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.run("slurmd", "-c"); err != nil {
		c.Stop()
		return nil, err
	}
	// The node registers asynchronously: wait (bounded) for sinfo to call
	// it idle, polling the scheduler itself.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := c.output("sinfo", "-h", "-o", "%t", "-p", "debug")
		if strings.TrimSpace(out) == "idle" {
			return c, nil
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(filepath.Join(dir, "log", "slurmctld.log"))
			c.Stop()
			return nil, fmt.Errorf("testslurm: the node is %q after 30 s; slurmctld.log:\n%s", strings.TrimSpace(out), logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the daemons (slurmd, slurmctld, munged).
func (c *Cluster) Stop() {
	for i := len(c.pids) - 1; i >= 0; i-- {
		b, err := os.ReadFile(c.pids[i])
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			continue
		}
		syscall.Kill(pid, syscall.SIGTERM)
		for j := 0; j < 100 && syscall.Kill(pid, 0) == nil; j++ {
			time.Sleep(50 * time.Millisecond)
		}
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// Log is a daemon's log file, for a failing test to show.
func (c *Cluster) Log(daemon string) string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "log", daemon+".log"))
	return string(b)
}

func (c *Cluster) run(name string, args ...string) error {
	_, err := c.output(name, args...)
	return err
}

func (c *Cluster) output(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("testslurm: %s %s: %v: %s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("testslurm: %s: %v: %s", name, err, out)
	}
	return nil
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

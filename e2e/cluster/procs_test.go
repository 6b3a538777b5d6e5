package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the repository root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repository root not found at %s: %v", dir, err)
	}
	return dir
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on right now, for a process
// that binds it a moment later: one below the kernel's ephemeral range (freeLowPort), which an
// outgoing connection of any process could otherwise take in between.
func freePort(t *testing.T) int {
	t.Helper()
	return freeLowPort(t)
}

// handedOut are the ports freeLowPort returned.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freeLowPort returns a free TCP port on 127.0.0.1 below 32768. Temporal's SQL schema keeps the
// membership port of each service in a smallint, so the kernel's ephemeral ports (32768 and up)
// do not fit.
func freeLowPort(t *testing.T) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		if handedOut.ports[port] {
			continue // given to another process that may not have bound it yet
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			handedOut.ports[port] = true
			return port
		}
	}
	t.Fatal("no free port between 20000 and 32000")
	return 0
}

// goBuild builds pkg (a package path relative to the repository root) into dir/name with the
// given extra go build flags.
func goBuild(t *testing.T, root, dir, name, pkg string, flags ...string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	args := append(append([]string{"build", "-o", out}, flags...), pkg)
	start := time.Now()
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	t.Logf("built %s (%s) in %v", name, pkg, time.Since(start).Round(100*time.Millisecond))
	return out
}

// proc is one OS process of the cluster: its command line, environment and log file. It can be
// started again after it was killed.
type proc struct {
	t    *testing.T
	name string
	bin  string
	args []string
	env  []string
	dir  string
	log  string
	// health is the URL that answers 200 once the process is ready (empty: no check).
	health string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	// cpu is the CPU time of the runs that ended (user and system).
	cpu time.Duration
}

func (p *proc) start() {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(f, "---- %s start %s\n", time.Now().Format(time.RFC3339Nano), p.name)
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		p.mu.Lock()
		if st := cmd.ProcessState; st != nil {
			p.cpu += st.UserTime() + st.SystemTime()
		}
		p.mu.Unlock()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
}

// signal sends sig to the process (and its group) and waits until it exited.
func (p *proc) signal(sig syscall.Signal, within time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
		return nil
	case <-time.After(within):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s did not exit within %v of %v", p.name, within, sig)
	}
}

// kill ends the process at once, as a crash or an OOM kill would: SIGKILL, no clean-up.
func (p *proc) kill() {
	if err := p.signal(syscall.SIGKILL, 10*time.Second); err != nil {
		p.t.Error(err)
	}
}

// stop asks the process to stop (SIGTERM) and waits for it.
func (p *proc) stop() error { return p.signal(syscall.SIGTERM, 30*time.Second) }

func (p *proc) exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady polls p.health until it answers 200, failing with the log's tail otherwise.
func (p *proc) waitReady(ctx context.Context, within time.Duration) {
	p.t.Helper()
	if p.health == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last string
	for {
		if p.exited() {
			p.t.Fatalf("%s exited while starting\n%s", p.name, p.tail(40))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.health, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(b))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			p.t.Fatalf("%s not ready within %v (%s): %s\n%s", p.name, within, p.health, last, p.tail(40))
		case <-time.After(200 * time.Millisecond): // polling interval
		}
	}
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 400 {
			lines[i] = l[:400] + " …"
		}
	}
	return "  " + p.name + "| " + strings.Join(lines, "\n  "+p.name+"| ")
}

// cluster owns the processes and stops them at the end of the test.
type cluster struct {
	t     *testing.T
	dir   string
	procs []*proc
	// after runs once every process has stopped (removing their directories).
	after   []func()
	stopped bool
}

func (c *cluster) add(p *proc) *proc {
	p.t = c.t
	p.log = filepath.Join(c.dir, p.name+".log")
	if p.dir == "" {
		p.dir = c.dir
	}
	c.procs = append(c.procs, p)
	return p
}

// cpuTime is the CPU time the process used in all its runs; only those that ended count.
func (p *proc) cpuTime() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cpu
}

// stopAll stops the processes in reverse order of adding them. On failure it prints the tail
// of every log, and the logs stay in the test's directory when FLEXCORD_CLUSTER_KEEP is set.
// It may be called more than once.
func (c *cluster) stopAll() {
	if c.stopped {
		return
	}
	c.stopped = true
	var errs []error
	for i := len(c.procs) - 1; i >= 0; i-- {
		if err := c.procs[i].stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.t.Failed() {
		for _, p := range c.procs {
			c.t.Logf("last lines of %s:\n%s", p.log, p.tail(30))
		}
	}
	if err := errors.Join(errs...); err != nil {
		c.t.Log(err)
	}
	for _, f := range c.after {
		f()
	}
}

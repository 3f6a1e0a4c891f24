// Package testserver starts real Consul, etcd, kube-apiserver and Prometheus servers for
// tests, on free loopback ports, with their data in the test's temporary
// directory.
//
//	srv := testserver.Consul(t)      // started and ready
//	client := ... srv.Addr ...
//	srv.Stop()                       // the same ports and data
//	srv.Start()                      // come back
//
// Binaries are looked up in the .tools/bin of the module the test runs in and
// of the modules above it (found by walking up from the test's working
// directory to each go.mod), then in PATH. A missing
// binary fails the test and says to run `make test-deps`: these tests are
// never skipped. Servers are stopped by t.Cleanup; every wait is bounded.
package testserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartTimeout bounds how long a server may take to become ready.
var StartTimeout = 60 * time.Second

// stopTimeout bounds how long a server may take to exit after SIGTERM
// before it is killed.
const stopTimeout = 15 * time.Second

// Binary returns the path of the named server binary, or fails t saying how
// to install it.
func Binary(t testing.TB, name string) string {
	t.Helper()
	// The nearest module's .tools/bin, then those of the modules it sits in (deploy/ is a
	// module of its own inside the repository).
	for dir, err := repoRoot(); err == nil; dir, err = repoRoot(filepath.Dir(dir)) {
		p := filepath.Join(dir, ".tools", "bin", name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("testserver: %s not found in .tools/bin or PATH: run `make test-deps` (scripts/install-test-deps.sh) to install the real servers the tests use", name)
	return ""
}

// repoRoot returns the nearest directory holding a go.mod: from the working directory, or
// from the first of from.
func repoRoot(from ...string) (string, error) {
	dir, err := os.Getwd()
	if len(from) > 0 {
		dir, err = from[0], nil
	}
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// portsMu keeps one test binary from handing out the same port twice; the
// kernel keeps other processes from it while the listener is open.
var (
	portsMu sync.Mutex
	given   = map[int]bool{}
)

// FreePorts returns n distinct free TCP ports on 127.0.0.1.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testserver: free port: %v", err)
		}
		ls = append(ls, l)
		p := l.Addr().(*net.TCPAddr).Port
		if given[p] {
			continue
		}
		given[p] = true
		ports = append(ports, p)
	}
	return ports
}

// process is one run of a server binary.
type process struct {
	t       testing.TB
	name    string
	bin     string
	args    []string
	dir     string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	runs int
}

func (p *process) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.t.Fatalf("testserver: %s is already running", p.name)
	}
	p.runs++
	p.logPath = filepath.Join(p.dir, fmt.Sprintf("%s-%d.log", p.name, p.runs))
	logf, err := os.Create(p.logPath)
	if err != nil {
		p.t.Fatalf("testserver: %v", err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		p.t.Fatalf("testserver: start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
}

// running reports whether the process has not exited.
func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits, then SIGKILL. The exit status is ignored:
// consul exits 1 on SIGTERM.
func (p *process) stop() {
	cmd, done := p.take()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return
	case <-time.After(stopTimeout):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// take returns the running command, if any, and forgets it: the caller
// ends it.
func (p *process) take() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	return cmd, done
}

// logTail returns the end of the current run's log, for failure messages.
func (p *process) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(bytes.TrimSpace(b))
}

// waitReady polls ready until it succeeds, the process exits, or
// StartTimeout passes; it fails the test in the last two cases.
func (p *process) waitReady(ready func(ctx context.Context) error) {
	p.t.Helper()
	p.waitReadyWithin(StartTimeout, ready)
}

// waitReadyWithin is waitReady with its own bound, for a server slower to start.
func (p *process) waitReadyWithin(within time.Duration, ready func(ctx context.Context) error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	start := time.Now()
	var last error
	for {
		if !p.running() {
			p.t.Fatalf("testserver: %s exited while starting; log:\n%s", p.name, p.logTail())
		}
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		last = ready(rctx)
		rcancel()
		if last == nil {
			p.t.Logf("testserver: %s ready in %v", p.name, time.Since(start).Round(time.Millisecond))
			return
		}
		select {
		case <-ctx.Done():
			p.t.Fatalf("testserver: %s not ready after %v: %v; log:\n%s", p.name, within, last, p.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

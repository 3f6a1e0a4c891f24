// Package servers starts real etcd and Consul servers on free loopback
// ports with temporary data directories, for benchmarks. The flags are
// those of internal/testserver (which needs a testing.TB and so can't be
// used here): a single-member etcd with its default durability, and a
// single-node Consul server (not -dev: its raft log is on disk and synced)
// with DNS and gRPC off.
package servers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/configd/configd/bench/internal/daemon"
)

// Server is one running server process.
type Server struct {
	Name string
	// Addr is host:port of the client endpoint (etcd's client URL without
	// the scheme; Consul's HTTP API).
	Addr string
	// Version is what the binary says it is, for the report.
	Version string

	cmd  *exec.Cmd
	dir  string
	done chan struct{}
	log  string
}

// Pid is the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// RSS is the server's resident memory in bytes.
func (s *Server) RSS() (int64, error) { return daemon.RSS(s.Pid()) }

// CPU returns the CPU time the server has used so far.
func (s *Server) CPU() (time.Duration, error) { return daemon.CPU(s.Pid()) }

// Stop sends SIGTERM, waits up to 15 s, kills, and removes the data dir.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	os.RemoveAll(s.dir)
}

// Binary finds name in the repository's .tools/bin (searched upwards from
// the working directory), then in PATH.
func Binary(name string) (string, error) {
	dir, _ := os.Getwd()
	for dir != "" {
		p := filepath.Join(dir, ".tools", "bin", name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in .tools/bin or PATH: run `make test-deps` (scripts/install-test-deps.sh)", name)
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1.
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func hostPort(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }

func version(bin string, args ...string) string {
	out, _ := exec.Command(bin, args...).Output()
	line, _, _ := bytes.Cut(out, []byte("\n"))
	return string(bytes.TrimSpace(line))
}

func start(name, bin string, args func(dir string) ([]string, string, error), ready func(ctx context.Context, addr string) error) (*Server, error) {
	s, err := spawn(name, bin, args)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ready); err != nil {
		return nil, err
	}
	return s, nil
}

// spawn starts bin with the arguments args gives for a fresh directory,
// without waiting for it to be ready.
func spawn(name, bin string, args func(dir string) ([]string, string, error)) (*Server, error) {
	dir, err := os.MkdirTemp("", "bench-"+name+"-*")
	if err != nil {
		return nil, err
	}
	argv, addr, err := args(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{Name: name, Addr: addr, dir: dir, done: make(chan struct{}), log: filepath.Join(dir, name+".log")}
	logf, err := os.Create(s.log)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.cmd = exec.Command(bin, argv...)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { s.cmd.Wait(); logf.Close(); close(s.done) }()
	return s, nil
}

// waitReady polls ready for up to 60 s; on failure it stops s.
func (s *Server) waitReady(ready func(ctx context.Context, addr string) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var last error
	for {
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.log)
			os.RemoveAll(s.dir)
			return fmt.Errorf("%s exited while starting: %s", s.Name, tail(b))
		default:
		}
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		last = ready(rctx, s.Addr)
		rcancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			s.Stop()
			return fmt.Errorf("%s not ready after 60s: %v", s.Name, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// Etcd starts a single-member etcd (Debian's /usr/bin/etcd 3.4 or any in
// .tools/bin or PATH) with its defaults: every Put is in the fsync'd WAL
// before it is answered.
func Etcd() (*Server, error) {
	ms, err := EtcdCluster(1)
	if err != nil {
		return nil, err
	}
	return ms[0], nil
}

// EtcdCluster starts an etcd cluster of n members, each its own process
// on loopback with its own data dir, and waits until every member is
// healthy (which needs a leader). A member's Addr is its client endpoint;
// its metrics are at http://Addr/metrics.
func EtcdCluster(n int) ([]*Server, error) {
	bin, err := Binary("etcd")
	if err != nil {
		return nil, err
	}
	ports, err := FreePorts(2 * n) // client, peer of each member
	if err != nil {
		return nil, err
	}
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("m%d=http://%s", i, hostPort(ports[2*i+1])))
	}
	var ms []*Server
	stopAll := func() {
		for _, m := range ms {
			m.Stop()
		}
	}
	for i := range n {
		client, peer := "http://"+hostPort(ports[2*i]), "http://"+hostPort(ports[2*i+1])
		m, err := spawn(fmt.Sprintf("etcd-m%d", i), bin, func(dir string) ([]string, string, error) {
			return []string{
				"--name", fmt.Sprintf("m%d", i),
				"--data-dir", filepath.Join(dir, "data"),
				"--listen-client-urls", client,
				"--advertise-client-urls", client,
				"--listen-peer-urls", peer,
				"--initial-advertise-peer-urls", peer,
				"--initial-cluster", strings.Join(initial, ","),
				"--initial-cluster-token", fmt.Sprintf("bench-%d", ports[0]),
				"--initial-cluster-state", "new",
				"--log-level", "warn",
				"--logger", "zap",
			}, hostPort(ports[2*i]), nil
		})
		if err != nil {
			stopAll()
			return nil, err
		}
		ms = append(ms, m)
	}
	// Every member must run before any can elect a leader and be healthy.
	for _, m := range ms {
		if err := m.waitReady(etcdHealthy); err != nil {
			stopAll()
			return nil, err
		}
		m.Version = strings.TrimPrefix(version(bin, "--version"), "etcd Version: ")
	}
	return ms, nil
}

func etcdHealthy(ctx context.Context, addr string) error {
	body, err := get(ctx, "http://"+addr+"/health")
	if err != nil {
		return err
	}
	var h struct {
		Health string `json:"health"`
	}
	if json.Unmarshal(body, &h) != nil || h.Health != "true" {
		return fmt.Errorf("health: %s", body)
	}
	return nil
}

// Consul starts a single-node Consul server (`agent -server
// -bootstrap-expect 1` with a data dir, raft_multiplier 1) and raises its
// per-client HTTP connection limit (200 by default), since every benchmark
// client comes from 127.0.0.1.
func Consul() (*Server, error) {
	bin, err := Binary("consul")
	if err != nil {
		return nil, err
	}
	s, err := start("consul", bin, func(dir string) ([]string, string, error) {
		ports, err := FreePorts(4)
		if err != nil {
			return nil, "", err
		}
		return []string{
			"agent", "-server", "-bootstrap-expect", "1",
			"-data-dir", filepath.Join(dir, "data"),
			"-node", "bench",
			"-bind", "127.0.0.1", "-client", "127.0.0.1", "-advertise", "127.0.0.1",
			"-http-port", strconv.Itoa(ports[0]),
			"-server-port", strconv.Itoa(ports[1]),
			"-serf-lan-port", strconv.Itoa(ports[2]),
			"-serf-wan-port", strconv.Itoa(ports[3]),
			"-grpc-port", "-1", "-grpc-tls-port", "-1", "-dns-port", "-1",
			"-hcl", "performance { raft_multiplier = 1 }",
			"-hcl", "disable_update_check = true",
			"-hcl", "limits { http_max_conns_per_client = 15000 }",
			"-log-level", "warn",
		}, hostPort(ports[0]), nil
	}, func(ctx context.Context, addr string) error {
		_, err := get(ctx, "http://"+addr+"/v1/kv/bench-readiness?consistent")
		if errors.Is(err, errNotFound) {
			return nil
		}
		return err
	})
	if s != nil {
		s.Version = version(bin, "version")
	}
	return s, err
}

var errNotFound = errors.New("404")

func get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch resp.StatusCode {
	case http.StatusOK:
		return b, nil
	case http.StatusNotFound:
		return b, errNotFound
	}
	return b, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
}

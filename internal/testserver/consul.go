package testserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
)

// ConsulServer is a real single-node Consul server on loopback.
//
// It runs as `consul agent -server -bootstrap-expect 1` with a data
// directory rather than `-dev`, because a dev agent keeps its data in memory
// and a restart would lose it; raft_multiplier 1 gives dev-like election
// times (about a second). DNS and gRPC are off.
type ConsulServer struct {
	// Addr is host:port of the HTTP API.
	Addr string
	// DataDir holds the server's state across Stop and Start.
	DataDir string
	// HTTPSAddr and TLS are set for a server from ConsulTLS: host:port of
	// its HTTPS API, which wants a client certificate, and the files.
	HTTPSAddr string
	TLS       *TLSFiles

	p     *process
	token string
}

// Consul starts a Consul server and waits until it has a leader and answers
// KV reads. It is stopped when the test ends. hcl adds configuration, each
// string passed as one -hcl flag (such as an acl block).
func Consul(t testing.TB, hcl ...string) *ConsulServer {
	t.Helper()
	s := NewConsul(t, hcl...)
	s.Start()
	return s
}

// ConsulTLS starts a Consul server that also serves its HTTP API over TLS
// at HTTPSAddr, asking for a client certificate (see TLS for the files).
// Addr stays plain HTTP, for test clients.
func ConsulTLS(t testing.TB) *ConsulServer {
	t.Helper()
	s := NewConsul(t)
	s.TLS = NewTLSFiles(t, s.p.dir)
	port := FreePorts(t, 1)[0]
	s.HTTPSAddr = hostPort(port)
	s.p.args = append(s.p.args,
		"-hcl", fmt.Sprintf("ports { https = %d }", port),
		"-hcl", fmt.Sprintf(`tls { https { ca_file = %q, cert_file = %q, key_file = %q, verify_incoming = true } }`,
			s.TLS.CAFile, s.TLS.ServerCert, s.TLS.ServerKey))
	s.Start()
	return s
}

// NewConsul prepares a Consul server with its ports and data directory but
// does not start it, for tests of a server that is down at first.
func NewConsul(t testing.TB, hcl ...string) *ConsulServer {
	t.Helper()
	bin := Binary(t, "consul")
	dir := t.TempDir()
	ports := FreePorts(t, 4) // http, server rpc, serf lan, serf wan
	s := &ConsulServer{Addr: hostPort(ports[0]), DataDir: dir + "/data"}
	s.p = &process{t: t, name: "consul", bin: bin, dir: dir, args: []string{
		"agent", "-server", "-bootstrap-expect", "1",
		"-data-dir", s.DataDir,
		"-node", "testserver",
		"-bind", "127.0.0.1", "-client", "127.0.0.1", "-advertise", "127.0.0.1",
		"-http-port", strconv.Itoa(ports[0]),
		"-server-port", strconv.Itoa(ports[1]),
		"-serf-lan-port", strconv.Itoa(ports[2]),
		"-serf-wan-port", strconv.Itoa(ports[3]),
		"-grpc-port", "-1", "-grpc-tls-port", "-1", "-dns-port", "-1",
		"-hcl", "performance { raft_multiplier = 1 }",
		"-hcl", "disable_update_check = true",
		"-log-level", "warn",
	}}
	for _, h := range hcl {
		s.p.args = append(s.p.args, "-hcl", h)
	}
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server (again) on the same ports and data, and waits
// until it is ready.
func (s *ConsulServer) Start() {
	s.p.t.Helper()
	s.p.start()
	s.p.waitReady(s.ready)
}

// Stop stops the server; its data stays for Start.
func (s *ConsulServer) Stop() { s.p.stop() }

// Restart stops and starts the server.
func (s *ConsulServer) Restart() {
	s.p.t.Helper()
	s.Stop()
	s.Start()
}

// Token, when set, is sent with the readiness check (for servers started
// with ACLs that deny by default).
func (s *ConsulServer) WithToken(token string) *ConsulServer {
	s.token = token
	return s
}

// ready: a consistent KV read succeeds (404 is fine: no such key), which
// needs an elected leader that has restored its state.
func (s *ConsulServer) ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Addr+"/v1/kv/testserver-readiness?consistent", nil)
	if err != nil {
		return err
	}
	if s.token != "" {
		req.Header.Set("X-Consul-Token", s.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound {
		return nil
	}
	return fmt.Errorf("GET /v1/kv: %s: %s", resp.Status, body)
}

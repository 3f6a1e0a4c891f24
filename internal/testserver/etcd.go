package testserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdServer is a real single-member etcd server on loopback (Debian's
// etcd-server, 3.4, or any etcd in PATH).
type EtcdServer struct {
	// Endpoints are the client URLs, for clientv3.Config.Endpoints.
	Endpoints []string
	// Addr is host:port of the client endpoint.
	Addr string
	// DataDir holds the server's state across Stop and Start.
	DataDir string
	// TLS is set for a server from EtcdTLS: its client URLs are https and
	// it asks for a client certificate.
	TLS *TLSFiles

	p *process
}

// Etcd starts an etcd server and waits until /health says it is healthy.
// It is stopped when the test ends.
func Etcd(t testing.TB) *EtcdServer {
	t.Helper()
	s := NewEtcd(t)
	s.Start()
	return s
}

// NewEtcd prepares an etcd server with its ports and data directory but
// does not start it, for tests of a server that is down at first.
func NewEtcd(t testing.TB) *EtcdServer {
	t.Helper()
	return newEtcd(t, false)
}

// EtcdTLS starts an etcd server whose client endpoint is https and wants a
// client certificate: see TLS for the files.
func EtcdTLS(t testing.TB) *EtcdServer {
	t.Helper()
	s := newEtcd(t, true)
	s.Start()
	return s
}

func newEtcd(t testing.TB, withTLS bool) *EtcdServer {
	t.Helper()
	bin := Binary(t, "etcd")
	dir := t.TempDir()
	ports := FreePorts(t, 2) // client, peer
	scheme := "http://"
	if withTLS {
		scheme = "https://"
	}
	client := scheme + hostPort(ports[0])
	peer := "http://" + hostPort(ports[1])
	s := &EtcdServer{Endpoints: []string{client}, Addr: hostPort(ports[0]), DataDir: dir + "/data"}
	s.p = &process{t: t, name: "etcd", bin: bin, dir: dir, args: []string{
		"--name", "default",
		"--data-dir", s.DataDir,
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "default=" + peer,
		"--log-level", "warn",
		"--logger", "zap",
	}}
	if withTLS {
		s.TLS = NewTLSFiles(t, dir)
		s.p.args = append(s.p.args, "--cert-file", s.TLS.ServerCert, "--key-file", s.TLS.ServerKey,
			"--client-cert-auth", "--trusted-ca-file", s.TLS.CAFile)
	}
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server (again) on the same ports and data, and waits
// until it is healthy.
func (s *EtcdServer) Start() {
	s.p.t.Helper()
	s.p.start()
	s.p.waitReady(s.ready)
}

// Client returns a client of the server, closed when the test ends.
func (s *EtcdServer) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cfg := clientv3.Config{Endpoints: s.Endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()}
	if s.TLS != nil {
		cfg.TLS = s.TLS.ClientConfig(t)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Stop stops the server; its data stays for Start.
func (s *EtcdServer) Stop() { s.p.stop() }

// Restart stops and starts the server.
func (s *EtcdServer) Restart() {
	s.p.t.Helper()
	s.Stop()
	s.Start()
}

func (s *EtcdServer) ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoints[0]+"/health", nil)
	if err != nil {
		return err
	}
	hc := http.DefaultClient
	if s.TLS != nil {
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: s.TLS.ClientConfig(s.p.t)}}
		defer hc.CloseIdleConnections()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	var h struct {
		Health string `json:"health"`
	}
	if err := json.Unmarshal(body, &h); err != nil || h.Health != "true" {
		return fmt.Errorf("GET /health: %s: %s", resp.Status, body)
	}
	return nil
}

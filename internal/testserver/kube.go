package testserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// KubeServer is a real kube-apiserver (Kubernetes v1.34, scripts/install-kube-apiserver.sh)
// on loopback, on an etcd of its own (Etcd: Debian's 3.4 serves it), with RBAC on and one admin token (group system:masters).
// There is no controller manager, scheduler or kubelet: objects are stored and served, pods stay
// Pending unless a test sets their status, and namespaces get no default ServiceAccount.
type KubeServer struct {
	// URL is https://127.0.0.1:PORT.
	URL string
	// Token is the admin's bearer token.
	Token string
	// CAFile is the PEM of the CA that signed the server's certificate.
	CAFile string
	// Etcd is the server's own etcd.
	Etcd *EtcdServer

	p  *process
	hc *http.Client
}

// kubeStartTimeout bounds the API server's start: it installs its built-in roles, priority
// levels and API groups before /readyz says ok (seconds; tens on a loaded machine).
const kubeStartTimeout = 3 * time.Minute

// KubeAPIServer starts a kube-apiserver and its etcd and waits until /readyz answers ok. Both
// are stopped when the test ends.
func KubeAPIServer(t testing.TB) *KubeServer {
	t.Helper()
	s := NewKubeAPIServer(t)
	s.Start()
	return s
}

// NewKubeAPIServer prepares a kube-apiserver (its files, ports and etcd, which it starts) but
// does not start it, for tests of a server that is down at first.
func NewKubeAPIServer(t testing.TB) *KubeServer {
	t.Helper()
	bin := Binary(t, "kube-apiserver")
	etcd := Etcd(t) // Debian's 3.4 serves Kubernetes v1.34 for these tests
	dir := t.TempDir()
	port := FreePorts(t, 1)[0]
	tlsFiles := NewTLSFiles(t, dir)
	token := rand.Text()
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",admin,admin,system:masters\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	saKey, saPub := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	writePEM(t, saKey, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	writePEM(t, saPub, "PUBLIC KEY", pub)
	s := &KubeServer{URL: "https://" + hostPort(port), Token: token, CAFile: tlsFiles.CAFile, Etcd: etcd}
	s.p = &process{t: t, name: "kube-apiserver", bin: bin, dir: dir, args: []string{
		"--etcd-servers", etcd.Endpoints[0],
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", fmt.Sprint(port),
		"--cert-dir", filepath.Join(dir, "certs"),
		"--tls-cert-file", tlsFiles.ServerCert,
		"--tls-private-key-file", tlsFiles.ServerKey,
		"--token-auth-file", tokens,
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", saPub,
		"--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--v", "1",
	}}
	s.hc = &http.Client{Timeout: 30 * time.Second, Transport: bearer{token, &http.Transport{TLSClientConfig: tlsFiles.ClientConfig(t)}}}
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server (again) on the same port and etcd, and waits until it is ready.
func (s *KubeServer) Start() {
	s.p.t.Helper()
	s.p.start()
	s.p.waitReadyWithin(kubeStartTimeout, s.ready)
}

// Client returns an HTTP client of the server as the admin: it trusts the server's CA and sends
// the admin's token.
func (s *KubeServer) Client() *http.Client { return s.hc }

// bearer sends a token with every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// Stop stops the API server; its etcd, and so its objects, stay for Start.
func (s *KubeServer) Stop() {
	s.p.stop()
	s.hc.CloseIdleConnections()
}

func (s *KubeServer) ready(ctx context.Context) error {
	code, body, err := s.do(ctx, http.MethodGet, "/readyz", "", nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET /readyz: %d: %s", code, body)
	}
	return nil
}

func (s *KubeServer) do(ctx context.Context, method, path, contentType string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Request sends one request as the admin: body, when not nil, is sent as JSON (or as is when it
// is a []byte, with contentType). It returns the status and the answer; a failure to talk to the
// server fails t.
func (s *KubeServer) Request(t testing.TB, method, path, contentType string, body any) (int, []byte) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	if b != nil && contentType == "" {
		contentType = "application/json"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, out, err := s.do(ctx, method, path, contentType, b)
	if err != nil {
		t.Fatalf("kube-apiserver: %s %s: %v", method, path, err)
	}
	return code, out
}

// Must is Request that fails t unless the answer is 2xx.
func (s *KubeServer) Must(t testing.TB, method, path string, body any) []byte {
	t.Helper()
	ct := ""
	if method == http.MethodPatch {
		ct = "application/merge-patch+json"
	}
	code, out := s.Request(t, method, path, ct, body)
	if code/100 != 2 {
		t.Fatalf("kube-apiserver: %s %s: %d: %s", method, path, code, strings.TrimSpace(string(out)))
	}
	return out
}

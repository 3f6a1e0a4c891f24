package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/configd/configd/internal/testserver"
)

func TestPortMuxSendsGRPCAndHTTPToTheirServers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := newPortMux(ln)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "http "+r.Method)
	})}
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go hs.Serve(mux.http)
	go gs.Serve(mux.grpc)
	go mux.serve()
	t.Cleanup(func() { hs.Close(); gs.Stop(); mux.close() })
	addr := ln.Addr().String()

	for _, method := range []string{"GET", "PUT", "POST", "PATCH"} {
		req, _ := http.NewRequest(method, "http://"+addr+"/x", strings.NewReader("body"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "http "+method {
			t.Errorf("%s answered %q", method, b)
		}
	}

	// A request that arrives a byte at a time still reaches HTTP.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, part := range []string{"P", "U", "T /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"} {
		if _, err := io.WriteString(c, part); err != nil {
			t.Fatal(err)
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(line, "200") {
		t.Fatalf("byte-by-byte request: %q %v", line, err)
	}

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC health over the shared port: %v %v", res, err)
	}
}

// startTLSMux serves a TLS portMux on loopback with an HTTP server that
// answers the request's TLS state and a gRPC server (health) whose calls
// record their peer's AuthInfo.
func startTLSMux(t *testing.T, cfg Config) (addr string, peers chan credentials.AuthInfo, mux *portMux) {
	t.Helper()
	tc, err := serverTLS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux = newPortMux(ln)
	mux.tls = tc
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			io.WriteString(w, "no TLS")
			return
		}
		io.WriteString(w, "tls "+r.Proto+" "+r.Method)
	})}
	peers = make(chan credentials.AuthInfo, 10)
	gs := grpc.NewServer(grpc.Creds(handshakenTLS{}), grpc.UnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if p, ok := peer.FromContext(ctx); ok {
				peers <- p.AuthInfo
			}
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go hs.Serve(mux.http)
	go gs.Serve(mux.grpc)
	go mux.serve()
	t.Cleanup(func() { hs.Close(); gs.Stop(); mux.close() })
	return ln.Addr().String(), peers, mux
}

func grpcHealth(addr string, creds credentials.TransportCredentials) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err == nil && res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		err = errors.New(res.GetStatus().String())
	}
	return err
}

func httpsGet(addr string, tc *tls.Config) (string, error) {
	// A transport like http.DefaultTransport offers h2 and http/1.1, as
	// browsers and curl do: it must get HTTP/1.1, the HTTP API.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// The transport adds h2 and http/1.1 to the config's NextProtos: a
	// gRPC client given the same config would then get HTTP/1.1.
	tr.TLSClientConfig = tc.Clone()
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr + "/x")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestPortMuxWithTLSRoutesByALPN(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	addr, peers, _ := startTLSMux(t, Config{TLSCert: files.ServerCert, TLSKey: files.ServerKey})
	tc := files.ClientConfig(t)

	got, err := httpsGet(addr, tc)
	if err != nil || got != "tls HTTP/1.1 GET" {
		t.Fatalf("HTTPS: %q %v, want the HTTP server over TLS (r.TLS set)", got, err)
	}
	if err := grpcHealth(addr, credentials.NewTLS(tc)); err != nil {
		t.Fatalf("gRPC over TLS: %v", err)
	}
	ai := <-peers
	if ai == nil || ai.AuthType() != "tls" {
		t.Fatalf("gRPC peer AuthInfo %#v, want TLS", ai)
	}
	if err := credentials.CheckSecurityLevel(ai, credentials.PrivacyAndIntegrity); err != nil {
		t.Errorf("gRPC peer security level: %v", err)
	}

	// Plaintext clients are turned away; the mux goes on serving.
	if err := grpcHealth(addr, insecure.NewCredentials()); err == nil {
		t.Error("plaintext gRPC to the TLS port succeeded")
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	b, _ := io.ReadAll(c)
	c.Close()
	if !strings.HasPrefix(string(b), "HTTP/1.0 400") || !strings.Contains(string(b), "HTTPS") {
		t.Errorf("plaintext HTTP to the TLS port got %q, want a 400 that says HTTPS", b)
	}
	if got, err := httpsGet(addr, tc); err != nil || got != "tls HTTP/1.1 GET" {
		t.Fatalf("HTTPS after plaintext clients: %q %v", got, err)
	}
	if err := grpcHealth(addr, credentials.NewTLS(tc)); err != nil {
		t.Fatalf("gRPC over TLS after plaintext clients: %v", err)
	}
}

func TestPortMuxClosesAConnectionThatDoesNotHandshake(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := serverTLS(Config{TLSCert: files.ServerCert, TLSKey: files.ServerKey})
	if err != nil {
		t.Fatal(err)
	}
	mux := newPortMux(ln)
	mux.tls = tc
	mux.sniffWait = 100 * time.Millisecond
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go hs.Serve(mux.http)
	go mux.serve()
	t.Cleanup(func() { hs.Close(); mux.close() })

	// A silent client holds up no one, and is closed after the deadline.
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if _, err := httpsGet(ln.Addr().String(), files.ClientConfig(t)); err != nil {
		t.Fatalf("HTTPS while a client is silent: %v", err)
	}
	silent.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent client: read %d, %v; want EOF (closed by the mux)", n, err)
	}
}

func TestPortMuxMutualTLS(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	addr, peers, _ := startTLSMux(t, Config{TLSCert: files.ServerCert, TLSKey: files.ServerKey, TLSClientCA: files.CAFile})
	withCert := files.ClientConfig(t)
	noCert := withCert.Clone()
	noCert.Certificates = nil

	if _, err := httpsGet(addr, noCert); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("HTTPS without a client certificate: %v, want refused (certificate required)", err)
	}
	if err := grpcHealth(addr, credentials.NewTLS(noCert)); err == nil {
		t.Error("gRPC without a client certificate succeeded")
	}
	if got, err := httpsGet(addr, withCert); err != nil || got != "tls HTTP/1.1 GET" {
		t.Fatalf("HTTPS with the client certificate: %q %v", got, err)
	}
	if err := grpcHealth(addr, credentials.NewTLS(withCert)); err != nil {
		t.Fatalf("gRPC with the client certificate: %v", err)
	}
	ai := (<-peers).(credentials.TLSInfo)
	if pc := ai.State.PeerCertificates; len(pc) == 0 || pc[0].Subject.CommonName != "client" {
		t.Errorf("gRPC peer certificates %v, want the client's", pc)
	}
}

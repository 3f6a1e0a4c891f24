// Package transporttest holds the checks every transport must pass, for
// the tests of each transport.
package transporttest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"regexp"
	"testing"

	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/micro/transport"
)

// serverConfig serves f's server certificate; with mutual set it requires a client
// certificate signed by f's CA.
func serverConfig(t *testing.T, f *testserver.TLSFiles, mutual bool) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if mutual {
		ca, err := os.ReadFile(f.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		cfg.ClientCAs.AppendCertsFromPEM(ca)
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}

// EchoServer listens on tr and echoes every message until the test ends. The error that ends
// a connection (a Recv or Send error) is reported on errs, which holds up to 16 of them; more
// are dropped.
func EchoServer(t *testing.T, tr transport.Transport) (addr string, errs <-chan error) {
	t.Helper()
	l, err := tr.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Accept(func(s transport.Socket) {
			defer s.Close()
			for {
				var m transport.Message
				err := s.Recv(&m)
				if err == nil {
					err = s.Send(&m)
				}
				if err != nil {
					select {
					case ch <- err:
					default:
					}
					return
				}
			}
		})
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr(), ch
}

// roundTrip dials addr and echoes one message.
func roundTrip(tr transport.Transport, addr string) error {
	s, err := tr.Dial(context.Background(), addr)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Send(&transport.Message{Header: map[string]string{"k": "v"}, Body: []byte("over tls")}); err != nil {
		return err
	}
	var m transport.Message
	if err := s.Recv(&m); err != nil {
		return err
	}
	if string(m.Body) != "over tls" || m.Header["k"] != "v" {
		return errors.New("bad echo: " + string(m.Body))
	}
	return nil
}

// orReset: with TLS 1.3 the server refuses a client certificate after the client's side of
// the handshake is done, so the client may see the connection reset before it reads the alert.
const orReset = "|connection reset by peer|broken pipe"

// TLS checks a transport's TLS and mutual TLS: newTransport makes the transport
// under test (closed by the caller's cleanup) with the given options;
// plaintextRefusal is a regexp of the error a plaintext client gets from a
// TLS server. It also checks one config serving and dialling (transport.TLS).
func TLS(t *testing.T, newTransport func(t *testing.T, opts ...transport.Option) transport.Transport, plaintextRefusal string) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	other := testserver.NewTLSFiles(t, t.TempDir()) // another CA
	noCert := files.ClientConfig(t)
	noCert.Certificates = nil
	for _, tc := range []struct {
		name   string
		mutual bool
		client *tls.Config // nil: plaintext
		want   string      // "" for success, else a regexp the error matches
	}{
		{"tls", false, noCert, ""},
		{"mutual tls", true, files.ClientConfig(t), ""},
		{"wrong CA", false, other.ClientConfig(t), "certificate signed by unknown authority"},
		{"no client certificate", true, noCert, "certificate required" + orReset},
		{"client certificate of another CA", true, func() *tls.Config {
			c := other.ClientConfig(t)
			c.RootCAs = files.ClientConfig(t).RootCAs
			return c
		}(), "unknown certificate authority" + orReset},
		{"plaintext client", false, nil, plaintextRefusal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTransport(t, transport.ServerTLS(serverConfig(t, files, tc.mutual)))
			addr, _ := EchoServer(t, srv)
			var opts []transport.Option
			if tc.client != nil {
				opts = append(opts, transport.ClientTLS(tc.client))
			}
			err := roundTrip(newTransport(t, opts...), addr)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !regexp.MustCompile(tc.want).MatchString(err.Error())):
				t.Fatalf("err = %v, want one matching %q", err, tc.want)
			}
		})
	}

	// transport.TLS gives a service one config to serve and call with.
	t.Run("one config both sides", func(t *testing.T) {
		files := testserver.NewTLSFiles(t, t.TempDir())
		cfg := serverConfig(t, files, true)
		cfg.RootCAs = cfg.ClientCAs
		tr := newTransport(t, transport.TLS(cfg))
		addr, _ := EchoServer(t, tr)
		if err := roundTrip(tr, addr); err != nil {
			t.Fatal(err)
		}
	})
}

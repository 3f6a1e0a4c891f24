package apiclient_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/apiclient"
	"github.com/configd/configd/sdk/go/config"
)

// newTLSServer serves configd's HTTP API over TLS with the server
// certificate of files, requiring a client certificate when mutual.
func newTLSServer(t *testing.T, files *testserver.TLSFiles, mutual bool) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(configdtest.NewEnv(t).Handler())
	cert, err := tls.LoadX509KeyPair(files.ServerCert, files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if mutual {
		srv.TLS.ClientCAs = files.ClientConfig(t).RootCAs
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestWithTLSTalksHTTPS(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	addr := newTLSServer(t, files, true)
	ctx := context.Background()

	withCert, err := config.LoadTLS(files.CAFile, files.ClientCert, files.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	// host:port means https with WithTLS.
	c, err := apiclient.New(addr, apiclient.WithTLS(withCert))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, "app/a", []byte("1")); err != nil {
		t.Fatalf("put over mutual TLS: %v", err)
	}

	noCert, err := config.LoadTLS(files.CAFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c, _ = apiclient.New("https://"+addr, apiclient.WithTLS(noCert))
	_, err = c.Get(ctx, "app/a")
	if !errors.Is(err, apiclient.ErrTLS) || !errors.Is(err, apiclient.ErrUnreachable) || !strings.Contains(err.Error(), "TLS with configd at") {
		t.Errorf("get without a client certificate: %v, want ErrTLS", err)
	}

	other := testserver.NewTLSFiles(t, t.TempDir())
	wrong, err := config.LoadTLS(other.CAFile, files.ClientCert, files.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ = apiclient.New(addr, apiclient.WithTLS(wrong))
	_, err = c.Get(ctx, "app/a")
	if !errors.Is(err, apiclient.ErrTLS) || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("get with the wrong CA: %v, want ErrTLS saying unknown authority", err)
	}

	// Without WithTLS, an https:// address trusts only the system's CAs.
	c, _ = apiclient.New("https://" + addr)
	if _, err = c.Get(ctx, "app/a"); !errors.Is(err, apiclient.ErrTLS) {
		t.Errorf("get without WithTLS: %v, want ErrTLS", err)
	}
}

func TestWithTLSRefusesPlainHTTPAndAnHTTPClient(t *testing.T) {
	tc := &tls.Config{}
	if _, err := apiclient.New("http://127.0.0.1:7700", apiclient.WithTLS(tc)); err == nil || !strings.Contains(err.Error(), "https://") {
		t.Errorf("http:// with WithTLS: %v", err)
	}
	if _, err := apiclient.New("127.0.0.1:7700", apiclient.WithTLS(tc), apiclient.WithHTTPClient(http.DefaultClient)); err == nil {
		t.Error("WithTLS with WithHTTPClient accepted")
	}
}

func TestLoadTLSNamesTheBadFile(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		ca, cert, key string
		want          []string
	}{
		{name: "missing CA", ca: "/no/ca.pem", want: []string{"CA file /no/ca.pem", "no such file"}},
		{name: "CA not PEM", ca: notPEM, want: []string{notPEM, "no PEM certificate"}},
		{name: "missing cert", cert: "/no/cert.pem", key: files.ClientKey, want: []string{"client certificate file /no/cert.pem"}},
		{name: "missing key", cert: files.ClientCert, key: "/no/key.pem", want: []string{"client key file /no/key.pem"}},
		{name: "cert without key", cert: files.ClientCert, want: []string{files.ClientCert, "without its key"}},
		{name: "key without cert", key: files.ClientKey, want: []string{files.ClientKey, "without its certificate"}},
		{name: "mismatched pair", cert: files.ClientCert, key: files.ServerKey, want: []string{files.ClientCert, files.ServerKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.LoadTLS(tc.ca, tc.cert, tc.key)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	cfg, err := config.LoadTLS("", "", "")
	if err != nil || cfg.RootCAs != nil || len(cfg.Certificates) != 0 {
		t.Errorf("LoadTLS of nothing: %+v %v, want the system's roots and no certificate", cfg, err)
	}
}

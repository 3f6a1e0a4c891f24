package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/apiclient"
	"github.com/configd/configd/sdk/go/config"
	"github.com/configd/configd/server"
)

// startTLSRun runs configd with TLS from files (mutual when mutual) and
// returns its address.
func startTLSRun(t *testing.T, files *testserver.TLSFiles, mutual bool) (*configdtest.Daemon, string) {
	t.Helper()
	cfg := testConfig(t)
	cfg.TLSCert, cfg.TLSKey = files.ServerCert, files.ServerKey
	if mutual {
		cfg.TLSClientCA = files.CAFile
	}
	r := configdtest.Run(t, cfg)
	return r, r.Addr
}

func grpcGet(addr string, creds credentials.TransportCredentials, key string) (string, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := configdpb.NewConfigClient(conn).Get(ctx, &configdpb.GetRequest{Key: key})
	if err != nil {
		return "", err
	}
	return string(res.GetKv().GetValue()), nil
}

// putGet writes key over HTTPS with c and reads it back.
func putGet(c *apiclient.Client, key, value string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, key, []byte(value)); err != nil {
		return err
	}
	kv, err := c.Get(ctx, key)
	if err != nil {
		return err
	}
	if string(kv.Value) != value {
		return errors.New("read back " + string(kv.Value))
	}
	return nil
}

func tlsClient(t *testing.T, addr string, tc *tls.Config) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(addr, apiclient.WithTLS(tc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRunServesHTTPSAndGRPCOverTLS(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	r, addr := startTLSRun(t, files, false)
	if !strings.Contains(r.Log.String(), "tls=on") {
		t.Errorf("start log does not say tls=on:\n%s", r.Log)
	}
	tc, err := config.LoadTLS(files.CAFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := putGet(tlsClient(t, addr, tc), "app/a", "1"); err != nil {
		t.Fatalf("HTTPS put and get: %v", err)
	}
	if v, err := grpcGet(addr, credentials.NewTLS(tc), "app/a"); err != nil || v != "1" {
		t.Fatalf("gRPC Get over TLS: %q %v", v, err)
	}

	// Plaintext clients fail; configd goes on serving.
	if _, err := grpcGet(addr, insecure.NewCredentials(), "app/a"); err == nil {
		t.Error("plaintext gRPC to the TLS port succeeded")
	}
	resp, err := http.Get("http://" + addr + "/v1/kv/app/a")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(b, []byte("HTTPS")) {
			t.Errorf("plaintext HTTP to the TLS port: %d %q, want 400 saying HTTPS", resp.StatusCode, b)
		}
	}
	if err := putGet(tlsClient(t, addr, tc), "app/a", "2"); err != nil {
		t.Fatalf("HTTPS after plaintext clients: %v", err)
	}

	// A client that trusts another CA refuses configd's certificate.
	other := testserver.NewTLSFiles(t, t.TempDir())
	wrong, err := config.LoadTLS(other.CAFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	err = putGet(tlsClient(t, addr, wrong), "app/a", "3")
	if !errors.Is(err, apiclient.ErrTLS) || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("HTTPS with the wrong CA: %v, want ErrTLS saying unknown authority", err)
	}
	if _, err := grpcGet(addr, credentials.NewTLS(wrong), "app/a"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("gRPC with the wrong CA: %v, want a certificate error", err)
	}
	r.Stop()
	if err := r.Err(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunRequiresClientCertificatesWithAClientCA(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	_, addr := startTLSRun(t, files, true)
	noCert, err := config.LoadTLS(files.CAFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	withCert, err := config.LoadTLS(files.CAFile, files.ClientCert, files.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	err = putGet(tlsClient(t, addr, noCert), "app/a", "1")
	if !errors.Is(err, apiclient.ErrTLS) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("HTTPS without a client certificate: %v, want ErrTLS about the certificate", err)
	}
	if _, err := grpcGet(addr, credentials.NewTLS(noCert), "app/a"); err == nil {
		t.Error("gRPC without a client certificate succeeded")
	}
	if err := putGet(tlsClient(t, addr, withCert), "app/a", "1"); err != nil {
		t.Fatalf("HTTPS with the client certificate: %v", err)
	}
	if v, err := grpcGet(addr, credentials.NewTLS(withCert), "app/a"); err != nil || v != "1" {
		t.Fatalf("gRPC with the client certificate: %q %v", v, err)
	}
}

var noTLSWarningRE = regexp.MustCompile(`level=WARN msg="TLS is off on 0\.0\.0\.0:0`)

func TestRunWarnsWithoutTLSOnANonLoopbackAddress(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTPAddr = "0.0.0.0:0"
	r := configdtest.Run(t, cfg)
	r.WaitLog(noTLSWarningRE)

	// With TLS, no warning: it would come before "listening".
	files := testserver.NewTLSFiles(t, t.TempDir())
	cfg = testConfig(t)
	cfg.HTTPAddr = "0.0.0.0:0"
	cfg.TLSCert, cfg.TLSKey = files.ServerCert, files.ServerKey
	r = configdtest.Run(t, cfg)
	if strings.Contains(r.Log.String(), "TLS is off") {
		t.Errorf("TLS warning with TLS on:\n%s", r.Log)
	}
}

func TestRunRefusesBadTLSFiles(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	for _, tc := range []struct {
		name          string
		cert, key, ca string
		want          []string
	}{
		{name: "missing cert", cert: "/no/such/cert.pem", key: files.ServerKey, want: []string{"/no/such/cert.pem", "no such file"}},
		{name: "missing key", cert: files.ServerCert, key: "/no/such/key.pem", want: []string{"/no/such/key.pem"}},
		{name: "key of another cert", cert: files.ServerCert, key: files.ClientKey, want: []string{files.ServerCert, files.ClientKey}},
		{name: "CA not PEM", cert: files.ServerCert, key: files.ServerKey, ca: files.ServerKey, want: []string{files.ServerKey, "no PEM certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA = tc.cert, tc.key, tc.ca
			err := server.Run(context.Background(), cfg, nil)
			if err == nil {
				t.Fatal("Run accepted bad TLS files")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

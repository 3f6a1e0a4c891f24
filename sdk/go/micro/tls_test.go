package micro_test

import (
	"context"
	"strings"
	"testing"

	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/micro"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/status"
	tmem "github.com/configd/configd/sdk/go/micro/transport/memory"
)

// The --transport-tls-* flags and MICRO_TRANSPORT_TLS_* variables give the transport mutual
// TLS: a server started with flags answers a client configured by the environment, and refuses
// clients without a certificate or without TLS.
func TestTransportTLSFlagsEndToEnd(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	for _, tr := range []string{"tcp", "grpc"} {
		t.Run(tr, func(t *testing.T) {
			reg := memory.New()
			srv, _ := running(t, micro.Name("greeter"), micro.Registry(reg), micro.GracePeriod(0), micro.Args(
				"--transport", tr, "--transport-tls-ca", files.CAFile,
				"--transport-tls-cert", files.ServerCert, "--transport-tls-key", files.ServerKey))
			if got := srv.Options().Transport.String(); got != tr {
				t.Fatalf("transport %s, want %s", got, tr)
			}
			call := func(vars map[string]string) error {
				vars["MICRO_TRANSPORT"] = tr
				cli := micro.NewService(quiet, micro.Args(), micro.Registry(reg), env(vars))
				t.Cleanup(func() { cli.Close() })
				if err := cli.Init(); err != nil {
					return err
				}
				var rsp Rsp
				err := cli.Client().Call(context.Background(), "greeter", "Greeter.Hello", &Req{Name: "tls"}, &rsp)
				if err == nil && rsp.Msg != "Hello tls" {
					t.Fatalf("got %+v", rsp)
				}
				return err
			}
			if err := call(map[string]string{"MICRO_TRANSPORT_TLS_CA": files.CAFile,
				"MICRO_TRANSPORT_TLS_CERT": files.ClientCert, "MICRO_TRANSPORT_TLS_KEY": files.ClientKey}); err != nil {
				t.Fatalf("mutual TLS: %v", err)
			}
			if err := call(map[string]string{"MICRO_TRANSPORT_TLS_CA": files.CAFile}); status.CodeOf(err) != status.Unavailable {
				t.Fatalf("without a client certificate: %v, want Unavailable", err)
			}
			if err := call(map[string]string{}); status.CodeOf(err) != status.Unavailable {
				t.Fatalf("without TLS: %v, want Unavailable", err)
			}
		})
	}
}

func TestTransportTLSSettingsFail(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	for name, kv := range map[string]map[string]string{
		"cert without key": {"MICRO_TRANSPORT_TLS_CERT": files.ServerCert},
		"missing CA file":  {"MICRO_TRANSPORT_TLS_CA": files.CAFile + ".nope"},
		"CA not PEM":       {"MICRO_TRANSPORT_TLS_CA": files.ServerKey + "x"},
		"key of another":   {"MICRO_TRANSPORT_TLS_CERT": files.ServerCert, "MICRO_TRANSPORT_TLS_KEY": files.ClientKey},
	} {
		t.Run(name, func(t *testing.T) {
			svc := micro.NewService(micro.Name("svc"), quiet, micro.Args(), env(kv))
			if err := svc.Init(); err == nil || !strings.Contains(err.Error(), "micro:") {
				t.Fatalf("Init: %v, want an error", err)
			}
		})
	}
	cfg, err := micro.FromEnv(func(k string) (string, bool) {
		v, ok := map[string]string{"MICRO_TRANSPORT_TLS_CA": "ca.pem", "MICRO_TRANSPORT_TLS_CERT": "c.pem", "MICRO_TRANSPORT_TLS_KEY": "k.pem"}[k]
		return v, ok
	})
	if err != nil || cfg.TransportTLSCA != "ca.pem" || cfg.TransportTLSCert != "c.pem" || cfg.TransportTLSKey != "k.pem" {
		t.Fatalf("FromEnv = %+v, %v", cfg, err)
	}
	// A transport given in code cannot take TLS from flags.
	svc := micro.NewService(micro.Name("svc"), quiet, env(nil), micro.Transport(tmem.New()), micro.Args("--transport-tls-ca", files.CAFile))
	if err := svc.Init(); err == nil || !strings.Contains(err.Error(), "given in code") {
		t.Fatalf("TLS flags over a transport from code: %v", err)
	}
}

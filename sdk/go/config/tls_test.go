package config_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/apiclient"
	"github.com/configd/configd/sdk/go/config"
)

// Against configd with mutual TLS, both transports watch with WithTLS, and
// a client without the right CA or certificate is refused clearly.
func TestWatchOverMutualTLS(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	addr := configdtest.Run(t, configdtest.TLS(files.ServerCert, files.ServerKey, files.CAFile)).Addr
	cfg, err := config.LoadTLS(files.CAFile, files.ClientCert, files.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	writer, err := apiclient.New("https://"+addr, apiclient.WithTLS(cfg))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts []config.Option
		// refusal is in the error of New without a client certificate:
		// gRPC reports only the broken connection.
		refusal string
	}{
		{"http stream", nil, "certificate required"},
		{"grpc", []config.Option{config.WithGRPC()}, "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := writer.Put(ctx, "app/a", []byte("1")); err != nil {
				t.Fatal(err)
			}
			c, err := config.New(ctx, append([]config.Option{quiet, config.WithAddress(addr), config.WithTLS(cfg), config.WithPrefix("app")}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			w, err := c.Watch("a")
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			if got := c.Get("a").String(""); got != "1" {
				t.Fatalf("a = %q, want 1", got)
			}
			if _, err := writer.Put(ctx, "app/a", []byte("2")); err != nil {
				t.Fatal(err)
			}
			v, err := w.Next()
			if err != nil || v.String("") != "2" {
				t.Fatalf("Next: %q, %v; want 2", v.String(""), err)
			}

			noCert, err := config.LoadTLS(files.CAFile, "", "")
			if err != nil {
				t.Fatal(err)
			}
			_, err = config.New(ctx, append([]config.Option{quiet, config.WithAddress(addr), config.WithTLS(noCert), config.WithTimeout(time.Second)}, tc.opts...)...)
			if !errors.Is(err, config.ErrUnavailable) || !strings.Contains(err.Error(), tc.refusal) {
				t.Fatalf("without a client certificate: %v, want ErrUnavailable saying %q", err, tc.refusal)
			}
		})
	}
}

// Package daemontest runs the whole configd daemon (server.Run: the port
// mux, HTTP, gRPC, TLS) inside a test process, for tests of its clients.
package daemontest

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/configd/configd/internal/proctest"
	"github.com/configd/configd/server"
)

// Start runs configd with cfg (its DataDir defaulting to a temporary
// directory and its address to a free loopback port) until the test ends,
// and returns its host:port once it listens.
func Start(t testing.TB, cfg server.Config) string {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(t.TempDir(), "data")
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := proctest.NewLog()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := server.Run(ctx, cfg, slog.New(slog.NewTextHandler(log, nil))); err != nil {
			t.Errorf("server.Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	m, err := log.Wait(proctest.ListeningRE, done)
	if err != nil {
		t.Fatal(err)
	}
	return m[1]
}

// TLS returns the defaults with TLS from the given files, requiring
// client certificates signed by clientCA unless it is empty.
func TLS(cert, key, clientCA string) server.Config {
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr = "", "127.0.0.1:0" // Start picks a temporary one
	cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA = cert, key, clientCA
	return cfg
}

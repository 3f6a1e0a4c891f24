// Package daemontest runs the whole configd daemon (server.Run: the port
// mux, HTTP, gRPC, TLS) inside a test process, for tests of its clients.
package daemontest

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/configd/configd/internal/proctest"
	"github.com/configd/configd/server"
)

// Daemon is a configd run by Run.
type Daemon struct {
	// Addr is the host:port it listens on.
	Addr string
	// Log is what it logs (text format).
	Log  *proctest.Log
	done chan struct{}
	stop func()
}

// Done is closed when the daemon has returned.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Stop shuts the daemon down and waits for it; the test's cleanup does it
// too. It may be called more than once.
func (d *Daemon) Stop() { d.stop() }

// Run runs configd with cfg until the test ends or Stop, and returns once
// it listens. An empty DataDir, or the default ./data, becomes a temporary
// directory (never the source tree); an empty HTTPAddr a free loopback
// port.
func Run(t testing.TB, cfg server.Config) *Daemon {
	t.Helper()
	if cfg.DataDir == "" || cfg.DataDir == server.DefaultConfig().DataDir {
		cfg.DataDir = filepath.Join(t.TempDir(), "data")
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Daemon{Log: proctest.NewLog(), done: make(chan struct{})}
	go func() {
		defer close(d.done)
		if err := server.Run(ctx, cfg, slog.New(slog.NewTextHandler(d.Log, nil))); err != nil {
			t.Errorf("server.Run: %v", err)
		}
	}()
	var once sync.Once
	d.stop = func() { once.Do(func() { cancel(); <-d.done }) }
	t.Cleanup(d.stop)
	m, err := d.Log.Wait(proctest.ListeningRE, d.done)
	if err != nil {
		t.Fatal(err)
	}
	d.Addr = m[1]
	return d
}

// Start is Run for tests that need only the address.
func Start(t testing.TB, cfg server.Config) string {
	t.Helper()
	return Run(t, cfg).Addr
}

// TLS returns the defaults with TLS from the given files, requiring
// client certificates signed by clientCA unless it is empty.
func TLS(cert, key, clientCA string) server.Config {
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr = "", "127.0.0.1:0" // Run picks a temporary one
	cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA = cert, key, clientCA
	return cfg
}

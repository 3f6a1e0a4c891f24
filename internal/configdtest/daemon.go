package configdtest

import (
	"context"
	"log/slog"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/configd/configd/server"
)

// Daemon is the whole configd daemon (server.Run: the port mux, HTTP,
// gRPC, TLS, the sources, the registry) running in the test process.
type Daemon struct {
	t testing.TB
	// Addr is the host:port it listens on, once it listens.
	Addr string
	// Log is what it logs (text format).
	Log  *Log
	done chan struct{}
	err  error // Run's, once done is closed
	stop func()
}

// DaemonOption configures a Daemon.
type DaemonOption func(*daemonOptions)

type daemonOptions struct{ level slog.Level }

// LogLevel sets the level of the daemon's log (default info).
func LogLevel(l slog.Level) DaemonOption { return func(o *daemonOptions) { o.level = l } }

// Run runs configd with cfg until the test ends or Stop, and returns once
// it listens. An empty DataDir, or the default ./data, becomes a temporary
// directory (never the source tree); an empty HTTPAddr a free loopback
// port. An error from server.Run fails the test.
func Run(t testing.TB, cfg server.Config, opts ...DaemonOption) *Daemon {
	t.Helper()
	d := Launch(t, cfg, opts...)
	m, err := d.Log.Wait(ListeningRE, d.done)
	if err != nil {
		t.Fatal(err)
	}
	d.Addr = m[1]
	return d
}

// Launch is Run without waiting for configd to listen.
func Launch(t testing.TB, cfg server.Config, opts ...DaemonOption) *Daemon {
	t.Helper()
	var o daemonOptions
	for _, opt := range opts {
		opt(&o)
	}
	if cfg.DataDir == "" || cfg.DataDir == server.DefaultConfig().DataDir {
		cfg.DataDir = filepath.Join(t.TempDir(), "data")
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Daemon{t: t, Log: NewLog(), done: make(chan struct{})}
	logger := slog.New(slog.NewTextHandler(d.Log, &slog.HandlerOptions{Level: o.level}))
	go func() {
		defer close(d.done)
		if d.err = server.Run(ctx, cfg, logger); d.err != nil {
			t.Errorf("server.Run: %v", d.err)
		}
	}()
	var once sync.Once
	d.stop = func() { once.Do(func() { cancel(); <-d.done }) }
	t.Cleanup(d.stop)
	return d
}

// Done is closed when the daemon has returned.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Stop shuts the daemon down and waits for it, at most WaitLimit; the
// test's cleanup does it too. It may be called more than once.
func (d *Daemon) Stop() {
	d.t.Helper()
	go d.stop()
	select {
	case <-d.done:
	case <-time.After(WaitLimit):
		d.t.Fatalf("server.Run did not return within %s of its context ending", WaitLimit)
	}
}

// Err is what server.Run returned, once Done is closed (an error has
// failed the test already).
func (d *Daemon) Err() error {
	<-d.done
	return d.err
}

// WaitLog waits until the daemon's log matches re and returns the match;
// it fails the test if the daemon returns first or WaitLimit passes.
func (d *Daemon) WaitLog(re *regexp.Regexp) []string {
	d.t.Helper()
	m, err := d.Log.Wait(re, d.done)
	if err != nil {
		d.t.Fatal(err)
	}
	return m
}

// TLS returns the defaults with TLS from the given files, requiring
// client certificates signed by clientCA unless it is empty.
func TLS(cert, key, clientCA string) server.Config {
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr = "", "127.0.0.1:0" // Run picks a temporary one
	cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA = cert, key, clientCA
	return cfg
}

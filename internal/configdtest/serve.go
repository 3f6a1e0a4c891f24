package configdtest

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/configd/configd/server"
	"github.com/configd/configd/server/core"
)

// Serving is configd's APIs (server.APIs: the HTTP API and gRPC on one
// port, as the daemon serves them) over a Core, on a loopback port that
// can be stopped, cutting every connection (watch streams included), and
// served again at the same address.
type Serving struct {
	t testing.TB
	// Addr is the host:port it serves on.
	Addr string

	mu   sync.Mutex
	apis *server.APIs
	lis  *trackingListener
}

// Serve serves the APIs over c with cfg (its Logger, when nil, logs
// nothing) on a free loopback port until Stop or the end of the test.
func Serve(t testing.TB, c *core.Core, cfg server.APIConfig) *Serving {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Serving{t: t, Addr: lis.Addr().String()}
	s.serve(lis, c, cfg)
	t.Cleanup(s.Stop)
	return s
}

func (s *Serving) serve(lis net.Listener, c *core.Core, cfg server.APIConfig) {
	if cfg.Logger == nil {
		cfg.Logger = Discard()
	}
	apis := server.NewAPIs(c, cfg)
	tl := &trackingListener{Listener: lis, conns: map[net.Conn]struct{}{}}
	apis.Serve(tl)
	s.mu.Lock()
	s.apis, s.lis = apis, tl
	s.mu.Unlock()
}

// Stop stops serving: the port is closed and every connection cut. It may
// be called more than once.
func (s *Serving) Stop() {
	s.mu.Lock()
	apis, lis := s.apis, s.lis
	s.apis, s.lis = nil, nil
	s.mu.Unlock()
	if apis != nil {
		apis.Close()
		lis.closeAll()
	}
}

// Restart serves the APIs over c with cfg again, at the same address.
func (s *Serving) Restart(c *core.Core, cfg server.APIConfig) {
	s.t.Helper()
	var lis net.Listener
	var err error
	// The port was just closed; it is free again at once on Linux, but be
	// patient with a slow kernel.
	deadline := time.Now().Add(5 * time.Second)
	for {
		lis, err = net.Listen("tcp", s.Addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.serve(lis, c, cfg)
}

// trackingListener remembers the connections it accepted, to cut them:
// the watch streams have left the HTTP server, which no longer tracks
// them.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns[c] = struct{}{}
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
}

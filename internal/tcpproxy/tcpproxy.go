// Package tcpproxy forwards loopback TCP connections to a server and can
// cut them, to disconnect a client from a server (or a configd replica
// from etcd) without either knowing in advance, and heal the link again:
// the network faults of the tests and benchmarks.
package tcpproxy

import (
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards loopback TCP connections to a server. While cut it
// accepts and closes at once, so the client keeps retrying; Reconnected
// tells when the first connection after Restore came.
type Proxy struct {
	ln     net.Listener
	target string

	mu          sync.Mutex
	conns       map[net.Conn]struct{}
	cut         bool
	restoredAt  time.Time
	reconnected time.Time
}

// New listens on a free loopback port and forwards what comes to target.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		if !p.restoredAt.IsZero() && p.reconnected.IsZero() {
			p.reconnected = time.Now()
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		go p.forward(c)
	}
}

func (p *Proxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[s] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(s, c); done <- struct{}{} }()
	go func() { io.Copy(c, s); done <- struct{}{} }()
	<-done
	c.Close()
	s.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// Cut closes every connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.restoredAt = time.Now()
	p.reconnected = time.Time{}
}

// RestoredAt is when Restore was last called (zero if never).
func (p *Proxy) RestoredAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restoredAt
}

// Reconnected is when the first connection after Restore was accepted
// (zero if none yet).
func (p *Proxy) Reconnected() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reconnected
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
}

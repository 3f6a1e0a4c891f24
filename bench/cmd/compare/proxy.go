package main

import (
	"io"
	"net"
	"sync"
	"time"
)

// proxy forwards loopback TCP connections to a server and can cut them, to
// disconnect a client without its knowing in advance (the catch-up
// workload). While cut it accepts and closes at once, so the client keeps
// retrying; Reconnected tells when the first connection after Restore came.
type proxy struct {
	ln     net.Listener
	target string

	mu          sync.Mutex
	conns       map[net.Conn]struct{}
	cut         bool
	restoredAt  time.Time
	reconnected time.Time
}

func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
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

func (p *proxy) forward(c net.Conn) {
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
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore lets connections through again.
func (p *proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.restoredAt = time.Now()
	p.reconnected = time.Time{}
}

// Reconnected is when the first connection after Restore was accepted
// (zero if none yet).
func (p *proxy) Reconnected() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reconnected
}

func (p *proxy) Close() {
	p.ln.Close()
	p.Cut()
}

package transport

import (
	"context"
	"sync"
)

// Pool keeps idle client sockets per address, so calls reuse connections. A socket is used by one
// call at a time: Get it, do one request and response, Put it back. Over a Multiplexer the
// sockets are shared ones (DialShared), and the pool keeps at least MinSharedIdle of them.
type Pool struct {
	tr      Transport
	mux     Multiplexer
	maxIdle int

	mu     sync.Mutex
	idle   map[string][]Socket
	closed bool
}

// NewPool returns a pool over tr keeping at most maxIdle idle sockets per address (2 if <= 0).
func NewPool(tr Transport, maxIdle int) *Pool {
	if maxIdle <= 0 {
		maxIdle = 2
	}
	mux, _ := tr.(Multiplexer)
	if mux != nil {
		maxIdle = max(maxIdle, MinSharedIdle)
	}
	return &Pool{tr: tr, mux: mux, maxIdle: maxIdle, idle: map[string][]Socket{}}
}

// MinSharedIdle is the fewest idle shared sockets a Pool keeps per address: they cost no
// connection of their own, and reopening them for every call under load costs more.
const MinSharedIdle = 256

// GetOwn is Get for a socket kept long or streaming many frames: over a Multiplexer it dials
// a connection of its own (Transport.Dial), so the socket cannot hold up shared ones.
func (p *Pool) GetOwn(ctx context.Context, addr string) (s Socket, reused bool, err error) {
	if p.mux == nil {
		return p.Get(ctx, addr)
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, false, ErrClosed
	}
	s, err = p.tr.Dial(ctx, addr)
	return s, false, err
}

// Get returns an idle socket to addr, or dials a new one. reused tells which: a reused socket
// may have been closed by the peer while idle.
func (p *Pool) Get(ctx context.Context, addr string) (s Socket, reused bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, ErrClosed
	}
	for l := p.idle[addr]; len(l) > 0; l = p.idle[addr] {
		s = l[len(l)-1]
		l[len(l)-1] = nil
		p.idle[addr] = l[:len(l)-1]
		if c, ok := s.(interface{ Closed() bool }); ok && c.Closed() {
			s.Close() // ended while idle (its connection died): skip it
			continue
		}
		p.mu.Unlock()
		return s, true, nil
	}
	p.mu.Unlock()
	if p.mux != nil {
		s, err = p.mux.DialShared(ctx, addr)
	} else {
		s, err = p.tr.Dial(ctx, addr)
	}
	return s, false, err
}

// Put returns s to the pool. A socket whose last use failed (healthy false) is closed instead,
// as is one beyond the idle limit.
func (p *Pool) Put(addr string, s Socket, healthy bool) {
	p.mu.Lock()
	if healthy && !p.closed && len(p.idle[addr]) < p.maxIdle {
		p.idle[addr] = append(p.idle[addr], s)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	s.Close()
}

// Close closes every idle socket; sockets out on loan are closed when Put back.
func (p *Pool) Close() error {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = map[string][]Socket{}, true
	p.mu.Unlock()
	for _, l := range idle {
		for _, s := range l {
			s.Close()
		}
	}
	return nil
}

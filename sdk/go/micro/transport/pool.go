package transport

import (
	"context"
	"sync"
)

// Pool keeps idle client sockets per address, so calls reuse connections. A socket is used by one
// call at a time: Get it, do one request and response, Put it back.
type Pool struct {
	tr      Transport
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
	return &Pool{tr: tr, maxIdle: maxIdle, idle: map[string][]Socket{}}
}

// Get returns an idle socket to addr, or dials a new one. reused tells which: a reused socket
// may have been closed by the peer while idle.
func (p *Pool) Get(ctx context.Context, addr string) (s Socket, reused bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, ErrClosed
	}
	if l := p.idle[addr]; len(l) > 0 {
		s = l[len(l)-1]
		p.idle[addr] = l[:len(l)-1]
		p.mu.Unlock()
		return s, true, nil
	}
	p.mu.Unlock()
	s, err = p.tr.Dial(ctx, addr)
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

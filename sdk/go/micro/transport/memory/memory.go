// Package memory is an in-process transport: listeners live in the Transport value (not in a
// package global), so a server and a client share one Transport to talk.
package memory

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/configd/configd/plugin"
	"github.com/configd/configd/sdk/go/micro/transport"
)

// Transport is the memory transport.
type Transport struct {
	opts transport.Options

	mu        sync.Mutex
	listeners map[string]*listener
	nextPort  int
}

var _ transport.Transport = (*Transport)(nil)

// NewTransport returns a memory transport.
func NewTransport(opts ...transport.Option) transport.Transport { return New(opts...) }

// Config is the memory transport's own config: it has no fields beyond transport.Options. It is
// the plugin module micro.transport.memory.
type Config struct{}

var _ transport.Module = Config{}

// PluginInfo names the module: micro.transport.memory.
func (Config) PluginInfo() plugin.Info {
	return plugin.Info{ID: transport.Namespace + ".memory", New: func() plugin.Module { return new(Config) }}
}

// NewTransport builds a memory transport.
func (Config) NewTransport(opts ...transport.Option) (transport.Transport, error) {
	return New(opts...), nil
}

// New returns a memory transport.
func New(opts ...transport.Option) *Transport {
	return &Transport{opts: transport.NewOptions(opts...), listeners: map[string]*listener{}, nextPort: 1}
}

// String implements transport.Transport.
func (t *Transport) String() string { return "memory" }

// Listen implements transport.Transport. An address ending in ":0" gets a free port.
func (t *Transport) Listen(addr string) (transport.Listener, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if addr == "" || addr == ":0" || addr[len(addr)-2:] == ":0" {
		host := addr[:max(len(addr)-2, 0)]
		for {
			a := host + ":" + strconv.Itoa(t.nextPort)
			t.nextPort++
			if t.listeners[a] == nil {
				addr = a
				break
			}
		}
	}
	if t.listeners[addr] != nil {
		return nil, fmt.Errorf("memory: listen %s: address in use", addr)
	}
	l := &listener{t: t, addr: addr, conns: make(chan *socket), done: make(chan struct{})}
	t.listeners[addr] = l
	return l, nil
}

// Dial implements transport.Transport.
func (t *Transport) Dial(ctx context.Context, addr string) (transport.Socket, error) {
	t.mu.Lock()
	l := t.listeners[addr]
	t.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("memory: dial %s: connection refused", addr)
	}
	ab, ba := make(chan *transport.Message, 16), make(chan *transport.Message, 16)
	done := make(chan struct{})
	once := new(sync.Once)
	client := &socket{in: ba, out: ab, done: done, once: once, local: "client", remote: addr, max: t.opts.MaxFrameSize}
	server := &socket{in: ab, out: ba, done: done, once: once, local: addr, remote: "client", max: t.opts.MaxFrameSize}
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, fmt.Errorf("memory: dial %s: connection refused", addr)
	case <-ctx.Done():
		return nil, fmt.Errorf("memory: dial %s: %w", addr, ctx.Err())
	}
}

type listener struct {
	t     *Transport
	addr  string
	conns chan *socket
	done  chan struct{}
	once  sync.Once
}

func (l *listener) Addr() string { return l.addr }

func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.t.mu.Lock()
		delete(l.t.listeners, l.addr)
		l.t.mu.Unlock()
	})
	return nil
}

func (l *listener) Accept(fn func(transport.Socket)) error {
	for {
		select {
		case s := <-l.conns:
			go fn(s)
		case <-l.done:
			return nil
		}
	}
}

// socket is one end of a connection; both ends share done, so closing either closes both.
type socket struct {
	in, out       chan *transport.Message
	done          chan struct{}
	once          *sync.Once
	local, remote string
	max           int
}

func (s *socket) Local() string  { return s.local }
func (s *socket) Remote() string { return s.remote }

func (s *socket) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

func (s *socket) Send(m *transport.Message) error {
	size := len(m.Body)
	for k, v := range m.Header {
		size += len(k) + len(v)
	}
	if size > s.max {
		return fmt.Errorf("%w: %d bytes, max %d", transport.ErrFrameTooLarge, size, s.max)
	}
	select {
	case <-s.done:
		return transport.ErrClosed
	default:
	}
	select {
	case s.out <- m.Copy():
		return nil
	case <-s.done:
		return transport.ErrClosed
	}
}

func (s *socket) Recv(m *transport.Message) error {
	select {
	case got := <-s.in:
		*m = *got
		return nil
	case <-s.done:
		return transport.ErrClosed
	}
}

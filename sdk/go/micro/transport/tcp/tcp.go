// Package tcp is a transport over TCP with length-prefixed frames.
//
// A frame is a 4-byte big-endian length n, then n bytes: a uvarint header count, each header as a
// uvarint-prefixed key and value, and the body to the end. A frame longer than the maximum frame
// size, or one whose headers do not parse, fails Recv with transport.ErrFrameTooLarge or
// transport.ErrMalformedFrame; the server then closes that one connection.
//
// Dial opens a plain connection: a Socket that is the connection, one frame after another.
//
// DialShared (transport.Multiplexer, used by transport.Pool) opens a stream over one of a few
// connections per address shared by the whole Transport (Options.Connections, default 2), so
// many concurrent calls share connections and their frames share writes. Such a connection
// speaks the multiplexed format, version 1 ("mux1"):
//
//   - The client starts with the preface FF FF FF FF 'm' 'u' 'x' '1' (a length no plain frame
//     may announce, then the version); the server answers with the same 8 bytes. A server from
//     before mux1 closes the connection instead, and the client falls back to plain connections.
//   - Then both sides send frames: the 4-byte length n, then n bytes: a uvarint stream id, a type
//     byte, and for type 0 (data) a plain frame's payload, whose size MaxFrameSize bounds.
//   - Types: 0 data; 1 close (the sender closed the stream); 2 refused (server: the stream was
//     not accepted, nothing of it ran; Recv fails with transport.ErrRefused); 3 go-away (server,
//     stream 0: open no new streams here, sent when the listener closes).
//   - The client numbers streams 1, 2, 3, ...; a data frame with an id above every id seen opens
//     a stream on the server, which hands it to Accept's fn like a connection. Ids are not
//     reused; frames for closed streams are dropped.
//   - Each connection has one reader that dispatches frames to the streams and one writer that
//     writes every frame queued since its last write in one write. A frame that is too large or
//     malformed ends the whole connection (every stream on it), and only it.
//
// The server tells the formats apart by the first four bytes, and serves both. A closed
// listener sends go-away and closes each shared connection once its last stream has closed.
//
// With transport.ServerTLS and transport.ClientTLS the frames go over TLS: Dial completes the
// handshake within its context (a server the client's RootCAs do not trust fails Dial), and the
// server completes it before handing the socket over (one that fails is logged and closed,
// bounded by DialTimeout).
package tcp

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/configd/configd/plugin"
	"github.com/configd/configd/sdk/go/micro/internal/wire"
	"github.com/configd/configd/sdk/go/micro/transport"
)

// Transport is the tcp transport.
type Transport struct {
	opts  transport.Options
	conns int // shared connections per address

	pmu   sync.Mutex
	peers map[string]*peer
}

var (
	_ transport.Transport   = (*Transport)(nil)
	_ transport.Multiplexer = (*Transport)(nil)
)

// NewTransport returns a tcp transport.
func NewTransport(opts ...transport.Option) transport.Transport { return New(opts...) }

// Config is the tcp transport's own config: it has no fields beyond transport.Options. It is
// the plugin module micro.transport.tcp.
type Config struct{}

var _ transport.Module = Config{}

// PluginInfo names the module: micro.transport.tcp.
func (Config) PluginInfo() plugin.Info {
	return plugin.Info{ID: transport.Namespace + ".tcp", New: func() plugin.Module { return new(Config) }}
}

// NewTransport builds a tcp transport.
func (Config) NewTransport(opts ...transport.Option) (transport.Transport, error) {
	return New(opts...), nil
}

// New returns a tcp transport.
func New(opts ...transport.Option) *Transport {
	o := transport.NewOptions(opts...)
	n := o.Connections
	if n <= 0 {
		n = 2
	}
	return &Transport{opts: o, conns: n, peers: map[string]*peer{}}
}

// String implements transport.Transport.
func (t *Transport) String() string { return "tcp" }

// Dial implements transport.Transport.
func (t *Transport) Dial(ctx context.Context, addr string) (transport.Socket, error) {
	c, err := t.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return newSocket(c, bufio.NewReaderSize(c, 32<<10), t.opts.MaxFrameSize), nil
}

// dial connects, with the TLS handshake when configured.
func (t *Transport) dial(ctx context.Context, addr string) (net.Conn, error) {
	if _, ok := ctx.Deadline(); !ok && t.opts.DialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.opts.DialTimeout)
		defer cancel()
	}
	var (
		c   net.Conn
		err error
	)
	if t.opts.ClientTLS != nil {
		d := tls.Dialer{Config: t.opts.ClientTLS}
		c, err = d.DialContext(ctx, "tcp", addr)
	} else {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("tcp: dial %s: %w", addr, err)
	}
	setNoDelay(c)
	return c, nil
}

// Listen implements transport.Transport.
func (t *Transport) Listen(addr string) (transport.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tcp: listen %s: %w", addr, err)
	}
	return &listener{l: l, max: t.opts.MaxFrameSize, tls: t.opts.ServerTLS, handshakeTimeout: t.opts.DialTimeout,
		pending: map[net.Conn]struct{}{}, shared: map[*muxConn]struct{}{}}, nil
}

type listener struct {
	l                net.Listener
	max              int
	tls              *tls.Config
	handshakeTimeout time.Duration

	mu      sync.Mutex
	closed  bool
	pending map[net.Conn]struct{} // connections not yet handed over: format unknown
	shared  map[*muxConn]struct{} // multiplexed connections
}

func (l *listener) Addr() string { return l.l.Addr().String() }

// Close stops accepting: connections whose format is still unknown are closed, shared ones go
// away (they close after their last stream).
func (l *listener) Close() error {
	err := l.l.Close()
	l.mu.Lock()
	l.closed = true
	pending, shared := l.pending, l.shared
	l.pending, l.shared = map[net.Conn]struct{}{}, map[*muxConn]struct{}{}
	l.mu.Unlock()
	for c := range pending {
		c.Close()
	}
	for mc := range shared {
		mc.goAway()
	}
	return err
}

// track adds c to the pending connections, or reports false when the listener is closed.
func (l *listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.pending[c] = struct{}{}
	return true
}

// serve tells the connection's format from its first four bytes and serves it.
func (l *listener) serve(c net.Conn, fn func(transport.Socket)) {
	if !l.track(c) {
		c.Close()
		return
	}
	setNoDelay(c)
	r := bufio.NewReaderSize(c, 32<<10)
	first, err := r.Peek(4)
	l.mu.Lock()
	_, ok := l.pending[c]
	delete(l.pending, c)
	closed := l.closed
	l.mu.Unlock()
	if err != nil || !ok {
		c.Close()
		return
	}
	if string(first) != string(muxPreface[:4]) {
		fn(newSocket(c, r, l.max))
		return
	}
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil || string(pre[:]) != string(muxPreface) {
		slog.Warn("tcp: unknown connection preface", "remote", c.RemoteAddr().String(), "preface", fmt.Sprintf("%q", pre[:]))
		c.Close()
		return
	}
	if closed {
		c.Close()
		return
	}
	mc := newMuxConn(c, r, l.max, true)
	mc.accept = fn
	mc.onDead = func(mc *muxConn) {
		l.mu.Lock()
		delete(l.shared, mc)
		l.mu.Unlock()
	}
	if _, err := c.Write(muxPreface); err != nil {
		c.Close()
		return
	}
	l.mu.Lock()
	closed = l.closed
	if !closed {
		l.shared[mc] = struct{}{}
	}
	l.mu.Unlock()
	mc.start()
	if closed {
		mc.goAway()
	}
}

func (l *listener) Accept(fn func(transport.Socket)) error {
	var delay time.Duration
	for {
		c, err := l.l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			// Out of file descriptors and the like: wait a little and go on, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if l.tls == nil {
			go l.serve(c, fn)
			continue
		}
		go func() {
			tc := tls.Server(c, l.tls)
			ctx, cancel := context.WithTimeout(context.Background(), max(l.handshakeTimeout, time.Second))
			defer cancel()
			if err := tc.HandshakeContext(ctx); err != nil {
				slog.Warn("tcp: TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
				c.Close()
				return
			}
			l.serve(tc, fn)
		}()
	}
}

type socket struct {
	c   net.Conn
	max int

	rmu sync.Mutex
	r   *bufio.Reader

	wmu sync.Mutex
	w   *bufio.Writer
	buf []byte

	closeOnce sync.Once
	closeErr  error
}

func setNoDelay(c net.Conn) {
	raw := c
	if tc, ok := c.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
}

func newSocket(c net.Conn, r *bufio.Reader, max int) *socket {
	return &socket{c: c, max: max, r: r, w: bufio.NewWriterSize(c, 32<<10)}
}

func (s *socket) Local() string  { return s.c.LocalAddr().String() }
func (s *socket) Remote() string { return s.c.RemoteAddr().String() }

func (s *socket) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.c.Close() })
	return s.closeErr
}

func (s *socket) Send(m *transport.Message) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	b := appendHeaders(append(s.buf[:0], 0, 0, 0, 0), m)
	n := len(b) - 4 + len(m.Body)
	if n > s.max {
		return fmt.Errorf("%w: %d bytes, max %d", transport.ErrFrameTooLarge, n, s.max)
	}
	binary.BigEndian.PutUint32(b, uint32(n))
	if cap(b) <= 64<<10 {
		s.buf = b // keep small buffers for the next send
	}
	if _, err := s.w.Write(b); err != nil {
		return s.fail(err)
	}
	if _, err := s.w.Write(m.Body); err != nil {
		return s.fail(err)
	}
	if err := s.w.Flush(); err != nil {
		return s.fail(err)
	}
	return nil
}

func (s *socket) Recv(m *transport.Message) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	var hdr [4]byte
	if _, err := io.ReadFull(s.r, hdr[:]); err != nil {
		return s.fail(err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if int64(n) > int64(s.max) {
		return fmt.Errorf("%w: %d bytes announced, max %d", transport.ErrFrameTooLarge, n, s.max)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(s.r, frame); err != nil {
		return s.fail(err)
	}
	return decode(frame, m)
}

// appendHeaders appends a plain frame's header count and headers.
func appendHeaders(b []byte, m *transport.Message) []byte {
	b = binary.AppendUvarint(b, uint64(len(m.Header)))
	for k, v := range m.Header {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

// appendMessage appends a plain frame's payload: headers and body.
func appendMessage(b []byte, m *transport.Message) []byte {
	return append(appendHeaders(b, m), m.Body...)
}

func decode(frame []byte, m *transport.Message) error {
	count, k := binary.Uvarint(frame)
	if k <= 0 || count > uint64(len(frame)) {
		return fmt.Errorf("%w: bad header count", transport.ErrMalformedFrame)
	}
	frame = frame[k:]
	m.Header = make(map[string]string, count)
	next := func() ([]byte, bool) {
		l, k := binary.Uvarint(frame)
		if k <= 0 || l > uint64(len(frame)-k) {
			return nil, false
		}
		v := frame[k : k+int(l)]
		frame = frame[k+int(l):]
		return v, true
	}
	for range count {
		name, ok := next()
		if !ok {
			return fmt.Errorf("%w: header key overruns the frame", transport.ErrMalformedFrame)
		}
		key := wire.Name(name)
		val, ok := next()
		if !ok {
			return fmt.Errorf("%w: header %q value overruns the frame", transport.ErrMalformedFrame, key)
		}
		m.Header[key] = string(val)
	}
	m.Body = frame
	return nil
}

func (s *socket) fail(err error) error { return fail(s.c, err) }

// fail maps a closed connection to transport.ErrClosed, keeping the cause.
func fail(c net.Conn, err error) error {
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) {
		return fmt.Errorf("%w: %w", transport.ErrClosed, err)
	}
	return fmt.Errorf("tcp: %s: %w", c.RemoteAddr(), err)
}

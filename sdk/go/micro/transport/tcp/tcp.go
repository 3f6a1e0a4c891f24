// Package tcp is a transport over TCP with length-prefixed frames.
//
// A frame is a 4-byte big-endian length n, then n bytes: a uvarint header count, each header as a
// uvarint-prefixed key and value, and the body to the end. A frame longer than the maximum frame
// size, or one whose headers do not parse, fails Recv with transport.ErrFrameTooLarge or
// transport.ErrMalformedFrame; the server then closes that one connection.
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

	"github.com/configd/configd/sdk/go/micro/transport"
)

// Transport is the tcp transport.
type Transport struct {
	opts transport.Options
}

var _ transport.Transport = (*Transport)(nil)

// NewTransport returns a tcp transport. It has the signature of transport.Factory.
func NewTransport(opts ...transport.Option) transport.Transport { return New(opts...) }

// New returns a tcp transport.
func New(opts ...transport.Option) *Transport { return &Transport{opts: transport.NewOptions(opts...)} }

// String implements transport.Transport.
func (t *Transport) String() string { return "tcp" }

// Dial implements transport.Transport.
func (t *Transport) Dial(ctx context.Context, addr string) (transport.Socket, error) {
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
	return newSocket(c, t.opts.MaxFrameSize), nil
}

// Listen implements transport.Transport.
func (t *Transport) Listen(addr string) (transport.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tcp: listen %s: %w", addr, err)
	}
	return &listener{l: l, max: t.opts.MaxFrameSize, tls: t.opts.ServerTLS, handshakeTimeout: t.opts.DialTimeout}, nil
}

type listener struct {
	l                net.Listener
	max              int
	tls              *tls.Config
	handshakeTimeout time.Duration
}

func (l *listener) Addr() string { return l.l.Addr().String() }
func (l *listener) Close() error { return l.l.Close() }

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
			go fn(newSocket(c, l.max))
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
			fn(newSocket(tc, l.max))
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

func newSocket(c net.Conn, max int) *socket {
	raw := c
	if tc, ok := c.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return &socket{c: c, max: max, r: bufio.NewReaderSize(c, 32<<10), w: bufio.NewWriterSize(c, 32<<10)}
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
	b := s.buf[:0]
	b = append(b, 0, 0, 0, 0)
	b = binary.AppendUvarint(b, uint64(len(m.Header)))
	for k, v := range m.Header {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
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

func decode(frame []byte, m *transport.Message) error {
	count, k := binary.Uvarint(frame)
	if k <= 0 || count > uint64(len(frame)) {
		return fmt.Errorf("%w: bad header count", transport.ErrMalformedFrame)
	}
	frame = frame[k:]
	m.Header = make(map[string]string, count)
	next := func() (string, bool) {
		l, k := binary.Uvarint(frame)
		if k <= 0 || l > uint64(len(frame)-k) {
			return "", false
		}
		v := string(frame[k : k+int(l)])
		frame = frame[k+int(l):]
		return v, true
	}
	for range count {
		key, ok := next()
		if !ok {
			return fmt.Errorf("%w: header key overruns the frame", transport.ErrMalformedFrame)
		}
		val, ok := next()
		if !ok {
			return fmt.Errorf("%w: header %q value overruns the frame", transport.ErrMalformedFrame, key)
		}
		m.Header[key] = val
	}
	m.Body = frame
	return nil
}

// fail maps a closed connection to transport.ErrClosed, keeping the cause.
func (s *socket) fail(err error) error {
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", transport.ErrClosed, err)
	}
	return fmt.Errorf("tcp: %s: %w", s.Remote(), err)
}

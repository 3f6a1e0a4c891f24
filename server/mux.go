package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// http2Preface is what every HTTP/2 connection without TLS ("h2c", prior
// knowledge) starts with; gRPC clients connect that way.
var http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// portMux splits one listener in two by the first bytes of each
// connection: HTTP/2 prior-knowledge connections (gRPC clients) go to the
// gRPC listener, everything else (HTTP/1.1) to the HTTP one. This is how
// gRPC and the HTTP API share a port, served each by its native server.
type portMux struct {
	ln        net.Listener
	grpc      *subListener
	http      *subListener
	sniffWait time.Duration
	closeOnce sync.Once
	done      chan struct{}
}

func newPortMux(ln net.Listener) *portMux {
	m := &portMux{ln: ln, sniffWait: 10 * time.Second, done: make(chan struct{})}
	m.grpc = &subListener{mux: m, conns: make(chan net.Conn)}
	m.http = &subListener{mux: m, conns: make(chan net.Conn)}
	return m
}

// serve accepts connections until the listener is closed.
func (m *portMux) serve() error {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			m.close()
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go m.route(c)
	}
}

func (m *portMux) route(c net.Conn) {
	// Read as much of the preface as the client sends; a client that sends
	// fewer bytes and waits (an HTTP/1.1 request shorter than the preface
	// is impossible: "GET / HTTP/1.1\r\n\r\n" is 18 bytes, so compare what
	// we have as it comes).
	c.SetReadDeadline(time.Now().Add(m.sniffWait))
	buf := make([]byte, len(http2Preface))
	n := 0
	for n < len(buf) {
		k, err := c.Read(buf[n:])
		n += k
		if !bytes.Equal(buf[:n], http2Preface[:n]) || err != nil {
			break
		}
	}
	c.SetReadDeadline(time.Time{})
	target := m.http
	if n == len(http2Preface) && bytes.Equal(buf, http2Preface) {
		target = m.grpc
	}
	pc := &prefixConn{Conn: c, prefix: buf[:n]}
	select {
	case target.conns <- pc:
	case <-m.done:
		c.Close()
	}
}

func (m *portMux) close() {
	m.closeOnce.Do(func() {
		close(m.done)
		m.ln.Close()
	})
}

// subListener hands out the connections routed to one server.
type subListener struct {
	mux   *portMux
	conns chan net.Conn
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.mux.done:
		return nil, net.ErrClosed
	}
}

// Close closes the shared listener: both servers stop accepting.
func (l *subListener) Close() error { l.mux.close(); return nil }

func (l *subListener) Addr() net.Addr { return l.mux.ln.Addr() }

// prefixConn replays the bytes read while sniffing.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

var _ io.Reader = (*prefixConn)(nil)

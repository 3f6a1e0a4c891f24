package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
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
//
// With TLS (tls set), every connection must open with a TLS handshake,
// which the mux does itself, in the connection's goroutine and within
// sniffWait; it then routes by the protocol ALPN agreed on: "h2" (which
// only gRPC clients get, see serverTLS) to gRPC, anything else to HTTP.
// Both servers get the *tls.Conn past its handshake: net/http sets r.TLS
// from it, and the gRPC server, given handshakenTLS as credentials,
// reports it as TLS to its peers' AuthInfo. Terminating TLS here rather
// than in each server is what lets one port carry both: which server a
// connection is for is only known inside the encrypted stream (or from
// ALPN, the result of the handshake). A client that does not speak TLS has
// its connection closed (an HTTP/1 one is first told, as net/http does).
type portMux struct {
	ln        net.Listener
	grpc      *subListener
	http      *subListener
	sniffWait time.Duration
	tls       *tls.Config // nil: plaintext
	logger    *slog.Logger
	closeOnce sync.Once
	done      chan struct{}
}

func newPortMux(ln net.Listener) *portMux {
	m := &portMux{ln: ln, sniffWait: 10 * time.Second, done: make(chan struct{}),
		logger: slog.New(slog.DiscardHandler)}
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
	if m.tls != nil {
		m.routeTLS(c)
		return
	}
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
	m.handOff(target, &prefixConn{Conn: c, prefix: buf[:n]})
}

// handOff gives c to the server of target, or closes it when the mux is
// closed.
func (m *portMux) handOff(target *subListener, c net.Conn) {
	select {
	case target.conns <- c:
	case <-m.done:
		c.Close()
	}
}

// routeTLS does the TLS handshake of c and routes it by ALPN.
func (m *portMux) routeTLS(c net.Conn) {
	tc := tls.Server(c, m.tls)
	c.SetDeadline(time.Now().Add(m.sniffWait))
	if err := tc.Handshake(); err != nil {
		var rhe tls.RecordHeaderError
		if errors.As(err, &rhe) && rhe.Conn != nil && looksLikeHTTP1(rhe.RecordHeader[:]) {
			// As net/http does: a plaintext HTTP/1 client learns why.
			io.WriteString(rhe.Conn, "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		m.logger.Debug("closing a connection whose TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	target := m.http
	if tc.ConnectionState().NegotiatedProtocol == alpnH2 {
		target = m.grpc
	}
	m.handOff(target, tc)
}

// looksLikeHTTP1 reports whether the first five bytes of a connection
// look like an HTTP/1 request line.
func looksLikeHTTP1(hdr []byte) bool {
	for _, m := range []string{"GET /", "HEAD ", "POST ", "PUT /", "PATCH", "DELET", "OPTIO"} {
		if string(hdr) == m {
			return true
		}
	}
	return false
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

// WriteConn is the connection under c: writes skip the wrapper (so that
// net.Buffers writes with writev).
func (c *prefixConn) WriteConn() net.Conn { return c.Conn }

var _ io.Reader = (*prefixConn)(nil)

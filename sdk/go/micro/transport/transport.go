// Package transport carries messages between a client and a server: a Message is a header map
// and a body, a Socket is a connection that sends and receives them in order. Implementations
// live in sub-packages (memory, tcp, grpc), each a plugin module (see Module) chosen by name
// through a Catalog.
package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"maps"
	"slices"
	"time"
)

// Message is one frame: headers and an opaque body.
type Message struct {
	Header map[string]string
	Body   []byte
}

// Socket is one connection. Send may be called concurrently with Recv; concurrent Sends (or
// Recvs) are serialised. Close unblocks a pending Recv.
type Socket interface {
	// Recv reads the next message into m.
	Recv(m *Message) error
	// Send writes m.
	Send(m *Message) error
	// Close closes the connection. It is safe to call more than once.
	Close() error
	// Local is the local address.
	Local() string
	// Remote is the peer's address.
	Remote() string
}

// Listener accepts connections.
type Listener interface {
	// Addr is the address to dial, with the port the system chose when asked for ":0".
	Addr() string
	// Accept serves every connection with fn, each in its own goroutine, until Close; then it
	// returns nil. fn owns the socket and closes it.
	Accept(fn func(Socket)) error
	// Close stops accepting. Sockets already handed to fn are not closed.
	Close() error
}

// Transport dials and listens.
type Transport interface {
	// Dial connects to addr; ctx bounds the connection attempt only.
	Dial(ctx context.Context, addr string) (Socket, error)
	// Listen starts listening on addr.
	Listen(addr string) (Listener, error)
	// String names the implementation.
	String() string
}

// Multiplexer is implemented by transports that can carry many sockets over a few shared
// connections. A Pool gets its sockets with DialShared when the transport has it.
type Multiplexer interface {
	// DialShared opens a socket to addr that may share a connection with others: cheap to
	// open and close, its frames possibly written together with theirs.
	DialShared(ctx context.Context, addr string) (Socket, error)
}

// Sentinel errors, checked with errors.Is.
var (
	// ErrClosed: the socket or listener is closed.
	ErrClosed = errors.New("transport: closed")
	// ErrFrameTooLarge: a message is bigger than the transport's maximum frame size.
	ErrFrameTooLarge = errors.New("transport: frame too large")
	// ErrMalformedFrame: the bytes on the wire are not a valid frame.
	ErrMalformedFrame = errors.New("transport: malformed frame")
	// ErrRefused: the server refused a shared socket before handing it to its handler (it is
	// shutting down): nothing sent on it was processed. It comes with ErrClosed.
	ErrRefused = errors.New("transport: refused by the server")
)

// Options configure a transport.
type Options struct {
	// MaxFrameSize is the largest message accepted or sent, headers included. Default 4 MiB.
	MaxFrameSize int
	// DialTimeout bounds a dial when the context has no earlier deadline. Default 5 s.
	DialTimeout time.Duration
	// ServerTLS, when set, makes Listen serve TLS: Certificates, and ClientCAs with
	// ClientAuth for mutual TLS. Transports without TLS (memory) ignore it.
	ServerTLS *tls.Config
	// ClientTLS, when set, makes Dial speak TLS: RootCAs to verify the server (ServerName
	// defaults to the dialed host), and Certificates for mutual TLS.
	ClientTLS *tls.Config
	// Connections is the number of connections per address that shared sockets
	// (Multiplexer.DialShared) spread over. Default 2; transports without sharing ignore it.
	Connections int
}

// DefaultMaxFrameSize is the MaxFrameSize when none is set.
const DefaultMaxFrameSize = 4 << 20

// Option sets an Options field.
type Option func(*Options)

// MaxFrameSize sets the largest message accepted or sent.
func MaxFrameSize(n int) Option { return func(o *Options) { o.MaxFrameSize = n } }

// DialTimeout bounds a dial.
func DialTimeout(d time.Duration) Option { return func(o *Options) { o.DialTimeout = d } }

// ServerTLS makes Listen serve TLS with cfg.
func ServerTLS(cfg *tls.Config) Option { return func(o *Options) { o.ServerTLS = cfg } }

// ClientTLS makes Dial speak TLS with cfg.
func ClientTLS(cfg *tls.Config) Option { return func(o *Options) { o.ClientTLS = cfg } }

// Connections sets the connections per address shared sockets spread over.
func Connections(n int) Option { return func(o *Options) { o.Connections = n } }

// TLS sets one config for both sides, for a service that serves and calls with the same
// certificate: ServerTLS(cfg) and ClientTLS(cfg).
func TLS(cfg *tls.Config) Option {
	return func(o *Options) { o.ServerTLS, o.ClientTLS = cfg, cfg }
}

// NewOptions applies opts over the defaults.
func NewOptions(opts ...Option) Options {
	o := Options{MaxFrameSize: DefaultMaxFrameSize, DialTimeout: 5 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Copy returns a copy of m that shares nothing with it.
func (m *Message) Copy() *Message {
	return &Message{Header: maps.Clone(m.Header), Body: slices.Clone(m.Body)}
}

// Package grpc is a transport over gRPC, as go-micro's grpc transport: a Socket is one
// bidirectional stream of the generic service
//
//	package go.micro.transport.grpc;
//	service Transport { rpc Stream(stream Message) returns (stream Message) {} }
//	message Message { map<string, string> header = 1; bytes body = 2; }
//
// (protobuf on the wire, encoded by hand: there is no generated code). The client keeps one
// gRPC connection (HTTP/2) per address and opens a stream on it per Dial, so pooled sockets
// share a connection. MaxFrameSize bounds the encoded message, headers included; a bigger one
// fails Send with transport.ErrFrameTooLarge before anything is written, and Recv likewise.
// ServerTLS and ClientTLS (transport options) turn on TLS; without them the connection is
// plaintext HTTP/2.
package grpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	gogrpc "google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/plugin"
	"github.com/configd/configd/sdk/go/micro/transport"
)

// ServiceName is the gRPC service of the transport (go-micro's), and StreamMethod its one
// method's full name.
const (
	ServiceName  = "go.micro.transport.grpc.Transport"
	StreamMethod = "/" + ServiceName + "/Stream"
)

var streamDesc = gogrpc.StreamDesc{StreamName: "Stream", ServerStreams: true, ClientStreams: true}

// Transport is the grpc transport. Close releases its client connections.
type Transport struct {
	opts transport.Options

	mu     sync.Mutex
	conns  map[string]*gogrpc.ClientConn
	closed bool
}

var _ transport.Transport = (*Transport)(nil)

// NewTransport returns a grpc transport.
func NewTransport(opts ...transport.Option) transport.Transport { return New(opts...) }

// Config is the grpc transport's own config: it has no fields beyond transport.Options. It is
// the plugin module micro.transport.grpc.
type Config struct{}

var _ transport.Module = Config{}

// PluginInfo names the module: micro.transport.grpc.
func (Config) PluginInfo() plugin.Info {
	return plugin.Info{ID: transport.Namespace + ".grpc", New: func() plugin.Module { return new(Config) }}
}

// NewTransport builds a grpc transport.
func (Config) NewTransport(opts ...transport.Option) (transport.Transport, error) {
	return New(opts...), nil
}

// New returns a grpc transport.
func New(opts ...transport.Option) *Transport {
	return &Transport{opts: transport.NewOptions(opts...), conns: map[string]*gogrpc.ClientConn{}}
}

// String implements transport.Transport.
func (t *Transport) String() string { return "grpc" }

// Close closes the client connections; sockets on them fail with transport.ErrClosed, and
// Dial fails from then on. Listeners are closed on their own.
func (t *Transport) Close() error {
	t.mu.Lock()
	conns := t.conns
	t.conns, t.closed = nil, true
	t.mu.Unlock()
	var errs []error
	for _, cc := range conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

// conn returns the client connection to addr, creating it.
func (t *Transport) conn(addr string) (*gogrpc.ClientConn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("grpc: dial %s: %w", addr, transport.ErrClosed)
	}
	if cc := t.conns[addr]; cc != nil {
		return cc, nil
	}
	creds := insecure.NewCredentials()
	if t.opts.ClientTLS != nil {
		creds = credentials.NewTLS(t.opts.ClientTLS)
	}
	cc, err := gogrpc.NewClient("passthrough:///"+addr,
		gogrpc.WithTransportCredentials(creds),
		gogrpc.WithConnectParams(gogrpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: max(t.opts.DialTimeout, time.Second),
		}),
		gogrpc.WithDefaultCallOptions(gogrpc.ForceCodec(wireCodec{}),
			gogrpc.MaxCallRecvMsgSize(t.opts.MaxFrameSize), gogrpc.MaxCallSendMsgSize(t.opts.MaxFrameSize)))
	if err != nil {
		return nil, fmt.Errorf("grpc: dial %s: %w", addr, err)
	}
	t.conns[addr] = cc
	return cc, nil
}

// Dial implements transport.Transport: it opens a stream on the connection to addr, connecting
// first if need be. ctx bounds the connection and the opening of the stream, not the stream.
func (t *Transport) Dial(ctx context.Context, addr string) (transport.Socket, error) {
	if _, ok := ctx.Deadline(); !ok && t.opts.DialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.opts.DialTimeout)
		defer cancel()
	}
	cc, err := t.conn(addr)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	st, err := cc.NewStream(sctx, &streamDesc, StreamMethod)
	if !stop() {
		cancel()
		return nil, fmt.Errorf("grpc: dial %s: %w", addr, ctx.Err())
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("grpc: dial %s: %w", addr, err)
	}
	s := &clientSocket{st: st, cancel: cancel, max: t.opts.MaxFrameSize, remote: addr}
	if p, ok := peer.FromContext(st.Context()); ok {
		if p.Addr != nil {
			s.remote = p.Addr.String()
		}
		if p.LocalAddr != nil {
			s.local = p.LocalAddr.String()
		}
	}
	return s, nil
}

type clientSocket struct {
	st            gogrpc.ClientStream
	cancel        context.CancelFunc
	max           int
	local, remote string

	smu sync.Mutex // gRPC allows one SendMsg at a time (and one RecvMsg)
	rmu sync.Mutex
}

func (s *clientSocket) Local() string  { return s.local }
func (s *clientSocket) Remote() string { return s.remote }

func (s *clientSocket) Close() error {
	s.cancel()
	return nil
}

func (s *clientSocket) Send(m *transport.Message) error {
	if err := checkSize(m, s.max); err != nil {
		return err
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	return wireError(s.remote, s.st.SendMsg(m))
}

func (s *clientSocket) Recv(m *transport.Message) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return wireError(s.remote, s.st.RecvMsg(m))
}

// Listen implements transport.Transport.
func (t *Transport) Listen(addr string) (transport.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("grpc: listen %s: %w", addr, err)
	}
	opts := []gogrpc.ServerOption{
		gogrpc.ForceServerCodec(wireCodec{}),
		gogrpc.MaxRecvMsgSize(t.opts.MaxFrameSize), gogrpc.MaxSendMsgSize(t.opts.MaxFrameSize),
	}
	if t.opts.ServerTLS != nil {
		opts = append(opts, gogrpc.Creds(credentials.NewTLS(t.opts.ServerTLS)))
	}
	l := &listener{lis: lis, srv: gogrpc.NewServer(opts...), max: t.opts.MaxFrameSize, ready: make(chan struct{})}
	l.srv.RegisterService(&gogrpc.ServiceDesc{
		ServiceName: ServiceName,
		HandlerType: (*any)(nil),
		Streams: []gogrpc.StreamDesc{{
			StreamName: "Stream", ServerStreams: true, ClientStreams: true,
			Handler: func(_ any, ss gogrpc.ServerStream) error { return l.stream(ss) },
		}},
	}, l)
	return l, nil
}

// listener serves streams as sockets. Closing it closes the network listener, so no new
// connection comes in, and refuses new streams on connections already open; streams already
// handed out go on until their sockets close, and then the gRPC server stops.
type listener struct {
	lis   net.Listener
	srv   *gogrpc.Server
	max   int
	fn    func(transport.Socket)
	ready chan struct{} // closed once fn is set

	mu       sync.Mutex
	accepted bool
	closed   bool
	active   int
}

func (l *listener) Addr() string { return l.lis.Addr().String() }

func (l *listener) Accept(fn func(transport.Socket)) error {
	l.mu.Lock()
	if l.accepted {
		l.mu.Unlock()
		return errors.New("grpc: Accept called twice")
	}
	l.accepted, l.fn = true, fn
	close(l.ready)
	l.mu.Unlock()
	err := l.srv.Serve(l.lis)
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return nil
	}
	return fmt.Errorf("grpc: serve: %w", err)
}

func (l *listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	idle := l.active == 0
	l.mu.Unlock()
	err := l.lis.Close()
	if idle {
		l.srv.Stop()
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// stream is the handler of one stream: it hands a socket to fn and returns once the socket is
// closed (or the client went away), which ends the stream.
func (l *listener) stream(ss gogrpc.ServerStream) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return status.Error(codes.Unavailable, "grpc transport: listener closed")
	}
	l.active++
	l.mu.Unlock()
	<-l.ready
	s := &serverSocket{ss: ss, max: l.max, done: make(chan struct{})}
	if p, ok := peer.FromContext(ss.Context()); ok {
		if p.Addr != nil {
			s.remote = p.Addr.String()
		}
		if p.LocalAddr != nil {
			s.local = p.LocalAddr.String()
		}
	}
	go l.fn(s)
	select {
	case <-s.done:
	case <-ss.Context().Done():
	}
	s.smu.Lock()
	s.ended = true // no SendMsg once the handler has returned
	s.smu.Unlock()
	l.mu.Lock()
	l.active--
	stop := l.closed && l.active == 0
	l.mu.Unlock()
	if stop {
		// Gracefully, so that what this stream sent last is flushed before the connection
		// closes; GracefulStop waits for this handler to return.
		go l.srv.GracefulStop()
	}
	return nil
}

type serverSocket struct {
	ss            gogrpc.ServerStream
	max           int
	local, remote string

	closeOnce sync.Once
	done      chan struct{}

	smu   sync.Mutex
	ended bool
	rmu   sync.Mutex
}

func (s *serverSocket) Local() string  { return s.local }
func (s *serverSocket) Remote() string { return s.remote }

func (s *serverSocket) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return nil
}

func (s *serverSocket) Send(m *transport.Message) error {
	if err := checkSize(m, s.max); err != nil {
		return err
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	select {
	case <-s.done:
		return fmt.Errorf("grpc: send: %w", transport.ErrClosed)
	default:
	}
	if s.ended {
		return fmt.Errorf("grpc: send: %w: stream ended", transport.ErrClosed)
	}
	return wireError(s.remote, s.ss.SendMsg(m))
}

func (s *serverSocket) Recv(m *transport.Message) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	select {
	case <-s.done:
		return fmt.Errorf("grpc: recv: %w", transport.ErrClosed)
	default:
	}
	return wireError(s.remote, s.ss.RecvMsg(m))
}

func checkSize(m *transport.Message, max int) error {
	if n := size(m); n > max {
		return fmt.Errorf("%w: %d bytes, max %d", transport.ErrFrameTooLarge, n, max)
	}
	return nil
}

// wireError maps gRPC's errors to the transport's: a stream that ended or was cancelled, or a
// connection that is gone, is transport.ErrClosed; a message over the limit is
// transport.ErrFrameTooLarge.
func wireError(remote string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %w", transport.ErrClosed, err)
	}
	switch status.Code(err) {
	case codes.Canceled, codes.Unavailable, codes.Aborted:
		return fmt.Errorf("%w: grpc %s: %w", transport.ErrClosed, remote, err)
	case codes.ResourceExhausted:
		return fmt.Errorf("%w: grpc %s: %w", transport.ErrFrameTooLarge, remote, err)
	}
	return fmt.Errorf("grpc %s: %w", remote, err)
}

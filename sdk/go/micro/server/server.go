// Package server answers calls: handlers are registered from a Go type's methods, go-micro style
//
//	func (g *Greeter) Hello(ctx context.Context, req *HelloRequest, rsp *HelloResponse) error
//
// and served on a transport, registered in a registry, and stopped in order: deregister → grace
// period → stop accepting → drain in-flight calls with a deadline → close.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/configd/configd/sdk/go/micro/codec"
	"github.com/configd/configd/sdk/go/micro/internal/wire"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/transport"
)

// Request is what a handler wrapper sees of a call.
type Request struct {
	// Service and Endpoint name the call ("greeter", "Greeter.Hello").
	Service, Endpoint string
	// ContentType is the codec of the body.
	ContentType string
	// Header is the request's wire headers. Read it, do not change it: the handler's context
	// metadata (metadata.FromContext) is read from it.
	Header map[string]string
	// Body is the decoded request value (the handler's req argument); for a stream handler,
	// the client's first message when the handler takes one (server streaming), else nil.
	Body any
	// Stream is the stream of a stream handler, nil for a unary call. A wrapper sees a stream
	// once, when it opens, and its HandlerFunc returns when the handler returns; rsp is nil.
	Stream Stream
}

// HandlerFunc handles one decoded call.
type HandlerFunc func(ctx context.Context, req *Request, rsp any) error

// HandlerWrapper wraps a HandlerFunc: middleware for handlers.
type HandlerWrapper func(HandlerFunc) HandlerFunc

// Sentinel errors, checked with errors.Is.
var (
	// ErrPanic is the cause of the error a panicking handler returns (in the server's process;
	// the caller receives status Internal).
	ErrPanic = errors.New("server: handler panicked")
	// ErrDrainTimeout: Stop's deadline passed with calls still in flight; they were cut off.
	ErrDrainTimeout = errors.New("server: in-flight calls did not finish before the deadline")
	// ErrStarted: the server was already started, or handlers were added after Start.
	ErrStarted = errors.New("server: already started")
)

// Server serves handlers on a transport. Create it with New, add handlers with Handle, then
// Start and Stop.
type Server struct {
	opts     Options
	handlers map[string]*handler
	node     *registry.Node

	baseCtx    context.Context
	cancelBase context.CancelFunc

	mu       sync.Mutex
	started  bool
	draining bool
	listener transport.Listener
	conns    map[*conn]struct{}
	inflight int
	idle     chan struct{} // closed when inflight drops to 0 while draining

	accepting chan struct{} // closed when the accept loop returns
	stopBeat  chan struct{}
	beatDone  chan struct{}
}

type conn struct {
	sock transport.Socket
	busy bool
}

// New returns a Server, or an error naming what is wrong with the options.
func New(opts ...Option) (*Server, error) {
	o := Options{
		Address: "127.0.0.1:0", RegisterTTL: 30 * time.Second, GracePeriod: 2 * time.Second,
		DrainTimeout: 10 * time.Second, Codecs: codec.Default(), Logger: slog.Default(),
	}
	for _, f := range opts {
		f(&o)
	}
	switch {
	case o.Name == "":
		return nil, errors.New("server: no service name")
	case o.Transport == nil:
		return nil, errors.New("server: no transport")
	case o.RegisterTTL <= 0 || o.GracePeriod < 0 || o.DrainTimeout <= 0:
		return nil, fmt.Errorf("server: RegisterTTL and DrainTimeout must be > 0, GracePeriod >= 0")
	}
	if o.RegisterInterval <= 0 {
		o.RegisterInterval = o.RegisterTTL / 3
	}
	if o.RegisterInterval >= o.RegisterTTL {
		return nil, fmt.Errorf("server: RegisterInterval %v must be shorter than RegisterTTL %v", o.RegisterInterval, o.RegisterTTL)
	}
	if o.ID == "" {
		var b [8]byte
		rand.Read(b[:])
		o.ID = o.Name + "-" + hex.EncodeToString(b[:])
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts: o, handlers: map[string]*handler{}, baseCtx: ctx, cancelBase: cancel,
		conns: map[*conn]struct{}{}, accepting: make(chan struct{}),
	}, nil
}

// Options returns the server's options, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// Handle registers every method of rcvr with a handler signature as endpoint "TypeName.Method":
//
//	func(ctx context.Context, req *Req, rsp *Rsp) error      // a call (Client.Call)
//	func(ctx context.Context, stream server.Stream) error     // a stream both ways (Client.Stream)
//	func(ctx context.Context, req *Req, stream server.Stream) error // server streaming: req is the client's first message
//
// The stream argument may also be any interface with a subset of Stream's methods. It is an
// error when rcvr has no such method, or an endpoint is registered twice.
func (s *Server) Handle(rcvr any, opts ...HandlerOption) error {
	hs, err := extract(rcvr, opts...)
	if err != nil {
		return err
	}
	return s.add(hs)
}

// add registers handlers, wrapped, all or none.
func (s *Server) add(hs []*handler) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return ErrStarted
	}
	for _, h := range hs {
		if _, dup := s.handlers[h.name]; dup {
			return fmt.Errorf("server: endpoint %s registered twice", h.name)
		}
	}
	for _, h := range hs {
		h.logger = s.opts.Logger
		h.fn = h.call
		for i := len(s.opts.Wrappers) - 1; i >= 0; i-- {
			h.fn = s.opts.Wrappers[i](h.fn)
		}
		s.handlers[h.name] = h
	}
	return nil
}

// Endpoints returns the registered endpoint names, sorted.
func (s *Server) Endpoints() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.handlers))
}

// Addr returns the listener's address, once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr()
}

// ID returns the node id.
func (s *Server) ID() string { return s.opts.ID }

// Start listens, registers the service (the first registration must succeed) and serves in the
// background until Stop.
func (s *Server) Start() error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return ErrStarted
	}
	s.started = true
	s.mu.Unlock()
	l, err := s.opts.Transport.Listen(s.opts.Address)
	if err != nil {
		return fmt.Errorf("server %s: %w", s.opts.Name, err)
	}
	addr := l.Addr()
	if s.opts.Advertise != "" {
		addr = s.opts.Advertise
	} else if host, port, err := net.SplitHostPort(addr); err == nil && (host == "" || host == "::" || host == "0.0.0.0") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	s.node = &registry.Node{Id: s.opts.ID, Address: addr, Metadata: maps.Clone(s.opts.Metadata)}
	s.mu.Lock()
	s.listener = l
	s.mu.Unlock()
	if s.opts.Registry != nil {
		if err := s.register(); err != nil {
			l.Close()
			return fmt.Errorf("server %s: first registration: %w", s.opts.Name, err)
		}
		s.stopBeat, s.beatDone = make(chan struct{}), make(chan struct{})
		go s.heartbeat()
	}
	go func() {
		defer close(s.accepting)
		if err := l.Accept(s.serve); err != nil {
			s.opts.Logger.Error("server: accept loop ended", "service", s.opts.Name, "err", err)
		}
	}()
	s.opts.Logger.Info("server: started", "service", s.opts.Name, "node", s.opts.ID, "addr", addr)
	return nil
}

func (s *Server) service() *registry.Service {
	eps := make([]*registry.Endpoint, 0, len(s.handlers))
	for _, name := range s.Endpoints() {
		eps = append(eps, &registry.Endpoint{Name: name, Metadata: maps.Clone(s.handlers[name].metadata)})
	}
	return &registry.Service{Name: s.opts.Name, Version: s.opts.Version, Endpoints: eps, Nodes: []*registry.Node{s.node}}
}

func (s *Server) register() error {
	ctx, cancel := context.WithTimeout(s.baseCtx, s.opts.RegisterInterval)
	defer cancel()
	return s.opts.Registry.Register(s.service(), registry.RegisterTTL(s.opts.RegisterTTL), registry.RegisterContext(ctx))
}

// heartbeat refreshes the registration until Stop, so the node outlives its TTL only while alive.
func (s *Server) heartbeat() {
	defer close(s.beatDone)
	t := time.NewTicker(s.opts.RegisterInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := s.register(); err != nil {
				s.opts.Logger.Warn("server: registration refresh failed", "service", s.opts.Name, "err", err)
			}
		case <-s.stopBeat:
			return
		}
	}
}

// Stop shuts the server down in order: deregister, keep serving for the grace period, stop
// accepting, wait for in-flight calls until DrainTimeout or ctx ends (whichever is first), then
// close every connection. It returns ErrDrainTimeout when calls had to be cut off.
func (s *Server) Stop(ctx context.Context) error {
	phase := func(p Phase) {
		s.opts.Logger.Info("server: stopping", "service", s.opts.Name, "phase", string(p))
		if s.opts.OnPhase != nil {
			s.opts.OnPhase(p)
		}
	}
	s.mu.Lock()
	if !s.started || s.listener == nil || s.draining {
		s.mu.Unlock()
		return errors.New("server: not running")
	}
	s.mu.Unlock()

	if s.opts.Registry != nil {
		close(s.stopBeat)
		<-s.beatDone
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := s.opts.Registry.Deregister(s.service(), registry.DeregisterContext(dctx)); err != nil {
			s.opts.Logger.Warn("server: deregister failed; the TTL will remove the node", "service", s.opts.Name, "err", err)
		}
		cancel()
	}
	phase(PhaseDeregistered)

	grace := time.NewTimer(s.opts.GracePeriod)
	select {
	case <-grace.C:
	case <-ctx.Done():
		grace.Stop()
	}
	phase(PhaseGraceOver)

	s.listener.Close()
	<-s.accepting
	phase(PhaseListenerClosed)

	drainCtx, cancel := context.WithTimeout(ctx, s.opts.DrainTimeout)
	defer cancel()
	s.mu.Lock()
	s.draining = true
	s.idle = make(chan struct{})
	if s.inflight == 0 {
		close(s.idle)
	}
	for c := range s.conns {
		if !c.busy {
			c.sock.Close() // idle keep-alive connections: nothing to wait for
		}
	}
	s.mu.Unlock()
	var err error
	select {
	case <-s.idle:
	case <-drainCtx.Done():
		err = fmt.Errorf("%w: %w", ErrDrainTimeout, drainCtx.Err())
	}
	phase(PhaseDrained)

	s.cancelBase() // handlers still running see their context end
	s.mu.Lock()
	for c := range s.conns {
		c.sock.Close()
	}
	s.mu.Unlock()
	phase(PhaseClosed)
	return err
}

// serve runs one connection: one call at a time, in order.
func (s *Server) serve(sock transport.Socket) {
	c := &conn{sock: sock}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		sock.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		sock.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	for {
		var m transport.Message
		if err := sock.Recv(&m); err != nil {
			if !errors.Is(err, transport.ErrClosed) {
				s.opts.Logger.Warn("server: closing connection after a bad frame", "service", s.opts.Name, "remote", sock.Remote(), "err", err)
			}
			return
		}
		s.mu.Lock()
		draining := s.draining
		if !draining {
			c.busy = true
			s.inflight++
		}
		s.mu.Unlock()
		if draining {
			// Not processed: the caller can safely try another node.
			e := &status.Error{Code: status.Unavailable, Message: "server is shutting down", Service: s.opts.Name, Retryable: true}
			sock.Send(&transport.Message{Header: map[string]string{wire.Error: e.Marshal(), wire.ID: m.Header[wire.ID]}})
			return
		}
		if m.Header[wire.Stream] == wire.StreamOpen {
			// A stream keeps the connection to itself until it ends.
			s.serveStream(sock, &m, func() { s.finish(c) })
			return
		}
		rsp := s.handle(&m)
		err := sock.Send(rsp)
		if draining := s.finish(c); err != nil || draining {
			return
		}
	}
}

// finish ends a call or stream on c, and reports whether the server is draining.
func (s *Server) finish(c *conn) (draining bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.busy = false
	s.inflight--
	if s.draining && s.inflight == 0 {
		close(s.idle)
	}
	return s.draining
}

// handle decodes, dispatches and encodes one call. It never panics.
func (s *Server) handle(m *transport.Message) (out *transport.Message) {
	svc, ep, ct := m.Header[wire.Service], m.Header[wire.Endpoint], m.Header[wire.ContentType]
	out = &transport.Message{Header: map[string]string{wire.ID: m.Header[wire.ID]}}
	fail := func(e *status.Error) *transport.Message {
		e.Service, e.Endpoint = svc, ep
		out.Header[wire.Error] = e.Marshal()
		return out
	}
	defer func() {
		if r := recover(); r != nil { // a wrapper panicked outside the handler's own recover
			s.opts.Logger.Error("server: panic in handler chain", "service", svc, "endpoint", ep, "panic", r, "stack", string(debug.Stack()))
			out = fail(status.New(status.Internal, "panic: %v", r))
		}
	}()
	if svc != s.opts.Name {
		return fail(status.New(status.NotFound, "unknown service %q (this node serves %q)", svc, s.opts.Name))
	}
	h := s.handlers[ep]
	if h == nil {
		return fail(status.New(status.NotFound, "unknown endpoint %q of service %q", ep, svc))
	}
	if h.kind != unary {
		return fail(status.New(status.BadRequest, "endpoint %q is a stream: open it with Stream, not Call", ep))
	}
	cd, err := s.opts.Codecs.Get(ct)
	if err != nil {
		return fail(status.Wrap(status.BadRequest, err, false))
	}
	req := h.newRequest()
	env, err := codec.UnmarshalRequest(cd, m.Body, req)
	if err != nil {
		return fail(status.Wrap(status.BadRequest, fmt.Errorf("decode request as %s: %w", ct, err), false))
	}
	ctx := s.baseCtx
	if ms, err := strconv.ParseInt(m.Header[wire.Timeout], 10, 64); err == nil && ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	ctx = metadata.HeaderContext(ctx, m.Header)
	respMD := &metadata.Response{}
	ctx = metadata.WithResponse(ctx, respMD)
	rsp := h.newResponse()
	err = h.fn(ctx, &Request{Service: svc, Endpoint: ep, ContentType: ct, Header: m.Header, Body: req}, rsp)
	metadata.ToHeader(respMD.Metadata(), out.Header)
	if err != nil {
		return fail(s.statusOf(err))
	}
	body, err := codec.MarshalResponse(cd, env, rsp)
	if err != nil {
		return fail(status.Wrap(status.Internal, fmt.Errorf("encode response as %s: %w", ct, err), false))
	}
	out.Header[wire.ContentType] = cd.ContentType()
	out.Body = body
	return out
}

// statusOf turns a handler's error into the status sent to the caller.
func (s *Server) statusOf(err error) *status.Error {
	e, ok := status.From(err)
	switch {
	case ok:
	case errors.Is(err, context.DeadlineExceeded):
		e = &status.Error{Code: status.Timeout, Message: err.Error()}
	case errors.Is(err, context.Canceled) && s.baseCtx.Err() != nil:
		e = &status.Error{Code: status.Unavailable, Message: "cut off by server shutdown"}
	case errors.Is(err, context.Canceled):
		e = &status.Error{Code: status.Canceled, Message: err.Error()}
	default:
		e = &status.Error{Code: status.Internal, Message: err.Error()}
	}
	return &status.Error{Code: e.Code, Message: e.Message, Retryable: e.Retryable}
}

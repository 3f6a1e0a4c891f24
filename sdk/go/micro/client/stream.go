package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/configd/configd/sdk/go/micro/codec"
	"github.com/configd/configd/sdk/go/micro/internal/wire"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/transport"
)

// Stream is the client's side of a stream, go-micro's client.Stream: messages both ways over
// one connection, in order. Send and Recv may be called from different goroutines (one sender,
// one receiver).
type Stream interface {
	// Context is the stream's context: the one Stream was given, canceled by Close.
	Context() context.Context
	// Send encodes msg and sends it. When the stream has ended it returns io.EOF; Recv then
	// returns why.
	Send(msg any) error
	// Recv decodes the server's next message into msg. It returns io.EOF when the handler
	// returned nil, the handler's error as a *status.Error when it failed, and an error
	// wrapping the context's when the stream's context ended.
	Recv(msg any) error
	// CloseSend tells the server nothing more will be sent: its Recv returns io.EOF.
	CloseSend() error
	// Close ends the stream and releases its connection; the handler's context ends. It is
	// safe to call more than once, and needed unless Recv returned an error.
	Close() error
	// Metadata returns the response metadata the handler has sent so far (all of it once
	// Recv returned io.EOF or the handler's error).
	Metadata() metadata.Metadata
}

// StreamFunc makes one attempt to open a stream: it picks a node and opens the stream there.
// The stream lives in ctx.
type StreamFunc func(ctx context.Context, req *Request) (Stream, error)

// StreamWrapper wraps a StreamFunc: middleware for streams. A wrapper sees each attempt to
// open; to see the stream's messages or its end, it returns its own Stream around the one it
// got (see the wrapper package's Tracing and Metrics).
type StreamWrapper func(StreamFunc) StreamFunc

// openAttempts is how many nodes Stream tries when opening fails in a way another node may not
// (a node unreachable or draining).
const openAttempts = 3

// Stream opens a stream to service's endpoint, a handler registered as func(ctx, Stream)
// error or func(ctx, *Req, Stream) error (for the latter, the first message sent is its
// request). The node is picked by the selector (or WithAddress) like a call's; opening is tried
// again on another node while the failure is retryable (up to 3 nodes), and is bounded by the
// request timeout; once open, a stream is never retried, and lives until ctx ends, Close, or
// the server ends it. Metadata in ctx goes to the handler; ctx's deadline is the handler's.
//
// The codec is WithContentType's or the client's ContentType; when neither is set, each
// message goes with protobuf when it is a proto.Message and JSON otherwise. Stream wrappers
// (WrapStream) see each attempt to open; call wrappers and client wrappers do not see streams.
func (c *Client) Stream(ctx context.Context, service, endpoint string, opts ...CallOption) (Stream, error) {
	co := CallOptions{RequestTimeout: c.opts.RequestTimeout, ContentType: c.opts.ContentType}
	for _, f := range opts {
		f(&co)
	}
	fail := func(code status.Code, msg string) error {
		return &status.Error{Code: code, Message: msg, Service: service, Endpoint: endpoint}
	}
	if co.ContentType != "" {
		if _, err := c.opts.Codecs.Get(co.ContentType); err != nil {
			return nil, fail(status.BadRequest, err.Error())
		}
	}
	req := &Request{Service: service, Endpoint: endpoint, ContentType: co.ContentType, Options: co, Attempt: 1}
	if len(co.Addresses) > 0 {
		req.next = staticNext(co.Addresses)
	} else {
		if c.opts.Selector == nil {
			return nil, fail(status.Unavailable, "client has no selector and the stream no address")
		}
		next, err := c.opts.Selector.Select(service, co.SelectOptions...)
		if err != nil {
			return nil, fail(selectCode(err), err.Error())
		}
		req.next = next
	}
	openCtx, cancel := context.WithTimeout(ctx, co.RequestTimeout)
	defer cancel()
	req.openCtx = openCtx
	for {
		if err := openCtx.Err(); err != nil {
			return nil, timeoutError(req, err)
		}
		st, err := c.stream(ctx, req)
		if err == nil {
			return st, nil
		}
		if !status.IsRetryable(err) || req.Attempt >= openAttempts {
			return nil, err
		}
		req.Attempt++
	}
}

// openAttempt is the StreamFunc the stream wrappers wrap: pick a node, open the stream there,
// and tell the selector how the node did.
func (c *Client) openAttempt(ctx context.Context, req *Request) (Stream, error) {
	node, err := req.next()
	if err != nil {
		return nil, &status.Error{Code: status.Unavailable, Message: err.Error(), Service: req.Service, Endpoint: req.Endpoint}
	}
	openCtx := req.openCtx
	if openCtx == nil {
		openCtx = ctx
	}
	st, err := c.open(ctx, openCtx, node.Address, req)
	if c.opts.Selector != nil && len(req.Options.Addresses) == 0 {
		c.opts.Selector.Mark(req.Service, node, nodeFault(err))
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}

// open opens a stream on a connection to addr: send the open, wait for the answer.
func (c *Client) open(ctx, openCtx context.Context, addr string, req *Request) (*stream, error) {
	st := &stream{c: c, req: req}
	st.ctx, st.cancel = context.WithCancel(ctx)
	msg := &transport.Message{Header: map[string]string{
		wire.Service: req.Service, wire.Endpoint: req.Endpoint, wire.Stream: wire.StreamOpen,
		wire.ID: c.idp + strconv.FormatUint(c.ids.Add(1), 36),
	}}
	if req.ContentType != "" {
		msg.Header[wire.ContentType] = req.ContentType
	}
	if dl, ok := ctx.Deadline(); ok {
		msg.Header[wire.Timeout] = strconv.FormatInt(max(time.Until(dl).Milliseconds(), 1), 10)
	}
	metadata.ContextToHeader(ctx, msg.Header)
	for try := 0; ; try++ {
		sock, reused, err := c.pool.GetOwn(openCtx, addr)
		if err != nil {
			st.cancel()
			if openCtx.Err() != nil {
				return nil, timeoutError(req, openCtx.Err())
			}
			return nil, &status.Error{Code: status.Unavailable, Message: fmt.Sprintf("dial %s: %v", addr, err),
				Service: req.Service, Endpoint: req.Endpoint, Retryable: true}
		}
		stop := context.AfterFunc(openCtx, func() { sock.Close() })
		var in transport.Message
		err = sock.Send(msg)
		if err == nil {
			err = sock.Recv(&in)
		}
		timedOut := !stop()
		if err != nil {
			sock.Close()
			if timedOut {
				st.cancel()
				return nil, timeoutError(req, openCtx.Err())
			}
			if reused && try == 0 && errors.Is(err, transport.ErrClosed) {
				continue // a stale idle connection: the open did not reach a handler
			}
			st.cancel()
			// Nothing ran yet: the handler starts only after the server's answer.
			return nil, &status.Error{Code: status.Unavailable, Message: fmt.Sprintf("open stream on %s: %v", addr, err),
				Service: req.Service, Endpoint: req.Endpoint, Retryable: true}
		}
		if e, ok := in.Header[wire.Error]; ok {
			sock.Close()
			st.cancel()
			se := status.Unmarshal(e)
			if se.Service == "" {
				se.Service, se.Endpoint = req.Service, req.Endpoint
			}
			return nil, se
		}
		if in.Header[wire.Stream] != wire.StreamOpened {
			sock.Close()
			st.cancel()
			return nil, &status.Error{Code: status.Internal, Message: fmt.Sprintf("%s does not answer streams", addr),
				Service: req.Service, Endpoint: req.Endpoint}
		}
		st.sock = sock
		// The stream owns the connection: it is closed, never pooled, at the end.
		context.AfterFunc(st.ctx, func() { sock.Close() })
		return st, nil
	}
}

type stream struct {
	c      *Client
	req    *Request
	ctx    context.Context
	cancel context.CancelFunc
	sock   transport.Socket

	sendMu   sync.Mutex
	sendDone bool

	recvMu sync.Mutex
	err    error       // the stream's end, once Recv saw it
	ended  atomic.Bool // Recv saw the end: Send returns io.EOF

	mdMu sync.Mutex
	md   metadata.Metadata
}

var _ Stream = (*stream)(nil)

func (s *stream) Context() context.Context { return s.ctx }

func (s *stream) Send(msg any) error {
	ct := s.req.ContentType
	if ct == "" {
		ct = codec.ContentTypeOf(msg)
	}
	cd, err := s.c.opts.Codecs.Get(ct)
	if err != nil {
		return s.status(status.BadRequest, err.Error())
	}
	body, err := cd.Marshal(msg)
	if err != nil {
		return s.status(status.BadRequest, fmt.Sprintf("encode stream message: %v", err))
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.sendDone {
		return errors.New("client: Send after CloseSend")
	}
	if s.ended.Load() {
		return io.EOF
	}
	return s.sendErr(s.sock.Send(&transport.Message{Header: map[string]string{wire.ContentType: cd.ContentType()}, Body: body}))
}

func (s *stream) CloseSend() error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.sendDone {
		return nil
	}
	s.sendDone = true
	return s.sendErr(s.sock.Send(&transport.Message{Header: map[string]string{wire.Stream: wire.StreamEnd}}))
}

// sendErr maps a failed send: the stream's context ended, or the stream is over (io.EOF, the
// reason at Recv).
func (s *stream) sendErr(err error) error {
	switch {
	case err == nil:
		return nil
	case s.ended.Load():
		return io.EOF
	case s.ctx.Err() != nil:
		return s.ctxErr()
	case errors.Is(err, transport.ErrClosed):
		return io.EOF
	case errors.Is(err, transport.ErrFrameTooLarge):
		return s.status(status.BadRequest, err.Error())
	}
	return err
}

func (s *stream) Recv(msg any) error {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	if s.err != nil {
		return s.err
	}
	var in transport.Message
	if err := s.sock.Recv(&in); err != nil {
		if s.ctx.Err() != nil {
			return s.end(s.ctxErr())
		}
		return s.end(&status.Error{Code: status.Unavailable, Message: fmt.Sprintf("stream broken: %v", err),
			Service: s.req.Service, Endpoint: s.req.Endpoint})
	}
	s.addMD(in.Header)
	if in.Header[wire.Stream] == wire.StreamEnd {
		if e, ok := in.Header[wire.Error]; ok {
			se := status.Unmarshal(e)
			if se.Service == "" {
				se.Service, se.Endpoint = s.req.Service, s.req.Endpoint
			}
			return s.end(se)
		}
		return s.end(io.EOF)
	}
	cd, err := s.c.opts.Codecs.Get(in.Header[wire.ContentType])
	if err != nil {
		return s.status(status.Internal, fmt.Sprintf("stream message: %v", err))
	}
	if err := cd.Unmarshal(in.Body, msg); err != nil {
		return s.status(status.Internal, fmt.Sprintf("decode stream message: %v", err))
	}
	return nil
}

// end records the stream's end and releases the connection.
func (s *stream) end(err error) error {
	s.err = err
	s.ended.Store(true)
	s.Close()
	return err
}

func (s *stream) Close() error {
	s.cancel()
	s.sock.Close()
	return nil
}

func (s *stream) Metadata() metadata.Metadata {
	s.mdMu.Lock()
	defer s.mdMu.Unlock()
	return maps.Clone(s.md)
}

func (s *stream) addMD(h map[string]string) {
	md := metadata.FromHeader(h)
	if len(md) == 0 {
		return
	}
	s.mdMu.Lock()
	defer s.mdMu.Unlock()
	if s.md == nil {
		s.md = metadata.Metadata{}
	}
	maps.Copy(s.md, md)
}

func (s *stream) ctxErr() error {
	code := status.Canceled
	if errors.Is(s.ctx.Err(), context.DeadlineExceeded) {
		code = status.Timeout
	}
	return status.Wrap(code, fmt.Errorf("stream %s %s: %w", s.req.Service, s.req.Endpoint, s.ctx.Err()), false)
}

func (s *stream) status(code status.Code, msg string) error {
	return &status.Error{Code: code, Message: msg, Service: s.req.Service, Endpoint: s.req.Endpoint}
}

// selectCode is the status code of a selector's failure.
func selectCode(err error) status.Code {
	if errors.Is(err, selector.ErrNotFound) {
		return status.NotFound
	}
	return status.Unavailable
}

package server

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/configd/configd/sdk/go/micro/codec"
	"github.com/configd/configd/sdk/go/micro/internal/wire"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/transport"
)

// Stream is the server's side of a stream, go-micro's server.Stream. Recv reads the client's
// messages in order and returns io.EOF once the client called CloseSend; Send writes one
// message to the client. The stream ends when the handler returns: its error (a status.Error
// keeps its code) reaches the client's Recv, and response metadata set with
// metadata.SetResponse goes out with the next message sent, or with the end.
//
// Context is the handler's context: it ends when the client cancels or closes the stream, when
// the client's deadline passes, and when the server's Stop cuts the stream off after its drain
// deadline. Send and Recv are safe to call from different goroutines.
type Stream interface {
	// Context is the stream's context.
	Context() context.Context
	// Send encodes msg with the stream's codec and sends it.
	Send(msg any) error
	// Recv decodes the client's next message into msg; io.EOF after the client's CloseSend.
	Recv(msg any) error
}

// streamLinger bounds how long the server waits, after sending a stream's end, for the client
// to close the connection: closing first could reset a connection with unread data.
const streamLinger = 5 * time.Second

type stream struct {
	ctx    context.Context
	sock   transport.Socket
	codecs *codec.Set
	ct     string // fixed by the client at open, or "" for each message's own
	resp   *metadata.Response

	in   chan *transport.Message // the client's messages; closed at its end
	rerr error                   // why in was closed: io.EOF or the connection's end
	done chan struct{}           // closed when the handler returned: the reader discards

	mu   sync.Mutex // serialises sends and guards sent
	sent metadata.Metadata
}

var _ Stream = (*stream)(nil)

func (st *stream) Context() context.Context { return st.ctx }

// setContext makes ctx (the one the handler wrappers made) the stream's.
func (st *stream) setContext(ctx context.Context) { st.ctx = ctx }

func (st *stream) Recv(msg any) error {
	select {
	case m, ok := <-st.in:
		if !ok {
			return st.rerr
		}
		ct := m.Header[wire.ContentType]
		if ct == "" {
			ct = st.ct
		}
		cd, err := st.codecs.Get(ct)
		if err != nil {
			return status.Wrap(status.BadRequest, err, false)
		}
		if err := cd.Unmarshal(m.Body, msg); err != nil {
			return status.Wrap(status.BadRequest, fmt.Errorf("decode stream message as %s: %w", ct, err), false)
		}
		return nil
	case <-st.ctx.Done():
		return st.ctx.Err()
	}
}

func (st *stream) Send(msg any) error {
	if err := st.ctx.Err(); err != nil {
		return err
	}
	ct := st.ct
	if ct == "" {
		ct = codec.ContentTypeOf(msg)
	}
	cd, err := st.codecs.Get(ct)
	if err != nil {
		return err
	}
	body, err := cd.Marshal(msg)
	if err != nil {
		return fmt.Errorf("server: encode stream message as %s: %w", ct, err)
	}
	return st.send(&transport.Message{Header: map[string]string{wire.ContentType: cd.ContentType()}, Body: body})
}

// send writes m with the response metadata set since the last frame.
func (st *stream) send(m *transport.Message) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, v := range st.resp.Metadata() {
		if old, ok := st.sent[k]; !ok || old != v {
			m.Header[metadata.HeaderPrefix+k] = v
			if st.sent == nil {
				st.sent = metadata.Metadata{}
			}
			st.sent[k] = v
		}
	}
	return st.sock.Send(m)
}

// read feeds the client's messages to Recv until the connection ends, then cancels the
// stream's context: a client that goes away (cancel, Close, crash) ends the handler's context.
func (st *stream) read(cancel context.CancelFunc, finished chan<- struct{}) {
	defer close(finished)
	defer cancel()
	ended := false
	for {
		var m transport.Message
		if err := st.sock.Recv(&m); err != nil {
			if !ended {
				st.rerr = &status.Error{Code: status.Canceled, Message: fmt.Sprintf("the client closed the stream: %v", err)}
				close(st.in)
			}
			return
		}
		if ended {
			continue // nothing is expected after the client's end; ignore it
		}
		if m.Header[wire.Stream] == wire.StreamEnd {
			ended, st.rerr = true, io.EOF
			close(st.in)
			continue
		}
		select {
		case st.in <- &m:
		case <-st.done:
		}
	}
}

// serveStream runs one stream on sock, which it owns until it returns: answer the open, run
// the handler, send the end. finish is called once the handler returned and the end was sent.
func (s *Server) serveStream(sock transport.Socket, m *transport.Message, finish func()) {
	svc, ep, ct, id := m.Header[wire.Service], m.Header[wire.Endpoint], m.Header[wire.ContentType], m.Header[wire.ID]
	fail := func(e *status.Error) {
		e.Service, e.Endpoint = svc, ep
		sock.Send(&transport.Message{Header: map[string]string{wire.ID: id, wire.Stream: wire.StreamEnd, wire.Error: e.Marshal()}})
		finish()
	}
	h := s.handlers[ep]
	switch {
	case svc != s.opts.Name:
		fail(status.New(status.NotFound, "unknown service %q (this node serves %q)", svc, s.opts.Name))
		return
	case h == nil:
		fail(status.New(status.NotFound, "unknown endpoint %q of service %q", ep, svc))
		return
	case h.kind == unary:
		fail(status.New(status.BadRequest, "endpoint %q is not a stream: call it with Call", ep))
		return
	}
	if ct != "" {
		if _, err := s.opts.Codecs.Get(ct); err != nil {
			fail(status.Wrap(status.BadRequest, err, false))
			return
		}
	}
	ctx, cancel := context.WithCancel(s.baseCtx)
	defer cancel()
	if ms, err := strconv.ParseInt(m.Header[wire.Timeout], 10, 64); err == nil && ms > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	resp := &metadata.Response{}
	ctx = metadata.WithResponse(metadata.HeaderContext(ctx, m.Header), resp)
	st := &stream{ctx: ctx, sock: sock, codecs: s.opts.Codecs, ct: ct, resp: resp,
		in: make(chan *transport.Message, 1), done: make(chan struct{})}
	if err := sock.Send(&transport.Message{Header: map[string]string{wire.ID: id, wire.Stream: wire.StreamOpened}}); err != nil {
		finish()
		return
	}
	readerDone := make(chan struct{})
	go st.read(cancel, readerDone)

	err := s.runStream(ctx, h, st, &Request{Service: svc, Endpoint: ep, ContentType: ct, Header: m.Header, Stream: st})
	close(st.done)
	end := &transport.Message{Header: map[string]string{wire.ID: id, wire.Stream: wire.StreamEnd}}
	if err != nil {
		e := s.statusOf(err)
		e.Service, e.Endpoint = svc, ep
		end.Header[wire.Error] = e.Marshal()
	}
	st.send(end)
	finish()
	linger := time.NewTimer(streamLinger)
	defer linger.Stop()
	select {
	case <-readerDone: // the client closed after reading the end
	case <-linger.C:
	case <-s.baseCtx.Done():
	}
}

// runStream reads a server-streaming handler's request and runs the handler chain. It never
// panics.
func (s *Server) runStream(ctx context.Context, h *handler, st *stream, req *Request) (err error) {
	defer func() {
		if r := recover(); r != nil { // a wrapper panicked outside the handler's own recover
			s.opts.Logger.Error("server: panic in stream handler chain", "endpoint", h.name, "panic", r, "stack", string(debug.Stack()))
			err = status.New(status.Internal, "panic: %v", r)
		}
	}()
	if h.kind == serverStream {
		req.Body = h.newRequest()
		if err := st.Recv(req.Body); err != nil {
			if err == io.EOF {
				return status.New(status.BadRequest, "stream %s ended before its request", h.name)
			}
			return err
		}
	}
	return h.fn(ctx, req, nil)
}

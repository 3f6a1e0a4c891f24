// Package client calls services: Call picks a node through the selector, sends the request over
// a pooled transport connection and decodes the response, with metadata both ways and wrappers
// (retry, breaker, metrics) around each attempt.
package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/configd/configd/sdk/go/micro/codec"
	"github.com/configd/configd/sdk/go/micro/internal/wire"
	"github.com/configd/configd/sdk/go/micro/metadata"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/selector"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/transport"
)

// Request is one call as wrappers see it. Next picks the node for an attempt: each attempt
// that calls it gets a node not yet tried in this call, while there is one.
type Request struct {
	Service, Endpoint, ContentType string
	// Body is the request value; Payload its encoding, made once for every attempt.
	Body    any
	Payload []byte
	// Options of the call.
	Options CallOptions
	// Attempt counts attempts, from 1; wrappers that retry increment it.
	Attempt int
	next    selector.Next
	// openCtx bounds the opening of a stream (the request timeout); the stream's own context
	// is the one its StreamFunc gets.
	openCtx context.Context
}

// CallFunc makes one attempt of a call.
type CallFunc func(ctx context.Context, req *Request, rsp any) error

// CallWrapper wraps a CallFunc: middleware for calls. A wrapper that calls its CallFunc again
// retries on another node.
type CallWrapper func(CallFunc) CallFunc

// Client makes calls. It is safe for concurrent use.
type Client struct {
	opts   Options
	pool   *transport.Pool
	call   CallFunc
	stream StreamFunc
	ids    atomic.Uint64
	idp    string
}

// New returns a Client, or an error naming what is wrong with the options.
func New(opts ...Option) (*Client, error) {
	o := Options{Codecs: codec.Default(), RequestTimeout: 5 * time.Second, PoolSize: 8, Logger: slog.Default()}
	for _, f := range opts {
		f(&o)
	}
	if o.Transport == nil {
		return nil, errors.New("client: no transport")
	}
	if o.RequestTimeout <= 0 {
		return nil, fmt.Errorf("client: RequestTimeout must be > 0, got %v", o.RequestTimeout)
	}
	var b [4]byte
	rand.Read(b[:])
	c := &Client{opts: o, pool: transport.NewPool(o.Transport, o.PoolSize), idp: hex.EncodeToString(b[:]) + "-"}
	c.call = c.attempt
	for i := len(o.Wrappers) - 1; i >= 0; i-- {
		c.call = o.Wrappers[i](c.call)
	}
	c.stream = c.openAttempt
	for i := len(o.StreamWrappers) - 1; i >= 0; i-- {
		c.stream = o.StreamWrappers[i](c.stream)
	}
	return c, nil
}

// Options returns the client's options.
func (c *Client) Options() Options { return c.opts }

// Close closes idle connections.
func (c *Client) Close() error { return c.pool.Close() }

// Call calls service's endpoint ("Type.Method") with req and decodes the answer into rsp. The
// request timeout covers every attempt. Metadata in ctx (metadata.NewContext) is sent along.
// Errors are *status.Error: NotFound names the unknown service or endpoint.
func (c *Client) Call(ctx context.Context, service, endpoint string, req, rsp any, opts ...CallOption) error {
	co := CallOptions{RequestTimeout: c.opts.RequestTimeout, ContentType: c.opts.ContentType}
	for _, f := range opts {
		f(&co)
	}
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > co.RequestTimeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, co.RequestTimeout)
		defer cancel()
	}
	ct := co.ContentType
	if ct == "" {
		ct = codec.ContentTypeOf(req)
	}
	cd, err := c.opts.Codecs.Get(ct)
	if err != nil {
		return &status.Error{Code: status.BadRequest, Message: err.Error(), Service: service, Endpoint: endpoint}
	}
	payload, err := codec.MarshalRequest(cd, codec.Envelope{Method: endpoint}, req)
	if err != nil {
		return &status.Error{Code: status.BadRequest, Message: fmt.Sprintf("encode request: %v", err), Service: service, Endpoint: endpoint}
	}
	r := &Request{Service: service, Endpoint: endpoint, ContentType: cd.ContentType(), Body: req, Payload: payload, Options: co, Attempt: 1}
	if len(co.Addresses) > 0 {
		r.next = staticNext(co.Addresses)
	} else {
		if c.opts.Selector == nil {
			return &status.Error{Code: status.Unavailable, Message: "client has no selector and the call no address", Service: service, Endpoint: endpoint}
		}
		next, err := c.opts.Selector.Select(service, co.SelectOptions...)
		if err != nil {
			return &status.Error{Code: selectCode(err), Message: err.Error(), Service: service, Endpoint: endpoint}
		}
		r.next = next
	}
	return c.call(ctx, r, rsp)
}

func staticNext(addrs []string) selector.Next {
	var i atomic.Int64
	return func() (*registry.Node, error) {
		a := addrs[int(i.Add(1)-1)%len(addrs)]
		return &registry.Node{Id: a, Address: a}, nil
	}
}

// attempt picks a node, calls it and reports the outcome to the selector.
func (c *Client) attempt(ctx context.Context, req *Request, rsp any) error {
	if err := ctx.Err(); err != nil {
		return timeoutError(req, err)
	}
	node, err := req.next()
	if err != nil {
		return &status.Error{Code: status.Unavailable, Message: err.Error(), Service: req.Service, Endpoint: req.Endpoint}
	}
	err = c.send(ctx, node.Address, req, rsp)
	if c.opts.Selector != nil && len(req.Options.Addresses) == 0 {
		c.opts.Selector.Mark(req.Service, node, nodeFault(err))
	}
	return err
}

// nodeFault returns err when it says something about the node's health: it could not be
// reached, it timed out, or it refused the call. Application errors leave the node alone.
func nodeFault(err error) error {
	switch status.CodeOf(err) {
	case status.Unavailable, status.Timeout:
		return err
	}
	return nil
}

func timeoutError(req *Request, err error) error {
	return &status.Error{Code: status.Timeout, Message: fmt.Sprintf("call timed out: %v", err),
		Service: req.Service, Endpoint: req.Endpoint, Retryable: req.Options.Idempotent}
}

// send does one request/response on a pooled connection. A reused connection that turns out to
// be closed before the request was written is replaced once by a fresh one.
func (c *Client) send(ctx context.Context, addr string, req *Request, rsp any) error {
	unavailable := func(msg string, err error, retryable bool) error {
		return &status.Error{Code: status.Unavailable, Message: fmt.Sprintf("%s %s: %v", msg, addr, err),
			Service: req.Service, Endpoint: req.Endpoint, Retryable: retryable}
	}
	msg := &transport.Message{Header: map[string]string{
		wire.Service: req.Service, wire.Endpoint: req.Endpoint, wire.ContentType: req.ContentType,
		wire.ID: c.idp + strconv.FormatUint(c.ids.Add(1), 36),
	}, Body: req.Payload}
	if dl, ok := ctx.Deadline(); ok {
		msg.Header[wire.Timeout] = strconv.FormatInt(max(time.Until(dl).Milliseconds(), 1), 10)
	}
	metadata.ContextToHeader(ctx, msg.Header)
	for try := 0; ; try++ {
		sock, reused, err := c.pool.Get(ctx, addr)
		if err != nil {
			if ctx.Err() != nil {
				return timeoutError(req, ctx.Err())
			}
			return unavailable("dial", err, true) // nothing was sent
		}
		stop := context.AfterFunc(ctx, func() { sock.Close() })
		var in transport.Message
		sent := false
		err = sock.Send(msg)
		if errors.Is(err, transport.ErrFrameTooLarge) {
			stop()
			c.pool.Put(addr, sock, true) // refused before writing: the connection is fine
			return &status.Error{Code: status.BadRequest, Message: err.Error(), Service: req.Service, Endpoint: req.Endpoint}
		}
		if err == nil {
			sent = true
			err = sock.Recv(&in)
			if errors.Is(err, transport.ErrRefused) {
				sent = false // the server turned the socket away before any handler saw it
			}
		}
		timedOut := !stop()
		if err != nil {
			sock.Close()
			if timedOut {
				return timeoutError(req, ctx.Err())
			}
			// Unsent, the call surely did not run; sent, it may have, unless it is idempotent.
			safe := !sent || req.Options.Idempotent
			if reused && try == 0 && errors.Is(err, transport.ErrClosed) && safe {
				continue // a stale idle connection: try once on a fresh one
			}
			if sent {
				se := status.Wrap(status.Unavailable, sentError{fmt.Errorf("call %s: %w", addr, err)}, safe)
				se.Service, se.Endpoint = req.Service, req.Endpoint
				return se
			}
			return unavailable("call", err, safe)
		}
		c.pool.Put(addr, sock, true)
		return c.decode(req, &in, rsp)
	}
}

// ErrSent is matched (errors.Is) by the Unavailable error of a call whose connection failed
// after its request was sent: the handler may have run. A gateway answers it 502 Bad Gateway
// rather than 503, since the node, not the service, failed mid-request.
var ErrSent = errors.New("client: the connection failed after the request was sent")

// sentError keeps the message of the error it wraps and matches ErrSent.
type sentError struct{ error }

func (e sentError) Unwrap() error        { return e.error }
func (e sentError) Is(target error) bool { return target == ErrSent }

func (c *Client) decode(req *Request, in *transport.Message, rsp any) error {
	if req.Options.ResponseMetadata != nil {
		*req.Options.ResponseMetadata = metadata.FromHeader(in.Header)
	}
	if e, ok := in.Header[wire.Error]; ok {
		se := status.Unmarshal(e)
		if se.Service == "" {
			se.Service, se.Endpoint = req.Service, req.Endpoint
		}
		if se.Code == status.Timeout && req.Options.Idempotent {
			se.Retryable = true // the node ran out of this attempt's time; another may not
		}
		return se
	}
	cd, err := c.opts.Codecs.Get(in.Header[wire.ContentType])
	if err != nil {
		return &status.Error{Code: status.Internal, Message: fmt.Sprintf("response: %v", err), Service: req.Service, Endpoint: req.Endpoint}
	}
	if _, err := codec.UnmarshalResponse(cd, in.Body, rsp); err != nil {
		return &status.Error{Code: status.Internal, Message: fmt.Sprintf("decode response: %v", err), Service: req.Service, Endpoint: req.Endpoint}
	}
	return nil
}

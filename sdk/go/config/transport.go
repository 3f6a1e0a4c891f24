package config

import (
	"context"

	"github.com/configd/configd/api/configdpb"
)

// A transport opens watch streams to one configd address. Two are built
// in: the HTTP watch stream (api.WatchStreamProtocol, the default: the
// lightest for configd to hold open) and gRPC's Config.Watch (WithGRPC).
// Both carry the same messages.
type transport interface {
	// open starts a watch of the client's prefix after revision since (0:
	// a snapshot first). A watch that configd refuses for a reason it
	// states arrives as a stream whose one message is CANCELED with the
	// code; err is for a connection that failed.
	open(ctx context.Context, since int64) (watchStream, error)
	close()
}

// watchStream is one open watch.
type watchStream interface {
	// Recv returns the next message, waiting for it.
	Recv() (*configdpb.WatchResponse, error)
	// Buffered reports whether Recv can return without waiting.
	Buffered() bool
	Close()
}

// WithGRPC makes the client watch over configd's gRPC API (Config.Watch on
// an HTTP/2 connection) instead of its HTTP watch stream. Both bring the
// same updates; the HTTP stream costs configd less memory per client, gRPC
// goes through proxies and meshes that speak gRPC. WithDialOptions
// applies to gRPC only.
func WithGRPC() Option { return func(o *options) { o.grpc = true } }

func (c *Client) newTransport(addr string) (transport, error) {
	if c.opts.grpc {
		return c.newGRPCTransport(addr)
	}
	return c.newHTTPTransport(addr)
}

// oneMessage is a stream of one message: a watch configd refused.
type oneMessage struct{ m *configdpb.WatchResponse }

func (s *oneMessage) Recv() (*configdpb.WatchResponse, error) {
	if s.m == nil {
		return nil, errStreamEnded
	}
	m := s.m
	s.m = nil
	return m, nil
}

func (s *oneMessage) Buffered() bool { return s.m != nil }
func (s *oneMessage) Close()         {}

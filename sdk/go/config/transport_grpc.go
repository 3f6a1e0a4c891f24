package config

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc"
	gbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
)

// errStreamEnded is a stream that configd closed without an error.
var errStreamEnded = errors.New("configd ended the stream")

// grpcTransport watches over one gRPC connection, one Watch stream per
// watch.
type grpcTransport struct {
	conn           *grpc.ClientConn
	keys, prefixes []string // see options.filter
	id             metadata.MD
}

func (c *Client) newGRPCTransport(addr string) (transport, error) {
	if err := c.checkTokenTransport(addr); err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, c.dialOptions()...)
	if err != nil {
		return nil, err
	}
	keys, prefixes := c.opts.filter()
	md := metadata.MD{}
	for k, v := range c.opts.identityHeaders() {
		md.Set(k, v...)
	}
	return &grpcTransport{conn: conn, keys: keys, prefixes: prefixes, id: md}, nil
}

func (c *Client) dialOptions() []grpc.DialOption {
	connect := max(c.opts.timeout/time.Duration(len(c.opts.addrs)), time.Second)
	creds := insecure.NewCredentials()
	if c.opts.tls != nil {
		// gRPC needs ALPN h2: a config that also offers http/1.1 (one
		// given to an http.Transport before) would get HTTP/1.1 from
		// configd, which then routes the connection to its HTTP API.
		cfg := c.opts.tls.Clone()
		cfg.NextProtos = nil
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           gbackoff.Config{BaseDelay: backoffMin, Multiplier: 2, Jitter: 0.2, MaxDelay: backoffMax},
			MinConnectTimeout: connect,
		}),
	}
	opts = append(opts, tokenDialOptions(c.opts.token)...)
	return append(opts, c.opts.dial...)
}

func (t *grpcTransport) close() { t.conn.Close() }

// grpcWatchID is the id of the one watch of each stream.
const grpcWatchID = 1

func (t *grpcTransport) open(ctx context.Context, since int64) (watchStream, error) {
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(ctx, t.id))
	stream, err := configdpb.NewConfigClient(t.conn).Watch(ctx)
	if err != nil {
		cancel()
		return nil, grpcError(err)
	}
	err = stream.Send(&configdpb.WatchRequest{Request: &configdpb.WatchRequest_Create{Create: &configdpb.WatchCreate{
		WatchId: grpcWatchID, Keys: t.keys, Prefixes: t.prefixes, Since: since}}})
	if err != nil {
		cancel()
		return nil, grpcError(err)
	}
	s := &grpcStream{cancel: cancel, msgs: make(chan *configdpb.WatchResponse, maxGroup), done: make(chan struct{})}
	go s.receive(ctx, stream)
	return s, nil
}

// grpcCodes are the api error codes of the gRPC codes that refuse a token.
var grpcCodes = map[codes.Code]string{
	codes.Unauthenticated:  api.CodeUnauthenticated,
	codes.PermissionDenied: api.CodeForbidden,
}

// grpcError is err, or the refusal (see refusal) it carries as a gRPC
// status.
func grpcError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if r := refusal(grpcCodes[st.Code()], st.Message()); r != nil {
		return r
	}
	return err
}

// grpcStream receives in its own goroutine, so that Buffered can tell
// what has arrived.
type grpcStream struct {
	cancel context.CancelFunc
	msgs   chan *configdpb.WatchResponse
	done   chan struct{} // closed when receive returns; err is then set
	err    error
}

func (s *grpcStream) receive(ctx context.Context, stream configdpb.Config_WatchClient) {
	defer close(s.done)
	for {
		m, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errStreamEnded
			}
			s.err = grpcError(err)
			return
		}
		if m.GetWatchId() != grpcWatchID {
			continue // not our watch
		}
		select {
		case s.msgs <- m:
		case <-ctx.Done():
			s.err = ctx.Err()
			return
		}
	}
}

func (s *grpcStream) Recv() (*configdpb.WatchResponse, error) {
	select {
	case m := <-s.msgs:
		return m, nil
	case <-s.done:
		// Messages received before the error come first.
		select {
		case m := <-s.msgs:
			return m, nil
		default:
			return nil, s.err
		}
	}
}

func (s *grpcStream) Buffered() bool { return len(s.msgs) > 0 }

func (s *grpcStream) Close() {
	s.cancel()
	<-s.done
}

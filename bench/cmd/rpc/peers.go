package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	gmbroker "go-micro.dev/v4/broker"
	gmclient "go-micro.dev/v4/client"
	gmlogger "go-micro.dev/v4/logger"
	gmregistry "go-micro.dev/v4/registry"
	gmserver "go-micro.dev/v4/server"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/bench/internal/gomicro"
	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/transport"
	tgrpc "github.com/configd/configd/sdk/go/micro/transport/grpc"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

// The peers, in the order of the tables.
const (
	peerTCP      = "micro tcp"
	peerGRPC     = "micro grpc"
	peerWrapped  = "micro tcp + wrappers"
	peerSampled  = "micro tcp + wrappers, 1% traced"
	peerProvider = "micro tcp + wrappers, 1% traced by the provider"
	peerGRPCGo   = "grpc-go"
	peerGoMicro  = "go-micro v4"
	baselinePeer = peerGRPCGo
)

var peerNames = []string{peerTCP, peerGRPC, peerWrapped, peerSampled, peerProvider, peerGRPCGo, peerGoMicro}

// traceRatio is the share of calls peerSampled and peerProvider trace: a new trace is sampled
// with this probability, a call inside a trace follows its parent's decision (the sampler
// OpenTelemetry recommends for busy services). peerSampled samples in the Tracing wrapper
// (wrapper.WithSampler), which starts no span for the calls it drops; peerProvider in the
// tracer provider, which starts a span that does not record for them.
const traceRatio = 0.01

// message is the request every peer sends: a configd ListResponse of four keys (strings,
// bytes, varints, a repeated nested message), 600 bytes protobuf-encoded (checked by the test).
func message() *configdpb.ListResponse {
	kv := func(i int, key, value string) *configdpb.KeyValue {
		return &configdpb.KeyValue{Key: key, Value: []byte(value), ContentType: "application/json",
			CreateRev: int64(1_000_000 + i), ModRev: int64(1_204_000 + 17*i), Version: int64(3 + i)}
	}
	return &configdpb.ListResponse{Rev: 1_204_117, Kvs: []*configdpb.KeyValue{
		kv(0, "services/checkout/payments/retry-policy", `{"attempts":4,"backoff":"250ms","max_backoff":"5s","jitter":0.2,"on":["unavailable"]}`),
		kv(1, "services/checkout/payments/timeouts", `{"connect":"500ms","request":"3s","idle":"90s","keepalive":"30s","tls_handshake":"2s"}`),
		kv(2, "services/checkout/flags/new-cart", `{"enabled":true,"rollout":0.25,"regions":["eu-west-1","us-east-1"],"owner":"cart"}`),
		kv(3, "services/checkout/limits/orders-per-minute", `{"default":600,"burst":120,"per_tenant":{"acme":2400}}`),
	}}
}

// Echo is the handler of micro and go-micro: it answers with the request's fields.
type Echo struct{}

// Say echoes the request.
func (Echo) Say(_ context.Context, req *configdpb.ListResponse, rsp *configdpb.ListResponse) error {
	rsp.Kvs, rsp.Rev = req.Kvs, req.Rev
	return nil
}

// check tells whether rsp echoes req: cheaply during the benchmark (the revision and the last
// value, which come last on the wire), fully (proto.Equal) when strict.
func check(req, rsp *configdpb.ListResponse, strict bool) error {
	if strict {
		if !proto.Equal(req, rsp) {
			return fmt.Errorf("echo: the answer differs from the request")
		}
		return nil
	}
	n := len(req.Kvs)
	if rsp.Rev != req.Rev || len(rsp.Kvs) != n || len(rsp.Kvs[n-1].Value) != len(req.Kvs[n-1].Value) {
		return fmt.Errorf("echo: the answer differs from the request")
	}
	return nil
}

// callFunc makes one echo call of req.
type callFunc func(ctx context.Context, req *configdpb.ListResponse) error

type peer struct {
	name string
	call callFunc
	stop func()
}

// peerOptions are the settings every peer is built with.
type peerOptions struct {
	pool   int  // idle connections kept by the clients that pool them (micro, go-micro)
	strict bool // check each answer with proto.Equal
}

func newPeer(name string, o peerOptions) (*peer, error) {
	switch name {
	case peerTCP:
		return microPeer(name, tcp.New(), nil, o)
	case peerGRPC:
		return microPeer(name, tgrpc.New(), nil, o)
	case peerWrapped:
		return microPeer(name, tcp.New(), wrapAll, o)
	case peerSampled:
		return microPeer(name, tcp.New(), wrapSampled, o)
	case peerProvider:
		return microPeer(name, tcp.New(), wrapProvider, o)
	case peerGRPCGo:
		return grpcPeer(o)
	case peerGoMicro:
		return goMicroPeer(o)
	}
	return nil, fmt.Errorf("unknown peer %q (one of %q)", name, peerNames)
}

// nopProcessor is a span processor that only counts the spans: the SDK still samples, records
// and ends every span (attributes, events, status), nothing is exported.
type nopProcessor struct{ ended *atomic.Int64 }

func (nopProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p nopProcessor) OnEnd(sdktrace.ReadOnlySpan)                   { p.ended.Add(1) }
func (nopProcessor) Shutdown(context.Context) error                  { return nil }
func (nopProcessor) ForceFlush(context.Context) error                { return nil }

// wrapSet is what the wrappers of one wrapped peer record into, and how it samples traces: the
// tracer provider's sampler, and the Tracing wrapper's (wrapper.WithSampler), if any.
type wrapSet struct {
	metrics        *prometheus.Registry
	spansEnded     atomic.Int64
	sampler        sdktrace.Sampler
	wrapperSampler sdktrace.Sampler
}

// What the wrappers of the three wrapped peers saw (checked by the test).
var (
	wrapAll     = &wrapSet{metrics: prometheus.NewRegistry(), sampler: sdktrace.AlwaysSample()}
	wrapSampled = &wrapSet{metrics: prometheus.NewRegistry(), sampler: sdktrace.ParentBased(sdktrace.AlwaysSample()),
		wrapperSampler: sdktrace.ParentBased(sdktrace.TraceIDRatioBased(traceRatio))}
	wrapProvider = &wrapSet{metrics: prometheus.NewRegistry(), sampler: sdktrace.ParentBased(sdktrace.TraceIDRatioBased(traceRatio))}
)

// wrappers returns every built-in wrapper with the rate limits off, as issue 6 measures them:
// client metrics → rate limit → breaker → tracing, server metrics → rate limit → tracing. The
// limiters are in the chain at an infinite rate, which passes every call without reading the
// clock (a finite rate costs a clock read and a compare-and-swap a call: see
// BenchmarkBreakerAndLimiterCall in sdk/go/micro/wrapper).
func (ws *wrapSet) wrappers() ([]client.CallWrapper, []server.HandlerWrapper, func(), error) {
	m, err := wrapper.NewMetrics(ws.metrics)
	if err != nil {
		return nil, nil, nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(nopProcessor{&ws.spansEnded}), sdktrace.WithSampler(ws.sampler))
	topts := []wrapper.TracingOption{wrapper.WithTracerProvider(tp)}
	if ws.wrapperSampler != nil {
		topts = append(topts, wrapper.WithSampler(ws.wrapperSampler))
	}
	tr := wrapper.NewTracing(topts...)
	climit, err := wrapper.NewLimiter(math.Inf(1), 1)
	if err != nil {
		return nil, nil, nil, err
	}
	slimit, err := wrapper.NewLimiter(math.Inf(1), 1)
	if err != nil {
		return nil, nil, nil, err
	}
	cw := []client.CallWrapper{m.CallWrapper(), climit.CallWrapper(false), wrapper.NewBreaker().Wrapper(), tr.CallWrapper()}
	sw := []server.HandlerWrapper{m.HandlerWrapper(), slimit.HandlerWrapper(false), tr.HandlerWrapper()}
	return cw, sw, func() { tp.Shutdown(context.Background()) }, nil
}

// microPeer is the core's server and client on tr, with ws's wrappers unless ws is nil.
func microPeer(name string, tr transport.Transport, ws *wrapSet, o peerOptions) (*peer, error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sopts := []server.Option{server.Name("echo"), server.Transport(tr), server.GracePeriod(0), server.Logger(quiet)}
	copts := []client.Option{client.Transport(tr), client.PoolSize(o.pool), client.Logger(quiet)}
	stopTracing := func() {}
	if ws != nil {
		cw, sw, stop, err := ws.wrappers()
		if err != nil {
			return nil, err
		}
		sopts = append(sopts, server.WrapHandler(sw...))
		copts = append(copts, client.Wrap(cw...))
		stopTracing = stop
	}
	srv, err := server.New(sopts...)
	if err != nil {
		return nil, err
	}
	if err := srv.Handle(Echo{}); err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	c, err := client.New(copts...)
	if err != nil {
		return nil, err
	}
	addr := srv.Addr()
	return &peer{
		name: name,
		call: func(ctx context.Context, req *configdpb.ListResponse) error {
			var rsp configdpb.ListResponse
			if err := c.Call(ctx, "echo", "Echo.Say", req, &rsp, client.WithAddress(addr)); err != nil {
				return err
			}
			return check(req, &rsp, o.strict)
		},
		stop: func() {
			c.Close()
			srv.Stop(context.Background())
			if cl, ok := tr.(io.Closer); ok {
				cl.Close()
			}
			stopTracing()
		},
	}, nil
}

const grpcMethod = "/bench.Echo/Say"

// grpcPeer is plain grpc-go with default settings: one ClientConn, a unary method whose handler
// returns the decoded request.
func grpcPeer(o peerOptions) (*peer, error) {
	srv := grpc.NewServer()
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "bench.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Say", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(configdpb.ListResponse)
			if err := dec(in); err != nil {
				return nil, err
			}
			return in, nil
		}}},
	}, struct{}{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go srv.Serve(lis)
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &peer{
		name: peerGRPCGo,
		call: func(ctx context.Context, req *configdpb.ListResponse) error {
			var rsp configdpb.ListResponse
			if err := cc.Invoke(ctx, grpcMethod, req, &rsp); err != nil {
				return err
			}
			return check(req, &rsp, o.strict)
		},
		stop: func() { cc.Close(); srv.Stop() },
	}, nil
}

// goMicroPeer is go-micro v4's rpc server and client with default settings except a memory
// registry and broker, application/protobuf, the pool size and no retries; its http transport
// carries gomicro's mend of the server's request-ID fault.
func goMicroPeer(o peerOptions) (*peer, error) {
	gmlogger.DefaultLogger = gmlogger.NewLogger(gmlogger.WithLevel(gmlogger.ErrorLevel), gmlogger.WithOutput(io.Discard))
	reg := gmregistry.NewMemoryRegistry()
	tr := gomicro.HTTPTransport() // go-micro's http transport, its server's request-ID fault mended
	srv := gmserver.NewRPCServer(gmserver.Name("echo"), gmserver.Address("127.0.0.1:0"), gmserver.Registry(reg),
		gmserver.Transport(tr), gmserver.Broker(gmbroker.NewMemoryBroker()))
	if err := srv.Handle(srv.NewHandler(Echo{})); err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	addr := srv.Options().Address
	c := gmclient.NewClient(gmclient.Registry(reg), gmclient.Transport(tr), gmclient.PoolSize(o.pool),
		gmclient.ContentType("application/protobuf"), gmclient.RequestTimeout(5*time.Second), gmclient.Retries(0))
	return &peer{
		name: peerGoMicro,
		call: func(ctx context.Context, req *configdpb.ListResponse) error {
			var rsp configdpb.ListResponse
			if err := c.Call(ctx, c.NewRequest("echo", "Echo.Say", req), &rsp, gmclient.WithAddress(addr)); err != nil {
				return err
			}
			return check(req, &rsp, o.strict)
		},
		stop: func() { srv.Stop() },
	}, nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	gmapi "go-micro.dev/v4/api/handler"
	gmrpc "go-micro.dev/v4/api/handler/rpc"
	gmresolver "go-micro.dev/v4/api/resolver"
	gmvpath "go-micro.dev/v4/api/resolver/vpath"
	gmrouter "go-micro.dev/v4/api/router"
	gmregrouter "go-micro.dev/v4/api/router/registry"
	gmbroker "go-micro.dev/v4/broker"
	gmclient "go-micro.dev/v4/client"
	gmlogger "go-micro.dev/v4/logger"
	gmregistry "go-micro.dev/v4/registry"
	gmserver "go-micro.dev/v4/server"
	gmtransport "go-micro.dev/v4/transport"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/configd/configd/bench/internal/examplepb"
	"github.com/configd/configd/bench/internal/gomicro"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/transport"
	tgrpc "github.com/configd/configd/sdk/go/micro/transport/grpc"
	"github.com/configd/configd/sdk/go/micro/transport/tcp"
)

// A role is one process of a stack: a backend service or a gateway. It
// listens on a loopback port of its own, tells it on stdout ("listening
// ADDR"), and serves until its stdin closes.
type role func(ctx context.Context, o roleOptions) (addr string, stop func(), err error)

// roleOptions are a role's flags.
type roleOptions struct {
	backend     string // the gateway's backend address
	transport   string // the RPC core's transport: tcp or grpc
	contentType string // the codec the gateway calls the backend with
	policy      bool   // the policy chain in front of the gateway
}

var roles = map[string]role{
	"micro-backend":   microBackend,
	"micro-api":       microAPI,
	"grpc-backend":    grpcBackend,
	"grpc-gateway":    grpcGateway,
	"gomicro-backend": goMicroBackend,
	"gomicro-api":     goMicroAPI,
}

// Example is the talk's example handler, on every RPC stack.
type Example struct{}

// Call answers "Hello NAME".
func (Example) Call(_ context.Context, req *examplepb.Request, rsp *examplepb.Response) error {
	rsp.Msg = "Hello " + req.Name
	return nil
}

type grpcExample struct {
	examplepb.UnimplementedExampleServer
}

func (grpcExample) Call(_ context.Context, req *examplepb.Request) (*examplepb.Response, error) {
	return &examplepb.Response{Msg: "Hello " + req.Name}, nil
}

// microTransport is the RPC core's transport of that name.
func microTransport(name string) (transport.Transport, error) {
	switch name {
	case "", "tcp":
		return tcp.New(), nil
	case "grpc":
		return tgrpc.New(), nil
	}
	return nil, fmt.Errorf("unknown transport %q (tcp or grpc)", name)
}

// microBackend is the RPC core's server (sdk/go/micro/server) serving
// Example.Call on -transport, every codec of the core.
func microBackend(_ context.Context, o roleOptions) (string, func(), error) {
	tr, err := microTransport(o.transport)
	if err != nil {
		return "", nil, err
	}
	srv, err := server.New(server.Name("example"), server.Address("127.0.0.1:0"), server.Transport(tr),
		server.GracePeriod(0), server.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return "", nil, err
	}
	if err := srv.Handle(Example{}); err != nil {
		return "", nil, err
	}
	if err := srv.Start(); err != nil {
		return "", nil, err
	}
	return srv.Addr(), func() { srv.Stop(context.Background()) }, nil
}

// grpcBackend is grpc-go serving Example.
func grpcBackend(context.Context, roleOptions) (string, func(), error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	s := grpc.NewServer()
	examplepb.RegisterExampleServer(s, grpcExample{})
	go s.Serve(lis)
	return lis.Addr().String(), s.Stop, nil
}

// grpcGateway is grpc-gateway v2's reverse proxy (example.yaml's rules:
// POST and GET /example/call) in front of the grpc-go backend, over one
// ClientConn as its documentation sets it up.
func grpcGateway(ctx context.Context, o roleOptions) (string, func(), error) {
	conn, err := grpc.NewClient(o.backend, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", nil, err
	}
	// A protobuf body is read and answered as protobuf (the "protobuf body" row); JSON as the
	// default.
	mux := runtime.NewServeMux(runtime.WithMarshalerOption("application/protobuf", &runtime.ProtoMarshaller{}))
	if err := examplepb.RegisterExampleHandler(ctx, mux, conn); err != nil {
		return "", nil, err
	}
	addr, stop, err := serveHTTP(mux)
	if err != nil {
		return "", nil, err
	}
	return addr, func() { stop(); conn.Close() }, nil
}

func quietGoMicro() {
	gmlogger.DefaultLogger = gmlogger.NewLogger(gmlogger.WithLevel(gmlogger.ErrorLevel), gmlogger.WithOutput(io.Discard))
}

// goMicroBackend is go-micro v4's rpc server (its default http transport,
// with gomicro's mend of the server's request-ID fault) serving Example.Call.
func goMicroBackend(context.Context, roleOptions) (string, func(), error) {
	quietGoMicro()
	srv := gmserver.NewRPCServer(gmserver.Name("example"), gmserver.Address("127.0.0.1:0"),
		gmserver.Registry(gmregistry.NewMemoryRegistry()), gmserver.Transport(gomicro.HTTPTransport()),
		gmserver.Broker(gmbroker.NewMemoryBroker()))
	if err := srv.Handle(srv.NewHandler(Example{})); err != nil {
		return "", nil, err
	}
	if err := srv.Start(); err != nil {
		return "", nil, err
	}
	return srv.Options().Address, func() { srv.Stop() }, nil
}

// goMicroAPI is go-micro v4's API gateway: its registry router (path
// resolver, empty namespace) and rpc handler, with the backend's node and
// its declared endpoint in a memory registry, as `micro api` with
// `--handler=rpc` sets them up.
func goMicroAPI(_ context.Context, o roleOptions) (string, func(), error) {
	quietGoMicro()
	reg := gmregistry.NewMemoryRegistry()
	if err := reg.Register(&gmregistry.Service{Name: "example", Version: "latest",
		Nodes: []*gmregistry.Node{{Id: "example-1", Address: o.backend,
			Metadata: map[string]string{"protocol": "mucp", "transport": "http", "server": "mucp", "registry": "memory"}}},
		// The endpoint declared as the talk advises (its path rule would call "example.call").
		Endpoints: []*gmregistry.Endpoint{{Name: "Example.Call", Metadata: gmrouter.Encode(&gmrouter.Endpoint{
			Name: "Example.Call", Handler: "rpc", Method: []string{"POST", "GET"}, Path: []string{"/example/call"}})}},
	}); err != nil {
		return "", nil, err
	}
	rt := gmregrouter.NewRouter(gmrouter.WithRegistry(reg), gmrouter.WithHandler("rpc"),
		gmrouter.WithResolver(gmvpath.NewResolver(gmresolver.WithNamespace(gmresolver.StaticNamespace("")))))
	// The router loads the declared endpoints in a goroutine of its own: ready once it has.
	probe, _ := http.NewRequest(http.MethodPost, "http://gateway/example/call", nil)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := rt.(interface {
			Endpoint(*http.Request) (*gmrouter.Route, error)
		}).Endpoint(probe); err == nil {
			break
		} else if time.Now().After(deadline) {
			rt.Stop()
			return "", nil, fmt.Errorf("go-micro's router has not loaded the endpoint: %w", err)
		}
	}
	c := gmclient.NewClient(gmclient.Registry(reg), gmclient.Transport(gmtransport.NewHTTPTransport()),
		gmclient.RequestTimeout(5*time.Second), gmclient.Retries(0))
	h := gmrpc.NewHandler(gmapi.WithRouter(rt), gmapi.WithClient(c))
	addr, stop, err := serveHTTP(h)
	if err != nil {
		return "", nil, err
	}
	return addr, func() { stop(); rt.Stop() }, nil
}

// serveHTTP serves h on a loopback port.
func serveHTTP(h http.Handler) (string, func(), error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Println("serve:", err)
		}
	}()
	return lis.Addr().String(), func() { s.Close() }, nil
}

package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/consulapi"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/etcdapi"
	"github.com/configd/configd/server/grpcapi"
	"github.com/configd/configd/server/httpapi"
	"github.com/configd/configd/server/watchwire"
)

// APIConfig says how APIs serve.
type APIConfig struct {
	// Logger logs errors and the connections the port mux refuses
	// (default slog.Default()).
	Logger *slog.Logger
	// Auth and Limits are shared by both doors, so that a token and a
	// watch count the same over either; nil leaves each off.
	Auth   *authz.Auth
	Limits *authz.Limits
	// TLS, when set, is terminated by the port mux (see serverTLS).
	TLS *tls.Config
	// HTTP and GRPC are more options of each door.
	HTTP []httpapi.Option
	GRPC []grpcapi.Option
	// Consul are more options of the Consul door (ServeConsul).
	Consul []consulapi.Option
	// Etcd are more options of the etcd API (etcdapi.WithKeyPrefix,
	// etcdapi.WithCluster on a replica).
	Etcd []etcdapi.Option
	// Metrics are more collectors of the daemon's, served at /metrics
	// with the doors' (the rollouts' driver).
	Metrics []prometheus.Collector
}

// APIs are configd's two doors on one port: the HTTP API with the web UI
// (httpapi) and the gRPC API (grpcapi), each served by its native server
// (there is one gRPC server: the HTTP handler serves no gRPC), and the
// port mux that routes each connection to its server (portMux). They
// share one Prometheus registry, served at /metrics.
type APIs struct {
	logger *slog.Logger
	tls    *tls.Config
	http   *http.Server
	grpc   *grpc.Server
	mux    *portMux
	served chan error
	// consul is the Consul door's server, nil until ServeConsul.
	consul     *http.Server
	newConsul  func() http.Handler
	consulDone chan struct{}
	// stopLeases stops the etcd API's leases' expiry.
	stopLeases func()
}

// NewAPIs returns the APIs over c. Serve starts them.
func NewAPIs(c *core.Core, cfg APIConfig) *APIs {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(cfg.Metrics...)
	wm := watchwire.NewMetrics(reg)
	h := httpapi.NewHandler(c.Store, append([]httpapi.Option{httpapi.WithLogger(cfg.Logger), httpapi.WithHub(c.Hub),
		httpapi.WithMetrics(reg, wm), httpapi.WithAuth(cfg.Auth), httpapi.WithLimits(cfg.Limits)}, cfg.HTTP...)...)
	gopts := []grpcapi.Option{grpcapi.WithLogger(cfg.Logger), grpcapi.WithMetrics(wm), grpcapi.WithAuth(cfg.Auth), grpcapi.WithLimits(cfg.Limits),
		grpcapi.WithServerOptions(etcdapi.ServerOptions()...)}
	if cfg.TLS != nil {
		// The mux has done the handshake; gRPC learns the connection's TLS
		// state (and client certificate) from it.
		gopts = append(gopts, grpcapi.WithServerOptions(grpc.Creds(handshakenTLS{})))
	}
	gs := grpcapi.New(c.Store, c.Hub, append(gopts, cfg.GRPC...)...)
	// etcd's v3 API beside configd's own, on the same gRPC server.
	stopLeases := etcdapi.Register(gs, c.Store, c.Hub, append([]etcdapi.Option{etcdapi.WithLogger(cfg.Logger), etcdapi.WithAuth(cfg.Auth),
		etcdapi.WithLimits(cfg.Limits), etcdapi.WithMetrics(wm)}, cfg.Etcd...)...)
	consul := append([]consulapi.Option{consulapi.WithLogger(cfg.Logger), consulapi.WithAuth(cfg.Auth),
		consulapi.WithLimits(cfg.Limits), consulapi.WithMetrics(reg)}, cfg.Consul...)
	return &APIs{
		newConsul: func() http.Handler { return consulapi.New(c.Store, c.Hub, consul...) },
		logger:    cfg.Logger,
		tls:       cfg.TLS,
		http: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		},
		grpc:       gs,
		served:     make(chan error, 1),
		stopLeases: stopLeases,
	}
}

// Serve serves the APIs on ln until Stop or Close, and returns at once;
// Served reports the end of the HTTP server.
func (a *APIs) Serve(ln net.Listener) {
	a.mux = newPortMux(ln)
	a.mux.tls, a.mux.logger = a.tls, a.logger
	go func() { a.served <- a.http.Serve(a.mux.http) }()
	go a.grpc.Serve(a.mux.grpc)
	go a.mux.serve()
}

// ServeConsul serves the Consul door (package consulapi) on ln, a port of
// its own, with the APIs' TLS when it is on, until Stop, Drain or Close;
// it returns at once.
func (a *APIs) ServeConsul(ln net.Listener) {
	if a.tls != nil {
		ln = tls.NewListener(ln, a.tls)
	}
	a.consul = &http.Server{
		Handler:           a.newConsul(),
		ReadHeaderTimeout: a.http.ReadHeaderTimeout,
		IdleTimeout:       a.http.IdleTimeout,
		ErrorLog:          a.http.ErrorLog,
	}
	a.consulDone = make(chan struct{})
	go func() {
		defer close(a.consulDone)
		if err := a.consul.Serve(ln); err != nil && err != http.ErrServerClosed {
			a.logger.Error("the Consul API stopped serving", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// Served receives what the HTTP server's Serve returned
// (http.ErrServerClosed once drained or closed).
func (a *APIs) Served() <-chan error { return a.served }

// Stop stops accepting connections on the port (and on the Consul
// door's).
func (a *APIs) Stop() {
	a.mux.close()
	if a.consul != nil {
		// Shutdown closes the listener; the requests in flight finish
		// in Drain.
		go func() { _ = a.consul.Shutdown(context.Background()) }()
	}
}

// Drain lets the requests and calls in flight finish, until ctx ends, then
// closes the connections left; watches never end by themselves: close the
// hub first.
func (a *APIs) Drain(ctx context.Context) {
	a.mux.close()
	a.stopLeases()
	grpcDone := make(chan struct{})
	go func() { a.grpc.GracefulStop(); close(grpcDone) }()
	if a.consul != nil {
		if err := a.consul.Shutdown(ctx); err != nil {
			_ = a.consul.Close()
		}
		<-a.consulDone
	}
	if err := a.http.Shutdown(ctx); err != nil {
		a.logger.Warn("in-flight requests did not finish in time; closing their connections", "err", err)
		_ = a.http.Close()
	}
	select {
	case <-grpcDone:
	case <-ctx.Done():
		a.logger.Warn("gRPC calls did not finish in time; closing their connections")
		a.grpc.Stop()
		<-grpcDone
	}
	<-a.served // http.ErrServerClosed
}

// Close closes the port and every connection at once (but the watch
// streams, which have left the HTTP server: close the hub to end them).
func (a *APIs) Close() {
	a.mux.close()
	a.stopLeases()
	a.grpc.Stop()
	_ = a.http.Close()
	if a.consul != nil {
		_ = a.consul.Close()
	}
}

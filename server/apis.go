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
	"github.com/configd/configd/server/core"
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
	gopts := []grpcapi.Option{grpcapi.WithLogger(cfg.Logger), grpcapi.WithMetrics(wm), grpcapi.WithAuth(cfg.Auth), grpcapi.WithLimits(cfg.Limits)}
	if cfg.TLS != nil {
		// The mux has done the handshake; gRPC learns the connection's TLS
		// state (and client certificate) from it.
		gopts = append(gopts, grpcapi.WithServerOptions(grpc.Creds(handshakenTLS{})))
	}
	return &APIs{
		logger: cfg.Logger,
		tls:    cfg.TLS,
		http: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		},
		grpc:   grpcapi.New(c.Store, c.Hub, append(gopts, cfg.GRPC...)...),
		served: make(chan error, 1),
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

// Served receives what the HTTP server's Serve returned
// (http.ErrServerClosed once drained or closed).
func (a *APIs) Served() <-chan error { return a.served }

// Stop stops accepting connections on the port.
func (a *APIs) Stop() { a.mux.close() }

// Drain lets the requests and calls in flight finish, until ctx ends, then
// closes the connections left; watches never end by themselves: close the
// hub first.
func (a *APIs) Drain(ctx context.Context) {
	a.mux.close()
	grpcDone := make(chan struct{})
	go func() { a.grpc.GracefulStop(); close(grpcDone) }()
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
	a.grpc.Stop()
	_ = a.http.Close()
}

package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/grpcapi"
	"github.com/configd/configd/server/watchwire"
)

// Run runs the daemon until ctx is done: it prepares the data dir, opens
// the store, serves the HTTP API on cfg.HTTPAddr and logs "listening" with
// the bound address (addr=127.0.0.1:43567 with port 0). When ctx is done it
// stops accepting connections, lets in-flight requests finish (for at most
// cfg.ShutdownTimeout), then closes the store, and returns nil.
//
// Errors are one line that says what to fix: a data dir that cannot be
// used, one in use by another configd, an address that cannot be bound.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Certificates are read before anything else is done, so that a bad
	// file fails at once.
	tlsCfg, err := serverTLS(cfg)
	if err != nil {
		return err
	}
	// The registry configd registers in (none by default), built before
	// anything else so that a bad one fails at once; see registry.go.
	announce, err := newAnnouncer(cfg, logger)
	if err != nil {
		return err
	}
	defer announce.close(cfg.ShutdownTimeout)
	dbPath, err := prepareDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	masterKey, err := cfg.LoadMasterKey()
	if err != nil {
		return err
	}
	logger.Info("configd starting", "version", Version(), "data_dir", cfg.DataDir, "db", dbPath,
		"max_value_size", cfg.MaxValueSize, "tls", tlsMode(cfg))
	warnDataDirMode(cfg.DataDir, logger)
	if cfg.DebugAddr != "" {
		stopDebug, err := startDebug(cfg.DebugAddr, logger)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	// The store may keep the context it was opened with for its own
	// lifetime; it must outlive ctx, which ends when shutdown begins, and
	// be cancelled only if ctx ends while Open is still working.
	openCtx, cancelOpen := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelOpen()
	stopWatch := context.AfterFunc(ctx, cancelOpen)
	layers, err := layerOrder(cfg.Sources)
	if err != nil {
		return err
	}
	c, err := core.Open(openCtx, dbPath, core.WithStoreOptions(audit.WithMaxValueSize(cfg.MaxValueSize), audit.WithLogger(logger),
		audit.WithRetention(cfg.HistoryKeepRevisions, cfg.HistoryKeepAge), audit.WithMasterKey(masterKey),
		audit.WithLayers(layers...)))
	stopWatch()
	switch {
	case errors.Is(err, audit.ErrLocked):
		return fmt.Errorf("data dir %s is in use by another configd", cfg.DataDir)
	case errors.Is(err, audit.ErrSchemaTooNew):
		return fmt.Errorf("data dir %s holds a database written by a newer configd; run that version or newer", cfg.DataDir)
	case errors.Is(err, audit.ErrNoMasterKey), errors.Is(err, audit.ErrWrongMasterKey):
		return fmt.Errorf("data dir %s: %w; %s", cfg.DataDir, err, masterKeyHint)
	case errors.Is(err, audit.ErrStateMismatch):
		return fmt.Errorf("refusing to start: %w; %s", err, RestoreHint(cfg.DataDir))
	case err != nil:
		return fmt.Errorf("open database %s: %w", dbPath, err)
	}
	st, hub := c.Store, c.Hub
	// Sources run until shutdown begins; one whose backend is down starts
	// degraded and catches up later.
	srcCtx, stopSources := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSources()
	sources, err := startSources(srcCtx, st, cfg.Sources, logger)
	if err != nil {
		closeStore(st, logger)
		return err
	}
	if len(cfg.Sources) > 0 {
		logger.Info("layers", "order", strings.Join(layers, " < "))
	}
	reg := prometheus.NewRegistry()
	wm := watchwire.NewMetrics(reg)
	auth, err := startAuth(ctx, cfg, st, logger)
	if err != nil {
		stopSources()
		sources.close()
		closeStore(st, logger)
		return err
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		stopSources()
		sources.close()
		closeStore(st, logger)
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}

	limits := cfg.Limits() // one for HTTP and gRPC: a watch counts the same over both
	var draining atomic.Bool
	srv := &http.Server{
		Handler: NewHandler(st,
			WithLogger(logger),
			WithReadiness(func(context.Context) error {
				if draining.Load() {
					return errors.New("shutting down")
				}
				return nil
			}),
			WithHub(hub),
			withSharedMetrics(reg, wm),
			withSources(sources),
			WithAuth(auth),
			WithLimits(limits),
			WithBodyReadTimeout(cfg.BodyReadTimeout),
		),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// gRPC shares the port: connections that open with the HTTP/2
	// preface (gRPC clients) go to the native gRPC server, the others to
	// the HTTP server. With TLS the mux terminates it and routes by ALPN
	// (see portMux).
	mux := newPortMux(ln)
	mux.tls = tlsCfg
	mux.logger = logger
	if tlsCfg == nil && !isLoopbackAddr(cfg.HTTPAddr) {
		logger.Warn("TLS is off on " + cfg.HTTPAddr + ", which is not a loopback address: tokens and configuration cross the network in clear text; set --tls-cert and --tls-key (see docs/security.md)")
	}
	grpcOpts := []grpcapi.Option{grpcapi.WithLogger(logger), grpcapi.WithMetrics(wm), grpcapi.WithAuth(auth), grpcapi.WithLimits(limits)}
	if tlsCfg != nil {
		// The mux has done the handshake; gRPC learns the connection's TLS
		// state (and client certificate) from it.
		grpcOpts = append(grpcOpts, grpcapi.WithServerOptions(grpc.Creds(handshakenTLS{})))
	}
	gs := grpcapi.New(st, hub, grpcOpts...)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(mux.http) }()
	go gs.Serve(mux.grpc)
	go mux.serve()
	logger.Info("listening", "addr", ln.Addr().String())
	announce.start(ln.Addr(), tlsMode(cfg))

	select {
	case err := <-served:
		mux.close()
		hub.Close()
		gs.Stop()
		stopSources()
		sources.close()
		closeStore(st, logger)
		return fmt.Errorf("serve HTTP on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	draining.Store(true)
	// Leave the registry first, so that clients look elsewhere while the
	// servers drain.
	announce.deregister(cfg.ShutdownTimeout)
	// Stop accepting on the shared port (before saying so: a client that
	// reads "shutting down" finds the port closed), then end the watches
	// (they never go idle by themselves), then drain both servers within
	// the deadline.
	mux.close()
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	hub.Close()
	grpcDone := make(chan struct{})
	go func() { gs.GracefulStop(); close(grpcDone) }()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("in-flight requests did not finish in time; closing their connections", "err", err)
		_ = srv.Close()
	}
	select {
	case <-grpcDone:
	case <-sctx.Done():
		logger.Warn("gRPC calls did not finish in time; closing their connections")
		gs.Stop()
		<-grpcDone
	}
	<-served // http.ErrServerClosed
	stopSources()
	sources.close()
	if err := st.Close(); err != nil {
		return fmt.Errorf("close database %s: %w", dbPath, err)
	}
	logger.Info("stopped")
	return nil
}

// tlsMode says how configd serves, for the start log line: off, on, or
// mutual (client certificates required).
func tlsMode(cfg Config) string {
	switch {
	case cfg.TLSClientCA != "":
		return "mutual"
	case cfg.TLSOn():
		return "on"
	}
	return "off"
}

// startAuth returns the Auth of the daemon, or nil when authentication is
// off (dev mode: loopback, no --auth), which it logs. With authentication
// on and no token in the store, it creates the bootstrap admin token and
// logs its secret, once.
func startAuth(ctx context.Context, cfg Config, st *audit.Store, logger *slog.Logger) (*authz.Auth, error) {
	if !cfg.AuthOn() {
		logger.Warn("auth is off: anyone who can reach " + cfg.HTTPAddr + " may read and change everything (dev mode: loopback address without --auth)")
		return nil, nil
	}
	a, err := authz.New(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("load tokens: %w", err)
	}
	given, from := cfg.BootstrapToken, EnvPrefix+"BOOTSTRAP_TOKEN"
	if cfg.BootstrapTokenFile != "" {
		if given, err = authz.ReadBootstrapTokenFile(cfg.BootstrapTokenFile); err != nil {
			return nil, err
		}
		from = cfg.BootstrapTokenFile
	}
	secret, err := a.Bootstrap(ctx, given, EnvPrefix+"BOOTSTRAP_TOKEN")
	if err != nil {
		return nil, err
	}
	switch {
	case secret != "" && given != "":
		logger.Info("auth is on; created the admin token " + authz.BootstrapTokenName + " from " + from)
	case secret != "":
		logger.Warn("auth is on; created the admin token "+authz.BootstrapTokenName+": store it now, it is not shown again",
			"token", secret)
	default:
		logger.Info("auth is on")
	}
	return a, nil
}

func closeStore(st *audit.Store, logger *slog.Logger) {
	if err := st.Close(); err != nil {
		logger.Error("close database", "err", err)
	}
}

// prepareDataDir makes sure dir is a directory configd can write in,
// creating it (0700) if missing, and returns the database's path in it.
func prepareDataDir(dir string) (string, error) {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return "", fmt.Errorf("data dir %s is not a directory", dir)
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("cannot create data dir %s: %s", dir, pathReason(dir, err))
		}
	case err != nil:
		return "", fmt.Errorf("cannot use data dir %s: %s", dir, pathReason(dir, err))
	default:
		if err := worldWritable(dir, fi.Mode().Perm()); err != nil {
			return "", err
		}
	}
	// Stat says nothing of permissions as the database will meet them
	// (ACLs, read-only mounts): try.
	f, err := os.CreateTemp(dir, ".configd-write-test-*")
	if err != nil {
		return "", fmt.Errorf("data dir %s is not writable: %s", dir, pathReason(dir, err))
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return filepath.Join(dir, DBFile), nil
}

// pathReason explains a failed operation on path in a few words; when a
// parent of path is a regular file it names that file.
func pathReason(path string, err error) string {
	if errors.Is(err, syscall.ENOTDIR) {
		for p := filepath.Dir(filepath.Clean(path)); ; p = filepath.Dir(p) {
			if fi, serr := os.Stat(p); serr == nil && !fi.IsDir() {
				return p + " is a file, not a directory"
			}
			if next := filepath.Dir(p); next == p {
				break
			}
		}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

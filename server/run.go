package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/secrets"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/consulapi"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/etcdapi"
	"github.com/configd/configd/server/grpcapi"
	"github.com/configd/configd/server/httpapi"
	"github.com/configd/configd/server/pump"
	"github.com/configd/configd/server/sourcelead"
	"github.com/configd/configd/server/uisessions"
	"github.com/configd/configd/web"
)

// Run runs the daemon until ctx is done: it prepares the data dir, opens
// the store, serves the HTTP API on cfg.HTTPAddr and logs "listening" with
// the bound address (addr=127.0.0.1:43567 with port 0). When ctx is done it
// stops accepting connections, lets in-flight requests finish (for at most
// cfg.ShutdownTimeout), then closes the store, and returns nil.
//
// Errors are one line that says what to fix: a data dir that cannot be
// used, one in use by another configd, an address that cannot be bound.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) (err error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// What Run opens is closed when it returns, newest first.
	var cleanup closers
	defer func() { err = cleanup.close(err, logger) }()

	// Certificates and the registry are read before anything else is
	// done, so that a bad file or a bad registry fails at once.
	tlsCfg, err := serverTLS(cfg)
	if err != nil {
		return err
	}
	peerCfg, err := peerTLS(cfg)
	if err != nil {
		return err
	}
	announcer, err := newAnnouncer(cfg, logger)
	if err != nil {
		return err
	}
	cleanup.add(func() error { announcer.Close(cfg.ShutdownTimeout); return nil })
	dbPath, err := PrepareDataDir(cfg.DataDir)
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
		cleanup.add(func() error { stopDebug(); return nil })
	}

	// As a replica (--store etcd): the cluster's etcd client, which the
	// store, the replica registry (and who else needs etcd) share.
	var (
		etcdClient *clientv3.Client
		replica    []audit.Option // the store's options as a replica
	)
	tokens := &authz.TokenHook{}
	if cfg.Store == StoreEtcd {
		if etcdClient, err = newEtcdClient(cfg.Etcd); err != nil {
			return err
		}
		cleanup.add(etcdClient.Close)
		logger.Info("replica of a configd cluster on etcd", "endpoints", strings.Join(cfg.Etcd.Endpoints, ","), "prefix", cfg.Etcd.Prefix)
		replica = etcdStoreOptions(cfg, etcdClient, tokens.Changed, logger)
	}
	c, err := openCore(ctx, cfg, dbPath, masterKey, logger, replica...)
	if err != nil {
		return err
	}
	cleanup.add(func() error {
		if err := c.Close(); err != nil {
			return fmt.Errorf("close database %s: %w", dbPath, err)
		}
		return nil
	})
	// The port is bound before the sources start, so that a replica knows
	// the address it is known by (its default name in the cluster); it
	// serves once everything is ready.
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	cleanup.add(func() error { ln.Close(); return nil }) // closed already once served
	var consulLn net.Listener
	if cfg.ConsulAddr != "" {
		if consulLn, err = net.Listen("tcp", cfg.ConsulAddr); err != nil {
			return fmt.Errorf("listen on %s (--consul-addr): %w", cfg.ConsulAddr, err)
		}
		cleanup.add(func() error { consulLn.Close(); return nil }) // closed already once served
	}
	if tlsCfg == nil && !isLoopbackAddr(cfg.HTTPAddr) {
		logger.Warn("TLS is off on " + cfg.HTTPAddr + ", which is not a loopback address: tokens and configuration cross the network in clear text; set --tls-cert and --tls-key (see docs/security.md)")
	}
	// As a replica: who it is in its cluster (its name, address, version),
	// for the registry and whoever else needs it with etcdClient.
	var self api.ReplicaStatus
	if etcdClient != nil {
		self = replicaSelf(cfg, ln.Addr(), c.Store.Replication())
	}

	// Sources run until shutdown begins; one whose backend is down starts
	// degraded and catches up later. In a cluster, each source runs on one
	// replica at a time (package sourcelead).
	var pumpOpts []pump.Option
	if etcdClient != nil {
		elections, err := sourcelead.New(etcdClient, cfg.Etcd.Prefix, sourcelead.WithReplica(self.Name),
			sourcelead.WithTTL(cfg.Etcd.LeaseTTL), sourcelead.WithTimeout(cfg.Etcd.Timeout))
		if err != nil {
			return err
		}
		cleanup.add(elections.Close) // after the pump's closer: resign, then revoke the lease
		pumpOpts = append(pumpOpts, pump.WithLeadership(elections))
	}
	srcCtx, stopSources := context.WithCancel(context.WithoutCancel(ctx))
	sources, err := pump.Start(srcCtx, c.Store, cfg.Sources, logger, pumpOpts...)
	if err != nil {
		stopSources()
		return err
	}
	cleanup.add(func() error { stopSources(); sources.Close(); return nil })
	if len(cfg.Sources) > 0 {
		logger.Info("layers", "order", strings.Join(c.Store.Layers(), " < "))
	}
	auth, err := startAuth(ctx, cfg, c.Store, logger)
	if err != nil {
		return err
	}
	tokens.Attach(ctx, auth, logger)

	// The replica's registration in its cluster.
	var (
		replicas   httpapi.Replicas
		writes     *forwarding
		uiSessions web.SessionTable // nil: each replica's own, in memory
	)
	if etcdClient != nil {
		table, err := uisessions.New(etcdClient, cfg.Etcd.Prefix, httpapi.UIPrincipalCodec{},
			uisessions.WithTimeout(cfg.Etcd.Timeout), uisessions.WithLogger(logger))
		if err != nil {
			return err
		}
		cleanup.add(table.Close)
		uiSessions = table
		reg := newReplicaRegistry(etcdClient, cfg.Etcd.Prefix, cfg.Etcd, self, c.Store.Rev, sources.Leading, logger)
		reg.Start()
		cleanup.add(reg.Close)
		replicas = reg
		logger.Info("registered in the cluster", "replica", self.Name, "addr", self.Addr)
		// With TLS on, forwarding needs the CA that signs the replicas'
		// certificates; without it each replica commits its own writes.
		if cfg.Etcd.ForwardWrites && (tlsCfg == nil || peerCfg != nil) {
			writes = forwardWrites(ctx, cfg, peerCfg, etcdClient, reg, self.Name, c.Store, logger)
			cleanup.add(func() error { writes.stop(); return nil })
		}
	}
	clients := startDelivery(cfg, c.Store, etcdClient, self, ln.Addr(), logger)
	cleanup.add(clients.Close)
	driver := startRollouts(ctx, c.Store, clients, logger)
	cleanup.add(driver.stop)
	var draining atomic.Bool
	etcdOpts := []etcdapi.Option{etcdapi.WithKeyPrefix(cfg.EtcdAPIPrefix)}
	if etcdClient != nil {
		// A replica's leases are the cluster's etcd's.
		etcdOpts = append(etcdOpts, etcdapi.WithCluster(etcdClient, cfg.Etcd.Prefix))
	}
	apis := NewAPIs(c, APIConfig{Logger: logger, Auth: auth, TLS: tlsCfg, Etcd: etcdOpts,
		Limits:  cfg.Limits(), // one for HTTP and gRPC: a watch counts the same over both
		Metrics: []prometheus.Collector{driver.Collector()},
		GRPC:    []grpcapi.Option{grpcapi.WithReadWait(cfg.ReadWait)},
		Consul: []consulapi.Option{consulapi.WithReadWait(cfg.ReadWait), consulapi.WithVersion(Version()),
			consulapi.WithBodyReadTimeout(cfg.BodyReadTimeout)},
		HTTP: []httpapi.Option{
			httpapi.WithReadWait(cfg.ReadWait),
			httpapi.WithReplicas(replicas),
			httpapi.WithUISessions(uiSessions),
			httpapi.WithVersion(Version()),
			httpapi.WithReadiness(func(context.Context) error {
				if draining.Load() {
					return errors.New("shutting down")
				}
				return nil
			}),
			httpapi.WithSources(sources),
			httpapi.WithDataDir(cfg.DataDir),
			httpapi.WithBodyReadTimeout(cfg.BodyReadTimeout),
			writes.option(),
			httpapi.WithClients(clients.table),
		}})
	apis.Serve(ln)
	logger.Info("listening", "addr", ln.Addr().String())
	if consulLn != nil {
		apis.ServeConsul(consulLn)
		logger.Info("listening (Consul KV API)", "addr", consulLn.Addr().String())
	}
	announcer.Start(ln.Addr(), tlsMode(cfg))

	select {
	case err := <-apis.Served():
		apis.Close()
		return fmt.Errorf("serve HTTP on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	draining.Store(true)
	// Leave the registry first, so that clients look elsewhere while the
	// servers drain.
	announcer.Deregister(cfg.ShutdownTimeout)
	// Stop accepting on the shared port (before saying so: a client that
	// reads "shutting down" finds the port closed), then end the watches
	// (they never go idle by themselves), then drain both servers within
	// the deadline.
	apis.Stop()
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	c.Hub.Close()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	apis.Drain(sctx)
	return nil
}

// openCore opens the store at dbPath, with the layers of cfg's sources,
// and its hub. The store keeps the context it is opened with for its
// lifetime: it must outlive ctx, which ends when shutdown begins, and be
// cancelled only if ctx ends while opening is still under way.
func openCore(ctx context.Context, cfg Config, dbPath string, masterKey *secrets.MasterKey, logger *slog.Logger, replica ...audit.Option) (*core.Core, error) {
	layers, err := layerOrder(cfg.Sources)
	if err != nil {
		return nil, err
	}
	openCtx, cancelOpen := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelOpen()
	stopWatch := context.AfterFunc(ctx, cancelOpen)
	defer stopWatch()
	c, err := core.Open(openCtx, dbPath, core.WithStoreOptions(audit.WithMaxValueSize(cfg.MaxValueSize), audit.WithLogger(logger),
		audit.WithRetention(cfg.HistoryKeepRevisions, cfg.HistoryKeepAge), audit.WithMasterKey(masterKey),
		audit.WithLayers(layers...)), core.WithStoreOptions(replica...))
	switch {
	case errors.Is(err, audit.ErrLocked):
		return nil, fmt.Errorf("data dir %s is in use by another configd", cfg.DataDir)
	case errors.Is(err, audit.ErrSchemaTooNew):
		return nil, fmt.Errorf("data dir %s holds a database written by a newer configd; run that version or newer", cfg.DataDir)
	case len(replica) > 0 && (errors.Is(err, audit.ErrNoMasterKey) || errors.Is(err, audit.ErrWrongMasterKey)):
		return nil, fmt.Errorf("refusing to join the cluster: %w; every replica of a cluster needs the cluster's master key; %s", err, masterKeyHint)
	case errors.Is(err, audit.ErrNoMasterKey), errors.Is(err, audit.ErrWrongMasterKey):
		return nil, fmt.Errorf("data dir %s: %w; %s", cfg.DataDir, err, masterKeyHint)
	case errors.Is(err, audit.ErrReplicaMode) && len(replica) == 0:
		return nil, fmt.Errorf("refusing to start: %w; start it as the replica it is (--store etcd with its --etcd-endpoints and --etcd-prefix), "+
			"or give this configd a data dir of its own", err)
	case errors.Is(err, audit.ErrReplicaMode):
		return nil, fmt.Errorf("refusing to start: %w; give each replica a data dir of its own, empty or used by a replica of this cluster "+
			"(a SQLite-mode data dir does not join a cluster)", err)
	case errors.Is(err, audit.ErrNotALog):
		return nil, fmt.Errorf("refusing to start: %w (--etcd-prefix)", err)
	case len(replica) > 0 && errors.Is(err, audit.ErrStoreUnavailable):
		return nil, fmt.Errorf("cannot reach etcd at %s: %w; a replica that has not joined the cluster before needs etcd to catch up: "+
			"check --etcd-endpoints, the TLS files (--etcd-ca, --etcd-cert, --etcd-key) and --etcd-username", strings.Join(cfg.Etcd.Endpoints, ","), err)
	case errors.Is(err, audit.ErrStateMismatch):
		return nil, fmt.Errorf("refusing to start: %w; %s", err, RestoreHint(cfg.DataDir))
	case err != nil:
		return nil, fmt.Errorf("open database %s: %w", dbPath, err)
	}
	return c, nil
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

// closers are what Run has opened, closed in reverse order when it
// returns.
type closers []func() error

func (c *closers) add(close func() error) { *c = append(*c, close) }

// close closes everything, newest first. It returns err when Run failed
// (logging any error of the closing: it is not the cause), else the first
// error of the closing; with none, the daemon has stopped cleanly.
func (c *closers) close(err error, logger *slog.Logger) error {
	var first error
	for i := len(*c) - 1; i >= 0; i-- {
		cerr := (*c)[i]()
		switch {
		case cerr != nil && err != nil:
			logger.Error("closing after a failed start", "err", cerr)
		case cerr != nil && first == nil:
			first = cerr
		}
	}
	if err != nil {
		return err
	}
	if first == nil {
		logger.Info("stopped")
	}
	return first
}

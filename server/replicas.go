package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/forward"
	"github.com/configd/configd/server/httpapi"
	"github.com/configd/configd/server/leasedkey"
)

// replicaRegistry keeps this replica registered in its cluster's etcd,
// under P/replicas/<name> with a lease of --etcd-lease-ttl, so that the
// others list it (GET /v1/replicas) while it lives, and stop listing it
// one lease after it dies or loses etcd. It reports its applied revision
// about once a second, when it changed.
type replicaRegistry struct {
	cli     *clientv3.Client
	dir     string // P/replicas/
	ttl     int64  // seconds
	timeout time.Duration
	logger  *slog.Logger
	self    api.ReplicaStatus // its static part
	rev     func() int64
	sources func() []string

	keeper *leasedkey.Keeper

	// What publish put last (the keeper's goroutine alone).
	reported        int64
	reportedSources []string
}

// replicasDir is the directory of the registrations of the cluster under
// prefix: P/replicas/.
func replicasDir(prefix string) string { return strings.TrimSuffix(prefix, "/") + "/replicas/" }

// registryInterval is how often a replica reports its applied revision.
const registryInterval = time.Second

// newReplicaRegistry returns the registry of the replica self of the
// cluster under prefix; Start registers it.
func newReplicaRegistry(cli *clientv3.Client, prefix string, e EtcdConfig, self api.ReplicaStatus, rev func() int64, sources func() []string, logger *slog.Logger) *replicaRegistry {
	return &replicaRegistry{cli: cli, dir: replicasDir(prefix), ttl: int64(e.LeaseTTL / time.Second),
		timeout: e.Timeout, logger: logger, self: self, rev: rev, sources: sources}
}

// Start keeps the replica registered until Close.
func (g *replicaRegistry) Start() {
	g.keeper = leasedkey.Start(leasedkey.Config{Client: g.cli, TTL: g.ttl, Timeout: g.timeout, Tick: registryInterval,
		What: "the replica's registration", Logger: g.logger, Publish: g.publish})
}

// Close leaves the registry at once (the lease is revoked), so that the
// others stop listing a replica that shuts down cleanly.
func (g *replicaRegistry) Close() error {
	if g.keeper != nil {
		g.keeper.Close()
	}
	return nil
}

// publish registers the replica again when its revision or the sources
// it syncs changed.
func (g *replicaRegistry) publish(ctx context.Context, lease clientv3.LeaseID, fresh bool) error {
	rev, srcs := g.rev(), g.sources()
	if !fresh && rev == g.reported && slices.Equal(srcs, g.reportedSources) {
		return nil
	}
	if err := g.put(ctx, lease, rev, srcs); err != nil {
		return err
	}
	g.reported, g.reportedSources = rev, srcs
	return nil
}

func (g *replicaRegistry) put(ctx context.Context, lease clientv3.LeaseID, rev int64, sources []string) error {
	s := g.self
	s.Rev, s.Sources = rev, sources
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	_, err = g.cli.Put(ctx, g.dir+s.Name, string(b), clientv3.WithLease(lease))
	return err
}

// Replicas lists the replicas registered, by name, with their lag behind
// the newest of them (this one's revision counted as it is now).
func (g *replicaRegistry) Replicas(ctx context.Context) (api.ReplicasResponse, error) {
	regs, err := listReplicas(ctx, g.cli, g.dir, g.timeout, g.logger)
	if err != nil {
		return api.ReplicasResponse{}, err
	}
	out := api.ReplicasResponse{Store: StoreEtcd, Replicas: []api.ReplicaStatus{}}
	for _, s := range regs {
		if s.Name == g.self.Name {
			s.Rev, s.Self = g.rev(), true
		}
		out.Replicas = append(out.Replicas, s)
		out.Rev = max(out.Rev, s.Rev)
	}
	for i := range out.Replicas {
		out.Replicas[i].Lag = out.Rev - out.Replicas[i].Rev
	}
	slices.SortFunc(out.Replicas, func(a, b api.ReplicaStatus) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// listReplicas reads the registrations under dir, as of one etcd
// revision. A key whose value is not a registration is left out, with a
// warning: it neither hides the others nor stops the listing.
func listReplicas(ctx context.Context, cli *clientv3.Client, dir string, timeout time.Duration, logger *slog.Logger) ([]api.ReplicaStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := cli.Get(ctx, dir, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list the replicas: %w: %w", audit.ErrStoreUnavailable, err)
	}
	out := make([]api.ReplicaStatus, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		s, ok := api.ParseReplicaStatus(kv.Value)
		if !ok {
			logger.Warn("replica registry: not a replica's registration: left out", "key", string(kv.Key))
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

// horizonFloor is the store's audit.WithHorizonFloor: the lowest revision
// that a replica registered now reports applied. A replica that is down
// is not waited for: its registration ended with its lease. It may be
// called before this replica registers (the store compacts when it
// opens), and counts this one, once registered, at the revision it last
// reported (at most a second old), which only lowers the bound a little.
func horizonFloor(cli *clientv3.Client, prefix string, timeout time.Duration, logger *slog.Logger) func(context.Context) (int64, bool, error) {
	dir := replicasDir(prefix)
	return func(ctx context.Context) (int64, bool, error) {
		regs, err := listReplicas(ctx, cli, dir, timeout, logger)
		if err != nil || len(regs) == 0 {
			return 0, false, err
		}
		lowest := slices.MinFunc(regs, func(a, b api.ReplicaStatus) int { return cmp.Compare(a.Rev, b.Rev) })
		logger.Debug("replica registry: the lowest applied revision", "replica", lowest.Name, "rev", lowest.Rev)
		return lowest.Rev, true, nil
	}
}

// replicaSelf is who this replica is in its cluster: its name
// (--replica-name, default its advertised address), address, version,
// log format and schema level (from its store's rep), up since now.
func replicaSelf(cfg Config, ln net.Addr, rep audit.Replication) api.ReplicaStatus {
	self := api.ReplicaStatus{Name: cfg.Etcd.ReplicaName, Addr: advertisedAddr(cfg, ln), Version: Version(),
		LogFormat: rep.Format, Schema: rep.Schema, UpSince: time.Now().UTC()}
	if self.Name == "" {
		self.Name = self.Addr
	}
	return self
}

// advertisedAddr is the address other replicas and clients reach this one
// at: --server-advertise when set, else the address it listens on, with
// the host's name for an unspecified IP (0.0.0.0, ::).
func advertisedAddr(cfg Config, ln net.Addr) string {
	if a := cfg.Registry.Micro.ServerAdvertise; a != "" {
		return a
	}
	host, port, err := net.SplitHostPort(ln.String())
	if err != nil {
		return ln.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			host = name
		}
	}
	return net.JoinHostPort(host, port)
}

// forwarding sends a replica's writes to the cluster's writer (package
// forward): the replica registered longest in the registry.
type forwarding struct {
	mw   func(http.Handler) http.Handler
	stop context.CancelFunc
}

// forwardWrites starts following who the writer is. With peer (TLS on and
// --peer-ca), it forwards over HTTPS, trusting the writer's certificate
// with peer's CAs.
func forwardWrites(ctx context.Context, cfg Config, peer *tls.Config, cli *clientv3.Client, reg *replicaRegistry, self string, st forward.Applier, logger *slog.Logger) *forwarding {
	// The writer answers within the etcd timeout (store_unavailable past
	// it): wait longer than that, so that its answer comes back.
	opts := []forward.Option{forward.WithName(self), forward.WithTimeout(cfg.Etcd.Timeout + cfg.ReadWait),
		forward.WithActor(func(r *http.Request) string { return authz.ActorFrom(r.Context()) }), forward.WithLogger(logger)}
	var track []forward.TrackOption
	if peer != nil {
		opts = append(opts, forward.WithTLS(peer))
		track = append(track, forward.WithHTTPS())
	}
	fctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	writer := forward.TrackOldest(fctx, cli, reg.dir, self, logger, track...)
	// Serve once the writer is known: a replica that took writes before
	// would commit them itself, racing the writer for the log's head, and
	// a busy writer wins nearly every such race (the loser needs a round
	// trip to catch up before each attempt).
	select {
	case <-writer.Known():
	case <-time.After(cfg.Etcd.Timeout):
		logger.Warn("forward: the replicas' registrations were not read within the etcd timeout; this replica commits the writes it receives itself until it knows the cluster's writer",
			"timeout", cfg.Etcd.Timeout)
	case <-ctx.Done():
	}
	f := forward.New(writer, st, opts...)
	return &forwarding{mw: f.Middleware, stop: stop}
}

// option is the HTTP API's option that forwards its writes (none when f
// is nil: SQLite mode, TLS on without --peer-ca, or --forward-writes=false).
func (f *forwarding) option() httpapi.Option {
	if f == nil {
		return httpapi.WithWrites(nil)
	}
	return httpapi.WithWrites(f.mw)
}

package server

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/source"
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

	stop    context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	leaseID clientv3.LeaseID
}

// registryInterval is how often a replica reports its applied revision.
const registryInterval = time.Second

// newReplicaRegistry returns the registry of the replica self of the
// cluster under prefix; Start registers it.
func newReplicaRegistry(cli *clientv3.Client, prefix string, e EtcdConfig, self api.ReplicaStatus, rev func() int64, sources func() []string, logger *slog.Logger) *replicaRegistry {
	return &replicaRegistry{cli: cli, dir: strings.TrimSuffix(prefix, "/") + "/replicas/", ttl: int64(e.LeaseTTL / time.Second),
		timeout: e.Timeout, logger: logger, self: self, rev: rev, sources: sources, done: make(chan struct{})}
}

// Start keeps the replica registered until Close.
func (g *replicaRegistry) Start() {
	ctx, stop := context.WithCancel(context.Background())
	g.stop = stop
	go g.run(ctx)
}

// Close leaves the registry at once (the lease is revoked), so that the
// others stop listing a replica that shuts down cleanly.
func (g *replicaRegistry) Close() error {
	if g.stop == nil {
		return nil
	}
	g.stop()
	<-g.done
	g.mu.Lock()
	id := g.leaseID
	g.mu.Unlock()
	if id != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = g.cli.Revoke(ctx, id)
	}
	return nil
}

// run registers the replica under a new lease, keeps the lease alive and
// reports its revision; when etcd stops answering (the lease ends), it
// starts again after a pause that doubles up to the lease's TTL.
func (g *replicaRegistry) run(ctx context.Context) {
	defer close(g.done)
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := g.session(ctx)
		if ctx.Err() != nil {
			return
		}
		g.logger.Debug("replica registry: waiting for etcd", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Duration(g.ttl)*time.Second)
	}
}

func (g *replicaRegistry) session(ctx context.Context) error {
	gctx, cancel := context.WithTimeout(ctx, g.timeout)
	lease, err := g.cli.Grant(gctx, g.ttl)
	cancel()
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.leaseID = lease.ID
	g.mu.Unlock()
	kctx, stopKeep := context.WithCancel(ctx)
	defer stopKeep()
	ka, err := g.cli.KeepAlive(kctx, lease.ID)
	if err != nil {
		return err
	}
	reported := int64(-1)
	tick := time.NewTicker(registryInterval)
	defer tick.Stop()
	for {
		if rev := g.rev(); rev != reported {
			if err := g.put(ctx, lease.ID, rev); err != nil {
				return err
			}
			reported = rev
		}
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-ka:
			if !ok {
				return fmt.Errorf("the lease of the replica's registration ended")
			}
		case <-tick.C:
		}
	}
}

func (g *replicaRegistry) put(ctx context.Context, lease clientv3.LeaseID, rev int64) error {
	s := g.self
	s.Rev, s.Sources = rev, g.sources()
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
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	resp, err := g.cli.Get(ctx, g.dir, clientv3.WithPrefix())
	if err != nil {
		return api.ReplicasResponse{}, fmt.Errorf("list the replicas: %w: %w", audit.ErrStoreUnavailable, err)
	}
	out := api.ReplicasResponse{Store: StoreEtcd, Replicas: []api.ReplicaStatus{}}
	for _, kv := range resp.Kvs {
		var s api.ReplicaStatus
		if err := json.Unmarshal(kv.Value, &s); err != nil {
			g.logger.Warn("replica registry: not a replica's registration", "key", string(kv.Key), "err", err)
			continue
		}
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

// replicaSelf is who this replica is in its cluster: its name
// (--replica-name, default its advertised address), address and version,
// up since now.
func replicaSelf(cfg Config, ln net.Addr) api.ReplicaStatus {
	self := api.ReplicaStatus{Name: cfg.Etcd.ReplicaName, Addr: advertisedAddr(cfg, ln), Version: Version(), UpSince: time.Now().UTC()}
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

// sourceNames returns the names of the sources a replica syncs: today
// every replica syncs every source it is configured with.
func sourceNames(srcs []source.Config) func() []string {
	var names []string
	for _, s := range srcs {
		names = append(names, s.Name)
	}
	return func() []string { return names }
}

// etcdProbe asks the cluster's etcd for the log's head (a linearizable
// read: it needs etcd's quorum) about once a second, so that a replica
// that cannot reach etcd says so (/readyz, configd_store_available) even
// while no write fails: cut off from every member, the store's watch of
// the log waits for etcd to come back without an error to report.
type etcdProbe struct {
	cli      *clientv3.Client
	key      string
	timeout  time.Duration
	err      atomic.Pointer[error]
	stop     context.CancelFunc
	done     chan struct{}
	interval time.Duration
}

func newEtcdProbe(cli *clientv3.Client, prefix string, timeout time.Duration) *etcdProbe {
	return &etcdProbe{cli: cli, key: strings.TrimSuffix(prefix, "/") + "/head", timeout: timeout, interval: time.Second, done: make(chan struct{})}
}

// Start probes until Close.
func (p *etcdProbe) Start() {
	ctx, stop := context.WithCancel(context.Background())
	p.stop = stop
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for {
			p.probe(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (p *etcdProbe) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if _, err := p.cli.Get(ctx, p.key); err != nil && ctx.Err() != context.Canceled {
		err = fmt.Errorf("%w: etcd does not answer: %w", audit.ErrStoreUnavailable, err)
		p.err.Store(&err)
		return
	}
	p.err.Store(nil)
}

// Close stops the probe.
func (p *etcdProbe) Close() error {
	if p.stop != nil {
		p.stop()
		<-p.done
	}
	return nil
}

// replication is st's report of whether it follows its log, with the
// probe's error when the store has none.
func (p *etcdProbe) replication(st *audit.Store) func() audit.Replication {
	return func() audit.Replication {
		r := st.Replication()
		if e := p.err.Load(); r.Replica && r.Err == nil && e != nil {
			r.Err = *e
		}
		return r
	}
}

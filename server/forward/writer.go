package forward

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/api"
)

// Oldest tracks the cluster's writer: the replica whose registration (a
// key under the registry's directory in etcd, an api.ReplicaStatus under
// a lease) is the oldest, by the etcd revision that created it. Every
// replica sees the same keys, so they agree on the writer as soon as they
// have seen the same registrations; while they disagree (a replica just
// died, one just came), two replicas may take writes at once, which the
// log's compare on its head keeps right. A registration ends with its
// lease, so the writer changes one lease TTL after the writer dies.
type Oldest struct {
	self   string
	logger *slog.Logger
	scheme string // of the writer's URL: "http", or "https" (WithHTTPS)

	mu    sync.Mutex
	regs  map[string]registration // by key
	url   string                  // the writer's, "" when it is self or unknown
	known chan struct{}           // closed once the registrations were read
	once  sync.Once
}

type registration struct {
	created int64
	name    string
	addr    string
}

// TrackOption configures TrackOldest.
type TrackOption func(*Oldest)

// WithHTTPS makes the writer's URL an https:// one: the replicas serve
// TLS (see WithTLS).
func WithHTTPS() TrackOption { return func(o *Oldest) { o.scheme = "https" } }

// TrackOldest follows the registrations under dir (with its trailing
// slash) until ctx ends; self is this replica's name.
func TrackOldest(ctx context.Context, cli *clientv3.Client, dir, self string, logger *slog.Logger, opts ...TrackOption) *Oldest {
	o := &Oldest{self: self, logger: logger, scheme: "http", regs: map[string]registration{}, known: make(chan struct{})}
	for _, opt := range opts {
		opt(o)
	}
	go o.run(ctx, cli, dir)
	return o
}

// Known is closed once the registrations have been read: from then on
// WriterURL names the writer registered then (a replica that serves
// writes before that commits them itself, and races the writer for the
// log's head).
func (o *Oldest) Known() <-chan struct{} { return o.known }

// WriterURL implements Writer.
func (o *Oldest) WriterURL() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.url
}

func (o *Oldest) run(ctx context.Context, cli *clientv3.Client, dir string) {
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := o.follow(ctx, cli, dir)
		if ctx.Err() != nil {
			return
		}
		o.logger.Debug("forward: following the replicas' registrations", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// follow reads the registrations, then applies their changes as they come.
func (o *Oldest) follow(ctx context.Context, cli *clientv3.Client, dir string) error {
	resp, err := cli.Get(ctx, dir, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	o.mu.Lock()
	clear(o.regs)
	for _, kv := range resp.Kvs {
		o.put(kv)
	}
	o.choose()
	o.mu.Unlock()
	o.once.Do(func() { close(o.known) })
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range cli.Watch(wctx, dir, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
		if err := wr.Err(); err != nil {
			return err
		}
		o.mu.Lock()
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				delete(o.regs, string(ev.Kv.Key))
			} else {
				o.put(ev.Kv)
			}
		}
		o.choose()
		o.mu.Unlock()
	}
	return ctx.Err()
}

func (o *Oldest) put(kv *mvccpb.KeyValue) {
	s, ok := api.ParseReplicaStatus(kv.Value)
	if !ok {
		return // not a registration this version can read: not a candidate
	}
	o.regs[string(kv.Key)] = registration{created: kv.CreateRevision, name: s.Name, addr: s.Addr}
}

// choose sets url from the oldest registration.
func (o *Oldest) choose() {
	var best registration
	for _, r := range o.regs {
		if best.created == 0 || r.created < best.created {
			best = r
		}
	}
	url := ""
	if best.created != 0 && best.name != o.self {
		url = o.scheme + "://" + best.addr
	}
	if url != o.url {
		o.logger.Info("forward: the cluster's writer", "writer", cmp.Or(best.name, "none known"), "self", best.name == o.self)
		o.url = url
	}
}

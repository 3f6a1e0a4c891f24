package delivery

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/leasedkey"
)

// PublishInterval is how often a replica publishes its clients to etcd,
// when they changed.
const PublishInterval = 2 * time.Second

// maxPublished bounds the compressed list of one replica's clients, below
// etcd's default request size (1.5 MiB): tens of thousands of clients.
const maxPublished = 1 << 20

// ClientsDir is the etcd directory where the replicas of the cluster
// under prefix publish their clients: P/clients/, one key per replica.
func ClientsDir(prefix string) string { return strings.TrimSuffix(prefix, "/") + "/clients/" }

// Publisher shares a replica's clients with the others: it writes the
// table's clients, gzipped JSON, under P/clients/<replica> with a lease of
// its own (so that they go when the replica dies), about every
// PublishInterval when a client changed (joined, left, applied a revision,
// rejected a value), else once every table.ReportEvery so that the
// heartbeats' LastSeen reach the others before they expire; Clients reads
// the others'. Every put is one more version of the key in etcd's history
// until etcd compacts, so heartbeats alone are not republished.
type Publisher struct {
	cli     *clientv3.Client
	dir     string
	name    string
	ttl     int64
	timeout time.Duration
	logger  *slog.Logger
	table   *Table
	keeper  *leasedkey.Keeper

	// What publish put last (the keeper's goroutine alone).
	published uint64
	at        time.Time
}

// NewPublisher returns the publisher of replica name of the cluster under
// prefix; Start publishes table.
func NewPublisher(cli *clientv3.Client, prefix, name string, leaseTTL, timeout time.Duration, logger *slog.Logger) *Publisher {
	return &Publisher{cli: cli, dir: ClientsDir(prefix), name: name, ttl: max(int64(leaseTTL/time.Second), 1),
		timeout: timeout, logger: logger}
}

// Start publishes table until Close.
func (p *Publisher) Start(table *Table) {
	p.table = table
	p.keeper = leasedkey.Start(leasedkey.Config{Client: p.cli, TTL: p.ttl, Timeout: p.timeout, Tick: PublishInterval,
		What: "the replica's published clients", Logger: p.logger, Publish: p.publish})
}

// Close stops publishing; the published list goes with its lease, which
// Close revokes.
func (p *Publisher) Close() error {
	if p.keeper != nil {
		p.keeper.Close()
	}
	return nil
}

// publish puts the table's clients again when a client changed, or, for
// the heartbeats' sake (the others drop an entry whose LastSeen is older
// than the expiry), every ReportEvery.
func (p *Publisher) publish(ctx context.Context, lease clientv3.LeaseID, fresh bool) error {
	clients, version := p.table.Local()
	if !fresh && version == p.published && time.Since(p.at) < p.table.ReportEvery() {
		return nil
	}
	if err := p.put(ctx, lease, clients); err != nil {
		return err
	}
	p.published, p.at = version, time.Now()
	return nil
}

func (p *Publisher) put(ctx context.Context, lease clientv3.LeaseID, clients []api.ClientStatus) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(clients); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if buf.Len() > maxPublished {
		p.logger.Warn("delivery: too many clients to publish to etcd; the other replicas list the ones published last",
			"clients", len(clients), "bytes", buf.Len())
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	_, err := p.cli.Put(ctx, p.dir+p.name, buf.String(), clientv3.WithLease(lease))
	return err
}

// Clients returns the clients the other replicas published. A value that
// does not decode is left out with a warning.
func (p *Publisher) Clients(ctx context.Context) ([]api.ClientStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	resp, err := p.cli.Get(ctx, p.dir, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list the other replicas' clients: %w: %w", audit.ErrStoreUnavailable, err)
	}
	var out []api.ClientStatus
	for _, kv := range resp.Kvs {
		if string(kv.Key) == p.dir+p.name {
			continue
		}
		cs, err := decode(kv.Value)
		if err != nil {
			p.logger.Warn("delivery: a replica's published clients do not decode: left out", "key", string(kv.Key), "err", err)
			continue
		}
		out = append(out, cs...)
	}
	return out, nil
}

func decode(v []byte) ([]api.ClientStatus, error) {
	zr, err := gzip.NewReader(bytes.NewReader(v))
	if err != nil {
		return nil, err
	}
	var cs []api.ClientStatus
	if err := json.NewDecoder(io.LimitReader(zr, 64<<20)).Decode(&cs); err != nil {
		return nil, err
	}
	return cs, nil
}

package server

import (
	"log/slog"
	"net"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/api"
	"github.com/configd/configd/server/delivery"
)

// deliveryTracking is the daemon's table of SDK clients and, on a
// replica, its publisher to the other replicas.
type deliveryTracking struct {
	table *delivery.Table
	pub   *delivery.Publisher // nil in the SQLite mode
}

// startDelivery keeps the clients that report to this configd (named by
// its replica name, or its advertised address when it runs alone); on a
// replica they are published to etcd under P/clients/ and the others'
// listed with them.
func startDelivery(cfg Config, hist delivery.History, cli *clientv3.Client, self api.ReplicaStatus, ln net.Addr, logger *slog.Logger) *deliveryTracking {
	name := self.Name
	if name == "" {
		name = advertisedAddr(cfg, ln)
	}
	opts := []delivery.Option{delivery.WithExpiry(cfg.ClientExpiry)}
	var pub *delivery.Publisher
	if cli != nil {
		pub = delivery.NewPublisher(cli, cfg.Etcd.Prefix, name, cfg.Etcd.LeaseTTL, cfg.Etcd.Timeout, logger)
		opts = append(opts, delivery.WithPeers(pub))
	}
	d := &deliveryTracking{table: delivery.New(name, hist, opts...), pub: pub}
	if pub != nil {
		pub.Start(d.table)
	}
	return d
}

// Close stops publishing the clients.
func (d *deliveryTracking) Close() error {
	if d.pub != nil {
		return d.pub.Close()
	}
	return nil
}

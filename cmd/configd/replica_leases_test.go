package main_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/internal/configdtest"
)

// testEtcdLeasesAcrossReplicas: the daemons of a cluster serve etcd's
// leases through their etcd API (server.Run gives them the cluster's
// etcd): a lease granted on one takes a key put through the other, which
// lists it; a revoke through the other deletes it.
func testEtcdLeasesAcrossReplicas(t *testing.T, c *configdtest.Cluster) {
	ds := replicaDaemons(t, c)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var clis []*clientv3.Client
	for _, d := range ds {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{d.Addr}, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		clis = append(clis, cli)
	}
	g, err := clis[0].Grant(ctx, 30)
	if err != nil {
		t.Fatalf("grant on replica 0: %v", err)
	}
	if _, err := clis[1].Put(ctx, "app/leased", "1", clientv3.WithLease(g.ID)); err != nil {
		t.Fatalf("put with the lease on replica 1: %v", err)
	}
	ttl, err := clis[0].TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys())
	if err != nil || ttl.TTL <= 0 || len(ttl.Keys) != 1 {
		t.Fatalf("time to live on replica 0: %+v %v, want the key", ttl, err)
	}
	if _, err := clis[1].Revoke(ctx, g.ID); err != nil {
		t.Fatalf("revoke on replica 1: %v", err)
	}
	if got, err := clis[0].Get(ctx, "app/leased"); err != nil || len(got.Kvs) != 0 {
		t.Fatalf("the key after the revoke: %v %v, want it deleted", got, err)
	}
}

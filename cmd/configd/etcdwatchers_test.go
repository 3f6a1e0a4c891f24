package main_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/config"
)

// etcdWatcherCount is the number of watchers etcd's members hold.
func etcdWatcherCount(t *testing.T, etcd *testserver.EtcdCluster) int {
	t.Helper()
	n, err := testserver.EtcdWatchers(t.Context(), etcd.Endpoints...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// testEtcdWatchersStayFlat: a replica holds the same etcd watches however
// many SDK clients watch through it (its watch hub fans the log out), by
// etcd's own count, and every one of the clients gets the next write.
func testEtcdWatchersStayFlat(t *testing.T, etcd *testserver.EtcdCluster, c *configdtest.Cluster) {
	const clients = 200
	ds := replicaDaemons(t, c)
	first := ds[0].put("app/fan", "v0")
	for _, d := range ds { // every replica has it: the clients' first update is the next write
		d.mustCall(http.MethodGet, fmt.Sprintf("/v1/kv/app/fan?min_rev=%d", first), nil, nil)
	}
	before := etcdWatcherCount(t, etcd)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	var ws []*config.Watcher
	for i := range clients {
		opts := []config.Option{config.WithAddress(ds[i%len(ds)].Addr), config.WithLogger(quiet)}
		if i%2 == 1 {
			opts = append(opts, config.WithGRPC())
		}
		cl, err := config.New(ctx, opts...)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		t.Cleanup(func() { cl.Close() })
		w, err := cl.Watch("app/fan")
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	rev := ds[1].put("app/fan", "v1")
	for i, w := range ws {
		u, err := w.NextUpdate()
		if err != nil || u.Rev != rev {
			t.Fatalf("client %d: %+v, %v; want revision %d", i, u, err, rev)
		}
	}
	if after := etcdWatcherCount(t, etcd); after != before {
		t.Fatalf("etcd has %d watchers with %d SDK clients connected, %d before: the replicas' etcd watches must not grow with their clients", after, clients, before)
	}
}

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
// etcd's own count, and every one of the clients gets each next write.
// The count is taken once a first round of clients is connected and a
// write went through a replica: what a replica starts once, on its first
// client or its first forwarded write, is not what grows with clients.
func testEtcdWatchersStayFlat(t *testing.T, etcd *testserver.EtcdCluster, c *configdtest.Cluster) {
	const clients = 100 // a round
	ds := replicaDaemons(t, c)
	first := ds[0].put("app/fan", "v0")
	for _, d := range ds { // every replica has it: the clients' first update is the next write
		d.mustCall(http.MethodGet, fmt.Sprintf("/v1/kv/app/fan?min_rev=%d", first), nil, nil)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	var ws []*config.Watcher
	// round connects a round of clients, writes through a replica and
	// checks that every client connected so far gets the write.
	round := func(n int) {
		for i := range clients {
			opts := []config.Option{config.WithAddress(ds[i%len(ds)].Addr), config.WithLogger(quiet)}
			if i%2 == 1 {
				opts = append(opts, config.WithGRPC())
			}
			cl, err := config.New(ctx, opts...)
			if err != nil {
				t.Fatalf("round %d, client %d: %v", n, i, err)
			}
			t.Cleanup(func() { cl.Close() })
			w, err := cl.Watch("app/fan")
			if err != nil {
				t.Fatal(err)
			}
			ws = append(ws, w)
		}
		rev := ds[1].put("app/fan", fmt.Sprintf("v%d", n))
		for i, w := range ws {
			for {
				u, err := w.NextUpdate()
				if err != nil {
					t.Fatalf("round %d, client %d: %v; want revision %d", n, i, err, rev)
				}
				if u.Rev == rev {
					break
				}
				if u.Rev > rev {
					t.Fatalf("round %d, client %d: revision %d; want %d", n, i, u.Rev, rev)
				}
			}
		}
	}
	round(1)
	before := etcdWatcherCount(t, etcd)
	round(2)
	// The replicas' own watches (the log's, elections', forwarding's)
	// come and go by themselves: a watch one of them was renewing when
	// counted passes, the clients' would stay.
	after := 0
	wctx, wcancel := context.WithTimeout(t.Context(), configdtest.WaitLimit)
	defer wcancel()
	if err := configdtest.WaitFor(wctx, func() bool { after = etcdWatcherCount(t, etcd); return after <= before }); err != nil {
		t.Fatalf("etcd has %d watchers with %d SDK clients connected, %d with %d: the replicas' etcd watches must not grow with their clients", after, 2*clients, before, clients)
	}
}

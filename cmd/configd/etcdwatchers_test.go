package main_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/config"
)

// etcdWatchers sums etcd's own count of its watchers
// (etcd_debugging_mvcc_watcher_total) over the members.
func etcdWatchers(t *testing.T, etcd *testserver.EtcdCluster) int {
	t.Helper()
	total := 0
	for _, m := range etcd.Members {
		resp, err := http.Get("http://" + m.Addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		found := false
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "etcd_debugging_mvcc_watcher_total "); ok {
				n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					t.Fatal(err)
				}
				total += int(n)
				found = true
			}
		}
		if !found {
			t.Fatalf("%s: no etcd_debugging_mvcc_watcher_total in /metrics", m.Addr)
		}
	}
	return total
}

// testEtcdWatchersStayFlat: a replica holds the same etcd watches however
// many SDK clients watch through it (its watch hub fans the log out), by
// etcd's own count, and every one of the clients gets the next write.
func testEtcdWatchersStayFlat(t *testing.T, etcd *testserver.EtcdCluster, c *configdtest.Cluster) {
	const clients = 200
	ds := replicaDaemons(t, c)
	ds[0].put("app/fan", "v0")
	before := etcdWatchers(t, etcd)
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
	if after := etcdWatchers(t, etcd); after != before {
		t.Fatalf("etcd has %d watchers with %d SDK clients connected, %d before: the replicas' etcd watches must not grow with their clients", after, clients, before)
	}
}

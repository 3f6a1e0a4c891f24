package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/testserver"
)

// A replica's compactions (its store opened with etcdStoreOptions) wait
// for the replicas registered in etcd: with one registered at revision 5,
// the horizon stops at 6 whatever the retention allows; once it reports
// 30, the next compaction goes to 31; once it leaves the registry (its
// lease revoked, as when it shuts down or its lease ends), the retention
// alone decides. A key of the registry that is not a registration is
// ignored (one without a name too): it neither holds the horizon back nor stops the compaction.
func TestCompactionsWaitForTheReplicasRegistered(t *testing.T) {
	ctx := context.Background()
	srv := testserver.Etcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := DefaultConfig()
	cfg.Etcd.Endpoints, cfg.Etcd.Prefix, cfg.Etcd.Timeout = srv.Endpoints, "/configd-horizon", 2*time.Second

	st, err := audit.Open(ctx, filepath.Join(t.TempDir(), "configd.db"),
		append(etcdStoreOptions(cfg, cli, func() {}, logger), audit.WithRetention(10, 0), audit.WithCompactInterval(-1))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for key, v := range map[string]string{"garbage": "not a registration", "nameless": `{"rev":1}`} {
		if _, err := cli.Put(ctx, replicasDir(cfg.Etcd.Prefix)+key, v); err != nil {
			t.Fatal(err)
		}
	}
	var slowRev atomic.Int64
	slowRev.Store(5)
	slow := newReplicaRegistry(cli, cfg.Etcd.Prefix, cfg.Etcd, api.ReplicaStatus{Name: "slow", Addr: "127.0.0.1:1"},
		slowRev.Load, func() []string { return nil }, logger)
	slow.Start()
	t.Cleanup(func() { slow.Close() })
	for i := range 50 {
		if _, err := st.Commit(ctx, audit.Txn{Actor: "t", Ops: []audit.Op{audit.Put(fmt.Sprintf("app/%d", i%7), []byte(fmt.Sprint(i)), "")}}); err != nil {
			t.Fatal(err)
		}
	}
	// reported waits until the slow replica's registration says rev.
	reported := func(rev int64) {
		t.Helper()
		key := replicasDir(cfg.Etcd.Prefix) + "slow"
		says := func(v []byte) bool {
			var s api.ReplicaStatus
			return json.Unmarshal(v, &s) == nil && s.Rev == rev
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		resp, err := cli.Get(wctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 1 && says(resp.Kvs[0].Value) {
			return
		}
		for wr := range cli.Watch(wctx, key, clientv3.WithRev(resp.Header.Revision+1)) {
			for _, ev := range wr.Events {
				if says(ev.Kv.Value) {
					return
				}
			}
		}
		t.Fatalf("the slow replica's registration never said revision %d", rev)
	}
	compact := func(from, horizon int64, why string) {
		t.Helper()
		res, err := st.Compact(ctx)
		if err != nil || res.From != from || res.Horizon != horizon {
			t.Fatalf("Compact %s = %+v, %v; want from %d to horizon %d", why, res, err, from, horizon)
		}
	}

	reported(5)
	compact(0, 6, "with a replica registered at revision 5 (the retention alone: 41)")
	slowRev.Store(30)
	reported(30)
	compact(6, 31, "once it reports revision 30")
	slow.Close()
	compact(31, 41, "once it left the registry")
}

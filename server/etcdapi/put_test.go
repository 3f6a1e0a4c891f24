package etcdapi_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/etcdapi"
	"github.com/configd/configd/server/grpcapi"
)

// pastReads counts the reads of a past revision (AtRev): those the
// database answers, after waiting for it to take every durable revision.
type pastReads struct {
	*audit.Store
	n atomic.Int64
}

func (s *pastReads) Get(ctx context.Context, key string, opts ...audit.ReadOption) (audit.KeyValue, error) {
	if len(opts) > 0 {
		s.n.Add(1)
	}
	return s.Store.Get(ctx, key, opts...)
}

// TestEtcdPutReadsTheKeyItReplacesFromMemory: a put, with prev_kv and
// ignore_value too, takes the value it replaces from the store's memory,
// not from the database at a revision, which would make every put wait
// for the journal to settle into SQLite; and it still keeps the key's
// content type and answers the value it replaced.
func TestEtcdPutReadsTheKeyItReplacesFromMemory(t *testing.T) {
	env := configdtest.NewEnv(t, configdtest.WithSeed(audit.Put("app/j", []byte(`{"a":1}`), audit.TypeJSON)))
	st := &pastReads{Store: env.Store}
	gs := grpcapi.New(env.Store, env.Hub, grpcapi.WithLogger(configdtest.Discard()), grpcapi.WithServerOptions(etcdapi.ServerOptions()...))
	etcdapi.Register(gs, st, env.Hub, etcdapi.WithLogger(configdtest.Discard()))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	cli := client(t, lis.Addr().String())
	ctx := timeout(t)

	for _, v := range []string{"1", "2"} {
		if _, err := cli.Put(ctx, "app/x", v); err != nil {
			t.Fatal(err)
		}
	}
	r, err := cli.Put(ctx, "app/x", "3", clientv3.WithPrevKV())
	if err != nil || r.PrevKv == nil || string(r.PrevKv.Value) != "2" {
		t.Fatalf("put app/x --prev-kv: %v, %v; want the previous value 2", r, err)
	}
	if _, err := cli.Put(ctx, "app/j", `{"a":2}`); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "app/j", "", clientv3.WithIgnoreValue()); err != nil {
		t.Fatal(err)
	}
	if n := st.n.Load(); n != 0 {
		t.Errorf("%d puts read their key at a past revision from the database, want none", n)
	}
	kv, err := env.Store.Get(ctx, "app/j")
	if err != nil || kv.ContentType != audit.TypeJSON || string(kv.Value) != `{"a":2}` {
		t.Errorf("app/j: %q %q %v, want the new JSON value, still JSON", kv.ContentType, kv.Value, err)
	}
}

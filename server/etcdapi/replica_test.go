package etcdapi_test

import (
	"fmt"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/server"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/etcdapi"
)

// replica is one replica of a configd cluster on a test etcd, serving
// etcd's API.
type replica struct {
	env *configdtest.Env
	srv *configdtest.Serving
	cfg server.APIConfig
	cli *clientv3.Client
}

// replicas starts n replicas of one configd cluster on a test etcd, their
// leases in that etcd (etcdapi.WithCluster, as server.Run gives them), and
// returns them with etcd's client of the cluster's etcd.
func replicas(t *testing.T, n int) ([]replica, *clientv3.Client) {
	t.Helper()
	etcd := testserver.Etcd(t)
	ecli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ecli.Close() })
	rs := make([]replica, n)
	for i := range rs {
		prefix := "/" + t.Name()
		env := configdtest.NewEnv(t, configdtest.WithReplicaOf(ecli, prefix))
		cfg := server.APIConfig{Etcd: []etcdapi.Option{etcdapi.WithCluster(ecli, prefix)}}
		s := configdtest.Serve(t, &core.Core{Store: env.Store, Hub: env.Hub}, cfg)
		rs[i] = replica{env: env, srv: s, cfg: cfg, cli: client(t, s.Addr)}
	}
	return rs, ecli
}

// replicaClients starts n replicas of one configd cluster on a test etcd
// and returns etcd's client of each one's etcd API.
func replicaClients(t *testing.T, n int) []*clientv3.Client {
	t.Helper()
	rs, _ := replicas(t, n)
	clis := make([]*clientv3.Client, n)
	for i, r := range rs {
		clis[i] = r.cli
	}
	return clis
}

// TestEtcdReplicasReadLinearizably: two replicas of a configd cluster on
// etcd. What one acknowledges, the other's linearizable reads (etcd's
// default) and txns see at once; a compare-and-swap through either
// decides on the cluster's newest state.
func TestEtcdReplicasReadLinearizably(t *testing.T) {
	clis := replicaClients(t, 2)
	ctx := timeout(t)
	var ids [2]*clientv3.GetResponse
	for i, c := range clis {
		var err error
		if ids[i], err = c.Get(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
	if h0, h1 := ids[0].Header, ids[1].Header; h0.ClusterId != h1.ClusterId || h0.MemberId == h1.MemberId {
		t.Fatalf("headers %v and %v: want one cluster ID, two member IDs", h0, h1)
	}
	for i := range 10 {
		w, r := clis[i%2], clis[(i+1)%2]
		if _, err := w.Put(ctx, "k", fmt.Sprint(i)); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		got, err := r.Get(ctx, "k")
		if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != fmt.Sprint(i) {
			t.Fatalf("read %d on the other replica: %v %v", i, got, err)
		}
		resp, err := r.Txn(ctx).If(clientv3.Compare(clientv3.Value("k"), "=", fmt.Sprint(i))).Then(clientv3.OpPut("k", fmt.Sprint(i, "+"))).Commit()
		if err != nil || !resp.Succeeded {
			t.Fatalf("CAS %d on the other replica: %+v %v", i, resp, err)
		}
	}
}

package servers

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestEtcdClusterReplicates starts three members and reads on the third
// what was put through the first.
func TestEtcdClusterReplicates(t *testing.T) {
	ms, err := EtcdCluster(3)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, m := range ms {
			m.Stop()
		}
	}()
	client := func(m *Server) *clientv3.Client {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{m.Addr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client(ms[0]).Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	resp, err := client(ms[2]).Get(ctx, "k") // linearizable: through the leader
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("member 3 has %v, want k=v", resp.Kvs)
	}
}

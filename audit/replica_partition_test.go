package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/internal/tcpproxy"
)

// A replica cut off from etcd (a TCP proxy between it and every member,
// closed) refuses writes with ErrStoreUnavailable and serves reads from
// what it has, while another replica goes on writing; once the link heals
// it catches up by itself, takes writes again, and ends with the same
// history and audit chain.
func (e *replicaEnv) partition(t *testing.T) {
	ctx := context.Background()
	cut, link := e.linkedClient(t)
	a := e.replica(t)
	c := openReplica(t, filepath.Join(t.TempDir(), "configd.db"), WithEtcd(cut, prefix(t)), WithEtcdTimeout(time.Second))
	put(t, c, "app/k", "before")
	if err := a.WaitRev(ctx, 1); err != nil {
		t.Fatal(err)
	}

	link.cut()
	_, err := c.Commit(ctx, Txn{Actor: "t", Ops: []Op{Put("app/k", []byte("cut off"), "")}})
	if !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("a write on the replica cut off: %v; want ErrStoreUnavailable", err)
	}
	var last Revision
	for i := range 20 {
		last = put(t, a, fmt.Sprintf("app/during/%d", i), "v")
	}
	if kv, err := c.Get(ctx, "app/k"); err != nil || string(kv.Value) != "before" {
		t.Fatalf("a read on the replica cut off: %+v, %v", kv, err)
	}
	waitFor(t, "reporting etcd unavailable", func() bool { return errors.Is(c.Replication().Err, ErrStoreUnavailable) })
	if c.Rev() != 1 {
		t.Fatalf("the replica cut off is at revision %d, want 1", c.Rev())
	}

	link.heal()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.WaitRev(wctx, last.Rev); err != nil {
		t.Fatalf("caught up after the link healed: %v (at %d)", err, c.Rev())
	}
	var r Revision
	waitFor(t, "taking writes again", func() bool {
		r, err = c.Commit(ctx, Txn{Actor: "t", Ops: []Op{Put("app/k", []byte("after"), "")}})
		return err == nil
	})
	if r.Rev != last.Rev+1 {
		t.Fatalf("the healed replica's write is revision %d, want %d: a gap or a duplicate", r.Rev, last.Rev+1)
	}
	waitFor(t, "following the log again", func() bool { return c.Replication().Err == nil })
	sameReplicas(t, r.Rev, a, c)
}

// link is the TCP proxies between a client and every etcd member.
type link []*tcpproxy.Proxy

func (l link) cut() {
	for _, px := range l {
		px.Cut()
	}
}

func (l link) heal() {
	for _, px := range l {
		px.Restore()
	}
}

// linkedClient returns a client of every member through a link of its own
// (cut and healed by the test), closed when the test ends.
func (e *replicaEnv) linkedClient(t *testing.T) (*clientv3.Client, link) {
	t.Helper()
	var l link
	var eps []string
	for _, ep := range e.c.Endpoints {
		px, err := tcpproxy.New(ep[len("http://"):])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(px.Close)
		l = append(l, px)
		eps = append(eps, "http://"+px.Addr())
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, l
}

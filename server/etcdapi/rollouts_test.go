package etcdapi_test

import (
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/rollout"
	"github.com/configd/configd/server/requests"
	"github.com/configd/configd/server/rollouts"
)

// TestEtcdWritesOfARunningRolloutsKeysAreRefused: etcd's API is a door
// like the others: while a rollout runs, a put, delete or txn that
// changes one of its keys is refused naming the rollout (docs/rollouts.md).
func TestEtcdWritesOfARunningRolloutsKeysAreRefused(t *testing.T) {
	e := startConfigd(t)
	ctx := timeout(t)
	cli := client(t, e.Addr)
	if _, err := cli.Put(ctx, "app/limits", "1"); err != nil {
		t.Fatal(err)
	}
	reqs := requests.New(e.c.Store)
	rq, err := reqs.Propose(ctx, requests.Draft{Scope: "app/", Author: "alice", Ops: []audit.Op{audit.Put("app/limits", []byte("2"), "")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rollouts.New(e.c.Store, reqs).Start(ctx, rollouts.Plan{Request: rq.ID, Steps: []rollout.Step{{Percent: 10}}, Actor: "alice", AllowEmpty: true}); err != nil {
		t.Fatal(err)
	}
	const want = "app/limits is in rollout 1: configctl rollout abort 1 or complete it first"
	refused := func(what string, err error) {
		t.Helper()
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want FailedPrecondition saying %q", what, err, want)
		}
	}
	_, err = cli.Put(ctx, "app/limits", "9")
	refused("put", err)
	_, err = cli.Delete(ctx, "app/limits")
	refused("delete", err)
	_, err = cli.Txn(ctx).Then(clientv3.OpPut("app/other", "1"), clientv3.OpPut("app/limits", "9")).Commit()
	refused("txn", err)
	if _, err := cli.Put(ctx, "app/other", "1"); err != nil {
		t.Errorf("a put of another key: %v", err)
	}
}

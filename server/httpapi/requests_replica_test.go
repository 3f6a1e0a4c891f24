package httpapi_test

import (
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
)

// TestChangeRequestAcrossReplicas: two replicas of a configd cluster on
// etcd. A request proposed on one is approved on the other and published
// on the first, and every replica has the same request and the change:
// requests are keys of the store, replicated as every key is.
func TestChangeRequestAcrossReplicas(t *testing.T) {
	etcd := testserver.Etcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	prefix := "/" + t.Name()
	e1 := configdtest.NewEnv(t, configdtest.WithReplicaOf(cli, prefix))
	e2 := configdtest.NewEnv(t, configdtest.WithReplicaOf(cli, prefix))
	// caughtUp waits until e has applied what the other replica has.
	caughtUp := func(e, other *configdtest.Env) {
		t.Helper()
		if err := e.Store.WaitRev(t.Context(), other.Store.Rev()); err != nil {
			t.Fatal(err)
		}
	}

	call(t, e1, "PUT", "/v1/policies", `{"prefix":"app/","approvals":1}`, "", "root").ok(t)
	call(t, e1, "POST", "/v1/requests", `{"scope":"app/","reason":"r","ops":[{"op":"put","key":"app/x","value":"2"}]}`, "", "alice").request(t)
	caughtUp(e2, e1)
	if rq := call(t, e2, "GET", "/v1/requests/1", "", "", "").request(t); rq.Author != "alice" || rq.ApprovalsNeeded != 1 {
		t.Fatalf("the other replica's request 1: %+v", rq)
	}
	call(t, e2, "POST", "/v1/requests/1/approve", "", "", "alice").refused(t, 403, api.CodeSelfApproval, "another person")
	call(t, e2, "POST", "/v1/requests/1/approve", "", "", "bob").request(t)
	caughtUp(e1, e2)
	rq := call(t, e1, "POST", "/v1/requests/1/publish", "", "", "alice").request(t)
	caughtUp(e2, e1)
	for i, e := range []*configdtest.Env{e1, e2} {
		if got := value(t, e, "app/x"); got != "2" {
			t.Errorf("replica %d: app/x = %s", i+1, got)
		}
		if got := call(t, e, "GET", "/v1/requests/1", "", "", "").request(t); got.State != api.RequestPublished || got.PublishedRev != rq.PublishedRev {
			t.Errorf("replica %d: request 1 %+v", i+1, got)
		}
	}
}

package authz_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/core"
)

// etcdClient starts an etcd server for the test and returns a client of
// it; both end with the test.
func etcdClient(t *testing.T) *clientv3.Client {
	t.Helper()
	etcd := testserver.Etcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// tokenGate holds a replica's server back from the tokens its store's
// watch brings: registered before the server's token hook, a call of it
// when armed waits until released, so that the server still allows what
// the old tokens allowed.
type tokenGate struct {
	mu      sync.Mutex
	called  chan struct{} // closed at the first call
	armed   bool
	entered chan struct{} // closed when an armed call waits
	release chan struct{}
}

func newTokenGate() *tokenGate { return &tokenGate{called: make(chan struct{})} }

func (g *tokenGate) hook() {
	g.mu.Lock()
	select {
	case <-g.called:
	default:
		close(g.called)
	}
	if !g.armed {
		g.mu.Unlock()
		return
	}
	g.armed = false
	entered, release := g.entered, g.release
	g.mu.Unlock()
	close(entered)
	<-release
}

// arm makes the next call wait; it returns the channels that say it
// waits and that release it.
func (g *tokenGate) arm() (entered, release chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed, g.entered, g.release = true, make(chan struct{}), make(chan struct{})
	return g.entered, g.release
}

// TestAWriteWithATokenChangedOnAnotherReplicaIsRefused: two replicas of a
// configd cluster on etcd. A token is revoked (then another's grants
// narrowed) on one, and the other replica's server is held back from the
// change, so it still authenticates the token and allows the write: the
// write is refused all the same, as the door refuses such a token (401,
// then 403), and nothing is recorded on any replica; once the server has
// the change, writes go on.
func TestAWriteWithATokenChangedOnAnotherReplicaIsRefused(t *testing.T) {
	cli := etcdClient(t)
	prefix := "/" + t.Name()
	e1 := configdtest.NewEnv(t, configdtest.WithAuth(nil), configdtest.WithReplicaOf(cli, prefix))
	e1.Token("victim", api.Grant{Permission: "write", Prefix: "app/"})
	e1.Token("narrowed", api.Grant{Permission: "write", Prefix: "app/"})
	gate := newTokenGate()
	e2 := configdtest.NewEnv(t, configdtest.WithCore(core.WithStoreOptions(audit.WithTokenHook(gate.hook))),
		configdtest.WithAuth(nil), configdtest.WithReplicaOf(cli, prefix))
	e2.Secrets = e1.Secrets
	select { // the store's first copy of the tokens, from its watch
	case <-gate.called:
	case <-time.After(20 * time.Second):
		t.Fatal("the replica's store never read the tokens")
	}
	rev := e2.Store.Rev()

	// refused holds e2's server back from the change change makes on e1,
	// writes on e2 with token, and checks that want refuses it and that
	// nothing is recorded.
	refused := func(what string, change func(), token, method, path, body string, want int, code string) {
		t.Helper()
		entered, release := gate.arm()
		defer close(release)
		change()
		select {
		case <-entered:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: the replica's store never heard of it", what)
		}
		st, b := e2.Do(method, path, body, token)
		var resp api.ErrorResponse
		if st != want || json.Unmarshal(b, &resp) != nil || resp.Error.Code != code {
			t.Fatalf("%s, then a write with it on the other replica: %d %s; want %d %s", what, st, b, want, code)
		}
		for i, e := range []*configdtest.Env{e1, e2} {
			if got := e.Store.Rev(); got != rev {
				t.Fatalf("%s: replica %d at revision %d, want %d: the refused write was recorded", what, i+1, got, rev)
			}
		}
	}
	refused("the token revoked", func() {
		if st, b := e1.Do(http.MethodDelete, "/v1/tokens/victim", "", authz.BootstrapTokenName); st != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", st, b)
		}
	}, "victim", http.MethodPut, "/v1/kv/app/a", "v", http.StatusUnauthorized, api.CodeUnauthenticated)
	refused("the token's grants narrowed", func() {
		if st, b := e1.Do(http.MethodPut, "/v1/tokens/narrowed/grants", `{"grants":[{"permission":"write","prefix":"db/"}]}`, authz.BootstrapTokenName); st != http.StatusOK {
			t.Fatalf("narrow: %d %s", st, b)
		}
	}, "narrowed", http.MethodPost, "/v1/txn", `{"ops":[{"op":"put","key":"app/b","value":"v"}]}`, http.StatusForbidden, api.CodeForbidden)

	// The refused write had the server read the tokens again: the new
	// grants allow a write.
	if st, b := e2.Do(http.MethodPut, "/v1/kv/db/c", "v", "narrowed"); st != http.StatusOK {
		t.Fatalf("a write its token's new grants allow: %d %s", st, b)
	}
}

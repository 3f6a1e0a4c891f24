package uisessions_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/server/uisessions"
	"github.com/configd/configd/web"
)

type principal string

func (p principal) Name() string               { return string(p) }
func (p principal) Allows(perm, t string) bool { return true }

// codec keeps a principal's name.
type codec struct{}

func (codec) Encode(p web.Principal) ([]byte, error) { return []byte(`"` + p.Name() + `"`), nil }
func (codec) Decode(b []byte) (web.Principal, error) {
	return principal(strings.Trim(string(b), `"`)), nil
}

// replica is one replica's table, with a client of its own.
func replica(t *testing.T, etcd *testserver.EtcdServer, opts ...uisessions.Option) *uisessions.Table {
	t.Helper()
	tb, err := uisessions.New(etcd.Client(t), "/c", codec{}, append([]uisessions.Option{uisessions.WithTimeout(time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	select {
	case <-tb.Synced():
	case <-time.After(configdtest.WaitLimit):
		t.Fatal("the table did not read etcd")
	}
	return tb
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	configdtest.Eventually(t, what, cond)
}

func live(tb *uisessions.Table, id string) bool { _, ok := tb.Get(id); return ok }

// TestSessionsAreSharedByReplicas: a session opened on one table is found
// on another; ended on the second, it is gone from the first; the etcd key
// is the hash of the id, never the id.
func TestSessionsAreSharedByReplicas(t *testing.T) {
	etcd := testserver.Etcd(t)
	r1, r2 := replica(t, etcd), replica(t, etcd)

	id, err := r1.Create(t.Context(), principal("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := r1.Get(id); !ok || p.Name() != "alice" {
		t.Fatalf("on the replica that opened it: %v %v", p, ok)
	}
	opened := time.Now()
	waitFor(t, "the session reaches r2", func() bool { return live(r2, id) })
	t.Logf("a session opened on r1 works on r2 after %v", time.Since(opened))
	if p, _ := r2.Get(id); p.Name() != "alice" {
		t.Errorf("r2's principal: %q", p.Name())
	}
	key, _ := web.SessionKey(id)
	resp, err := etcd.Client(t).Get(t.Context(), "/c/uisessions/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("etcd: %v %v", resp, err)
	}
	if got, want := string(resp.Kvs[0].Key), "/c/uisessions/"+hex.EncodeToString(key[:]); got != want {
		t.Errorf("key %q, want %q", got, want)
	}
	if resp.Kvs[0].Lease == 0 || strings.Contains(string(resp.Kvs[0].Value), id) {
		t.Errorf("the session's key has no lease or holds the id: lease %x, %s", resp.Kvs[0].Lease, resp.Kvs[0].Value)
	}

	if err := r2.End(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if live(r2, id) {
		t.Error("the session is alive on r2 after End")
	}
	ended := time.Now()
	waitFor(t, "the logout reaches r1", func() bool { return !live(r1, id) })
	t.Logf("a session ended on r2 is over on r1 after %v", time.Since(ended))
	for _, bad := range []string{"", "x", id + "A"} {
		if live(r1, bad) {
			t.Errorf("Get(%q) found a session", bad)
		}
	}
}

// TestSessionsEndByTheirLease: a session without requests ends after the
// idle time on every replica (etcd ends its lease); one in use lives on,
// renewed, until its maximum age.
func TestSessionsEndByTheirLease(t *testing.T) {
	etcd := testserver.Etcd(t)
	// maxAge is well above idle: the idle session's end waits for etcd to
	// revoke its lease and both replicas to hear of it, which took close to
	// 9 s once on a loaded CI machine (the busy session, at a 9 s maximum
	// age, ended first).
	const idle, maxAge = 3 * time.Second, 15 * time.Second
	r1, r2 := replica(t, etcd, uisessions.WithLifetime(idle, maxAge)), replica(t, etcd, uisessions.WithLifetime(idle, maxAge))
	idleID, err := r1.Create(t.Context(), principal("idle"))
	if err != nil {
		t.Fatal(err)
	}
	busyID, err := r1.Create(t.Context(), principal("busy"))
	if err != nil {
		t.Fatal(err)
	}
	opened := time.Now()
	waitFor(t, "both sessions reach r2", func() bool { return live(r2, idleID) && live(r2, busyID) })
	// busy is used on r2 only, at every poll; idle is not used at all: a
	// Get would renew it (every idle/3), so the tables' sizes tell when it
	// is gone. (Polling it with Get kept it alive until its maximum age,
	// a few milliseconds before busy's: the test failed when one poll saw
	// both gone.)
	waitFor(t, "the idle session ends on both replicas", func() bool {
		if !live(r2, busyID) {
			t.Fatalf("the busy session ended after %v", time.Since(opened))
		}
		return r1.Len() == 1 && r2.Len() == 1
	})
	if live(r1, idleID) || live(r2, idleID) {
		t.Errorf("the idle session is still found once the tables hold only the busy one")
	}
	t.Logf("the idle session ended after %v", time.Since(opened).Round(time.Millisecond))
	if d := time.Since(opened); d < idle {
		t.Errorf("the idle session ended after %v, before its idle time %v", d, idle)
	}
	waitFor(t, "the busy session ends at its maximum age", func() bool { return !live(r2, busyID) })
	if d := time.Since(opened); d < maxAge-time.Second {
		t.Errorf("the busy session ended after %v, before its maximum age %v", d, maxAge)
	}
	waitFor(t, "the busy session is gone from r1 too", func() bool { return !live(r1, busyID) })
}

// TestSessionsWithoutEtcd: when etcd does not answer, the sessions a
// replica knows go on working, and a login fails with ErrUnavailable.
func TestSessionsWithoutEtcd(t *testing.T) {
	etcd := testserver.Etcd(t)
	r1 := replica(t, etcd)
	id, err := r1.Create(t.Context(), principal("alice"))
	if err != nil {
		t.Fatal(err)
	}
	etcd.Stop()
	if !live(r1, id) {
		t.Error("a known session stopped working when etcd went down")
	}
	if _, err := r1.Create(t.Context(), principal("bob")); !errors.Is(err, uisessions.ErrUnavailable) {
		t.Errorf("a login without etcd: %v, want ErrUnavailable", err)
	}
	etcd.Start()
	// The client reconnects with a backoff of its own: the first login
	// after the restart may still find it away, as a user would.
	var id2 string
	waitFor(t, "a login once etcd is back", func() bool {
		id2, err = r1.Create(t.Context(), principal("bob"))
		return err == nil
	})
	if !live(r1, id) || !live(r1, id2) {
		t.Error("sessions lost across etcd's restart")
	}
}

package sourcelead_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/server/pump"
	"github.com/configd/configd/server/sourcelead"
)

var _ pump.Leadership = (*sourcelead.Elections)(nil)

func TestElections(t *testing.T) {
	etcd := testserver.Etcd(t)
	t.Run("ClosingHandsTheRolesOverAtOnce", func(t *testing.T) { closeHandsOver(t, etcd) })
	t.Run("ResigningWhenTheCampaignEnds", func(t *testing.T) { resign(t, etcd) })
}

func TestNewRefusesABadTTL(t *testing.T) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:1"}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for _, ttl := range []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond} {
		if _, err := sourcelead.New(cli, "/p", sourcelead.WithTTL(ttl)); err == nil {
			t.Errorf("TTL %v accepted", ttl)
		}
	}
}

// elections returns the elections of a replica named name under the
// test's prefix, on a client of its own; both end with the test.
func elections(t *testing.T, etcd *testserver.EtcdServer, name string, ttl time.Duration) *sourcelead.Elections {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	e, err := sourcelead.New(cli, "/configd-test/"+t.Name(), sourcelead.WithTTL(ttl), sourcelead.WithReplica(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func leaders(t *testing.T, e *sourcelead.Elections) map[string]string {
	t.Helper()
	l, err := e.Leaders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A replica that shuts down revokes its session: the next one in line
// takes its roles without waiting for the TTL.
func closeHandsOver(t *testing.T, etcd *testserver.EtcdServer) {
	ctx := context.Background()
	a := elections(t, etcd, "a", time.Minute)
	b := elections(t, etcd, "b", time.Minute)
	lostA, _, err := a.Campaign(ctx, "files")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Campaign(ctx, "env"); err != nil {
		t.Fatal(err)
	}
	if got := leaders(t, b); got["files"] != "a" || got["env"] != "a" {
		t.Fatalf("leaders %v, want a for both", got)
	}
	won := make(chan error, 1)
	go func() {
		_, _, err := b.Campaign(ctx, "files")
		won <- err
	}()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lostA:
	case <-time.After(5 * time.Second):
		t.Fatal("a's role did not end with its session")
	}
	select {
	case err := <-won:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second): // the TTL is a minute
		t.Fatal("b did not take the role once a closed")
	}
	if got := leaders(t, b); got["files"] != "b" || len(got) != 1 {
		t.Fatalf("leaders %v, want only files: b", got)
	}
	if _, _, err := a.Campaign(ctx, "files"); !errors.Is(err, sourcelead.ErrSessionEnded) {
		t.Fatalf("a campaign after Close: %v, want ErrSessionEnded", err)
	}
}

// Ending a campaign's context gives up the role (or the place in line).
func resign(t *testing.T, etcd *testserver.EtcdServer) {
	a := elections(t, etcd, "a", time.Minute)
	b := elections(t, etcd, "b", time.Minute)
	ctxA, endA := context.WithCancel(context.Background())
	lostA, _, err := a.Campaign(ctxA, "files")
	if err != nil {
		t.Fatal(err)
	}
	// b waits in line, then gives up.
	ctxB, endB := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer endB()
	if _, _, err := b.Campaign(ctxB, "files"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("b's campaign while a leads: %v, want its context's error", err)
	}
	endA()
	<-lostA
	if got := leaders(t, b); len(got) != 0 {
		t.Fatalf("leaders %v once both gave up, want none", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := b.Campaign(ctx, "files"); err != nil {
		t.Fatalf("b's campaign once a resigned: %v", err)
	}
}

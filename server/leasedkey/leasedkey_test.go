package leasedkey_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/server/leasedkey"
)

// A key kept is in etcd, under a lease, while the keeper runs; a failed
// Publish starts a new session, whose first call is fresh; Close takes the
// key away at once (the lease revoked), not one TTL later.
func TestAKeyIsKeptUntilCloseAndAFailureStartsAFreshSession(t *testing.T) {
	cli := testserver.Etcd(t).Client(t)
	ctx := context.Background()
	calls := make(chan bool, 100)
	failOnce := true
	k := leasedkey.Start(leasedkey.Config{Client: cli, TTL: 60, Timeout: 5 * time.Second, Tick: 10 * time.Millisecond,
		What: "the test's key", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Publish: func(ctx context.Context, lease clientv3.LeaseID, fresh bool) error {
			var err error
			switch {
			case fresh:
				_, err = cli.Put(ctx, "k", "v", clientv3.WithLease(lease))
			case failOnce:
				failOnce = false
				err = errors.New("injected")
			}
			select { // once the call's work is done
			case calls <- fresh:
			default:
			}
			return err
		}})
	// fresh, then a failure, then a new session: fresh again.
	want := []bool{true, false, true}
	for i, w := range want {
		select {
		case got := <-calls:
			if got != w {
				t.Fatalf("call %d: fresh %v, want %v", i, got, w)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("call %d never came", i)
		}
	}
	resp, err := cli.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("the key while kept: %v, %v; want it under a lease", resp, err)
	}
	k.Close()
	if resp, err = cli.Get(ctx, "k"); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("the key after Close: %v, %v; want it gone (a TTL of 60 s has not passed)", resp, err)
	}
}

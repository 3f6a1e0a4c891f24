package forward

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/testserver"
)

// TestTheOldestRegistrationIsTheWriter registers three replicas in a real
// etcd and checks that each one's tracker names the oldest as the writer,
// and the next oldest once the writer's lease is revoked.
func TestTheOldestRegistrationIsTheWriter(t *testing.T) {
	e := testserver.Etcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := "/t/replicas/"
	register := func(name, addr string) clientv3.LeaseID {
		l, err := cli.Grant(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(api.ReplicaStatus{Name: name, Addr: addr})
		if _, err := cli.Put(ctx, dir+name, string(b), clientv3.WithLease(l.ID)); err != nil {
			t.Fatal(err)
		}
		return l.ID
	}
	r1 := register("r1", "127.0.0.1:1")
	register("r2", "127.0.0.1:2")
	// Not a registration: never the writer.
	if _, err := cli.Put(ctx, dir+"junk", "{"); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	trackers := map[string]*Oldest{}
	for _, self := range []string{"r1", "r2", "r3"} {
		trackers[self] = TrackOldest(ctx, cli, dir, self, quiet)
	}
	// Once Known, the writer registered then is named, without waiting
	// for a change.
	for self, want := range map[string]string{"r1": "", "r2": "http://127.0.0.1:1", "r3": "http://127.0.0.1:1"} {
		select {
		case <-trackers[self].Known():
		case <-ctx.Done():
			t.Fatalf("%s: the registrations were never read", self)
		}
		if got := trackers[self].WriterURL(); got != want {
			t.Fatalf("%s, once the registrations are known: writer %q, want %q", self, got, want)
		}
	}
	register("r3", "127.0.0.1:3")
	waitFor := func(want map[string]string) {
		t.Helper()
		for name, tr := range trackers {
			for tr.WriterURL() != want[name] {
				select {
				case <-ctx.Done():
					t.Fatalf("%s: writer %q, want %q", name, tr.WriterURL(), want[name])
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
	}
	waitFor(map[string]string{"r1": "", "r2": "http://127.0.0.1:1", "r3": "http://127.0.0.1:1"})
	// The writer's lease ends (it died): the next oldest takes the writes.
	if _, err := cli.Revoke(ctx, r1); err != nil {
		t.Fatal(err)
	}
	waitFor(map[string]string{"r1": "http://127.0.0.1:2", "r2": "", "r3": "http://127.0.0.1:2"})
}

package config

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
)

// fakeConfigd is a scripted server of the watch protocol: each watch the
// client creates is handed to the test, which answers it by hand. It
// checks what a real configd can't be made to do on cue (resync,
// revisions it no longer knows, duplicates).
type fakeConfigd struct {
	configdpb.UnimplementedConfigServer
	creates chan fakeWatch
}

// fakeWatch is one WatchCreate and the stream to answer it on.
type fakeWatch struct {
	*configdpb.WatchCreate
	stream configdpb.Config_WatchServer
}

func (f *fakeConfigd) Watch(stream configdpb.Config_WatchServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		if c := req.GetCreate(); c != nil {
			select {
			case f.creates <- fakeWatch{c, stream}:
			case <-stream.Context().Done():
				return nil
			}
		}
	}
}

func startFake(t *testing.T) (string, *fakeConfigd) {
	t.Helper()
	f := &fakeConfigd{creates: make(chan fakeWatch, 16)}
	gs := grpc.NewServer()
	configdpb.RegisterConfigServer(gs, f)
	lis := listen(t)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return lis.Addr().String(), f
}

// expect waits for the client's next WatchCreate.
func (f *fakeConfigd) expect(t *testing.T) fakeWatch {
	t.Helper()
	select {
	case w := <-f.creates:
		return w
	case <-time.After(waitLimit):
		t.Fatal("the client created no watch")
	}
	panic("unreachable")
}

func (w fakeWatch) send(t *testing.T, kind configdpb.WatchResponse_Kind, rev int64, kvs ...string) {
	t.Helper()
	m := &configdpb.WatchResponse{WatchId: w.WatchId, Kind: kind, Rev: rev, Actor: "bob"}
	for i := 0; i+1 < len(kvs); i += 2 {
		ev := &configdpb.Event{Kv: &configdpb.KeyValue{Key: kvs[i], Value: []byte(kvs[i+1]), ModRev: rev}}
		if kvs[i+1] == "<delete>" {
			ev = &configdpb.Event{Type: configdpb.Event_DELETE, Kv: &configdpb.KeyValue{Key: kvs[i]}}
		}
		m.Events = append(m.Events, ev)
	}
	if err := w.stream.Send(m); err != nil {
		t.Fatal(err)
	}
}

func (w fakeWatch) cancel(t *testing.T, rev int64, code string) {
	t.Helper()
	if err := w.stream.Send(&configdpb.WatchResponse{WatchId: w.WatchId, Kind: configdpb.WatchResponse_CANCELED, Rev: rev,
		Code: code, Error: "refused by the test"}); err != nil {
		t.Fatal(err)
	}
}

const (
	created  = configdpb.WatchResponse_CREATED
	snapshot = configdpb.WatchResponse_SNAPSHOT
	changes  = configdpb.WatchResponse_CHANGES
	progress = configdpb.WatchResponse_PROGRESS
	resync   = configdpb.WatchResponse_RESYNC
)

// startOnFake makes a client of the fake and serves its first watch with
// a snapshot of kvs at rev.
func startOnFake(t *testing.T, rev int64, kvs ...string) (*Client, *fakeConfigd, fakeWatch) {
	t.Helper()
	addr, f := startFake(t)
	type result struct {
		c   *Client
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := New(context.Background(), WithAddress(addr), WithGRPC(), WithLogger(discard()), WithTimeout(waitLimit))
		ch <- result{c, err}
	}()
	w := f.expect(t)
	if w.Since != 0 || !slices.Equal(w.Prefixes, []string{""}) {
		t.Fatalf("first watch: since %d prefixes %q, want since 0 on the whole keyspace", w.Since, w.Prefixes)
	}
	w.send(t, created, rev)
	w.send(t, snapshot, rev, kvs...)
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close() })
	return r.c, f, w
}

func TestResyncCreatesTheWatchAgainFromTheLastAppliedRevision(t *testing.T) {
	c, f, w1 := startOnFake(t, 5, "k", "a")
	wk, _ := c.Watch("k")
	defer wk.Stop()
	w1.send(t, changes, 6, "k", "b")
	w1.send(t, resync, 9)
	w2 := f.expect(t)
	if w2.Since != 6 || w2.stream == w1.stream {
		t.Fatalf("after RESYNC: watch %d since %d (same stream %v), want a new watch since 6 on a new stream",
			w2.WatchId, w2.Since, w2.stream == w1.stream)
	}
	// The old stream is gone: what it might still carry is ignored.
	_ = w1.stream.Send(&configdpb.WatchResponse{WatchId: w1.WatchId, Kind: changes, Rev: 7})
	w2.send(t, created, 9)
	w2.send(t, changes, 7, "k", "c")
	w2.send(t, changes, 7, "k", "duplicate") // already applied: ignored
	w2.send(t, changes, 8, "k", "d")
	var got []string
	for range 3 {
		u := next(t, wk)
		got = append(got, fmt.Sprint(u.Rev, "=", u.Value.String(""), " by ", u.Actor))
	}
	if want := []string{"6=b by bob", "7=c by bob", "8=d by bob"}; !slices.Equal(got, want) {
		t.Fatalf("updates %v, want %v", got, want)
	}
	waitRev(t, c, 8)
	if n := queued(wk); n != 0 {
		t.Fatalf("%d more updates, want none", n)
	}
}

func TestProgressMovesTheResumeRevision(t *testing.T) {
	c, _, w1 := startOnFake(t, 5, "k", "a")
	w1.send(t, progress, 12)
	waitRev(t, c, 12)
	if v := c.Get("k"); v.Rev() != 12 || v.String("") != "a" {
		t.Fatalf("Get after progress: rev %d value %q", v.Rev(), v.String(""))
	}
}

func TestAnUnknownRevisionTakesAFreshSnapshotAndNotifiesOnlyChangedPaths(t *testing.T) {
	c, f, w1 := startOnFake(t, 5, "same", "1", "changed", "1", "gone", "1")
	wSame, _ := c.Watch("same")
	wChanged, _ := c.Watch("changed")
	wGone, _ := c.Watch("gone")
	wNew, _ := c.Watch("new")
	for _, w := range []*Watcher{wSame, wChanged, wGone, wNew} {
		defer w.Stop()
	}
	// configd restarts with another store, whose revisions are behind ours.
	w1.stream.Send(&configdpb.WatchResponse{WatchId: 99, Kind: changes, Rev: 100}) // not our watch: ignored
	w1.send(t, resync, 5)
	w2 := f.expect(t)
	if w2.Since != 5 {
		t.Fatalf("since %d, want 5", w2.Since)
	}
	w2.cancel(t, 3, api.CodeBadRevision)
	w3 := f.expect(t)
	if w3.Since != 0 {
		t.Fatalf("after bad_revision: since %d, want 0 (a snapshot)", w3.Since)
	}
	w3.send(t, created, 3)
	w3.send(t, snapshot, 3, "same", "1", "changed", "2", "new", "1")
	for name, w := range map[string]*Watcher{"changed": wChanged, "new": wNew} {
		u := next(t, w)
		if u.Rev != 3 || u.Value.String("") == "" || len(u.Changes) != 1 || u.Changes[0].Key != name {
			t.Fatalf("%s: %+v", name, u)
		}
	}
	if u := next(t, wGone); u.Value.Exists() || !u.Changes[0].Deleted {
		t.Fatalf("gone: %+v", u)
	}
	// Watchers hear of a change once the copy has it.
	if c.Rev() != 3 {
		t.Fatalf("Rev = %d, want configd's 3", c.Rev())
	}
	if n := queued(wSame); n != 0 {
		t.Fatalf("the unchanged key got %d updates", n)
	}
	if c.Get("gone").Exists() || c.Get("changed").String("") != "2" {
		t.Fatal("the snapshot did not replace the copy")
	}
}

func TestARefusedWatchReconnects(t *testing.T) {
	c, f, w1 := startOnFake(t, 5, "k", "a")
	w1.cancel(t, 5, api.CodeUnavailable)
	w2 := f.expect(t)
	if w2.stream == w1.stream || w2.Since != 5 {
		t.Fatalf("after a refusal: same stream %v since %d; want a new stream since 5", w2.stream == w1.stream, w2.Since)
	}
	if c.Get("k").String("") != "a" {
		t.Fatal("the copy was lost")
	}
}

func TestChangesOutsideThePrefixAreIgnored(t *testing.T) {
	addr, f := startFake(t)
	errc := make(chan error, 1)
	var c *Client
	go func() {
		var err error
		c, err = New(context.Background(), WithAddress(addr), WithGRPC(), WithPrefix("app"), WithLogger(discard()))
		errc <- err
	}()
	w := f.expect(t)
	if !slices.Equal(w.Prefixes, []string{"app/"}) {
		t.Fatalf("prefixes %q", w.Prefixes)
	}
	w.send(t, created, 1)
	w.send(t, snapshot, 1, "app/a", "1", "apple", "no", "app/", "no")
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Get("a").Exists() || c.Get("apple").Exists() || c.Get("le").Exists() || c.Get().StringMap(nil)["a"] != "1" || len(c.Get().StringMap(nil)) != 1 {
		t.Fatalf("copy = %v", keys(c.state.Load().root))
	}
}

package etcdapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/configd/configd/audit"
)

// event is an etcd event as a line: "rev PUT key=value (prev)".
func event(ev *clientv3.Event) string {
	s := fmt.Sprintf("%d %s %s", ev.Kv.ModRevision, ev.Type, ev.Kv.Key)
	if ev.Type == mvccpb.PUT {
		s += fmt.Sprintf("=%s v%d", ev.Kv.Value, ev.Kv.Version)
	}
	if ev.PrevKv != nil {
		s += fmt.Sprintf(" (was %s)", ev.PrevKv.Value)
	}
	return s
}

// collect reads wc until it has n events.
func collect(t *testing.T, wc clientv3.WatchChan, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		resp, ok := <-wc
		if !ok {
			t.Fatalf("the watch ended after %v", got)
		}
		if err := resp.Err(); err != nil {
			t.Fatalf("watch: %v (after %v)", err, got)
		}
		for _, ev := range resp.Events {
			got = append(got, event(ev))
		}
	}
	return got
}

func TestEtcdWatchFromARevisionWithPrevKVMissesNothing(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	for i, kv := range [][2]string{{"app/a", "1"}, {"app/b", "1"}, {"other", "x"}, {"app/a", "2"}} {
		if _, err := cli.Put(ctx, kv[0], kv[1]); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if _, err := cli.Delete(ctx, "app/b"); err != nil { // rev 5
		t.Fatal(err)
	}
	wc := cli.Watch(ctx, "app/", clientv3.WithPrefix(), clientv3.WithRev(2), clientv3.WithPrevKV())
	got := collect(t, wc, 3)
	want := []string{"2 PUT app/b=1 v1", "4 PUT app/a=2 v2 (was 1)", "5 DELETE app/b (was 1)"}
	if !slices.Equal(got, want) {
		t.Fatalf("history: %q, want %q", got, want)
	}
	// Then live, and only the range: a put, a put filtered out.
	if _, err := cli.Put(ctx, "apple", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "app/c", "3"); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, wc, 1); !slices.Equal(got, []string{"7 PUT app/c=3 v1"}) {
		t.Fatalf("live: %q", got)
	}
}

// TestEtcdWatchesShareAStream: many watches on one stream, each with its
// ID and filters; watching from revision 1 replays the first revision
// too; a cancelled watch gets nothing more.
func TestEtcdWatchesShareAStream(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	if _, err := cli.Put(ctx, "k", "1"); err != nil {
		t.Fatal(err)
	}
	all := cli.Watch(ctx, "", clientv3.WithFromKey(), clientv3.WithRev(1))
	noDel := cli.Watch(ctx, "k", clientv3.WithFilterDelete())
	wctx, cancel := context.WithCancel(ctx)
	cancelled := cli.Watch(wctx, "k")
	// Until a watch is created, etcd's client has not sent the next.
	cli.RequestProgress(ctx)
	if _, err := cli.Put(ctx, "k", "2"); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, cancelled, 1); !slices.Equal(got, []string{"2 PUT k=2 v2"}) {
		t.Fatalf("watch to cancel: %q", got)
	}
	cancel()
	if _, err := cli.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "k", "3"); err != nil {
		t.Fatal(err)
	}
	if got, want := collect(t, all, 4), []string{"1 PUT k=1 v1", "2 PUT k=2 v2", "3 DELETE k", "4 PUT k=3 v1"}; !slices.Equal(got, want) {
		t.Fatalf("everything from revision 1: %q, want %q", got, want)
	}
	if got, want := collect(t, noDel, 2), []string{"2 PUT k=2 v2", "4 PUT k=3 v1"}; !slices.Equal(got, want) {
		t.Fatalf("without deletes: %q, want %q", got, want)
	}
	for resp := range cancelled {
		if len(resp.Events) > 0 {
			t.Fatalf("a cancelled watch received %v", resp.Events)
		}
	}
}

func TestEtcdWatchResumesAcrossARestart(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	if _, err := cli.Put(ctx, "app/a", "1"); err != nil {
		t.Fatal(err)
	}
	wc := cli.Watch(ctx, "app/", clientv3.WithPrefix(), clientv3.WithRev(1))
	if got := collect(t, wc, 1); !slices.Equal(got, []string{"1 PUT app/a=1 v1"}) {
		t.Fatalf("before: %q", got)
	}
	// configd goes away; writes land while no client is connected.
	e.serving.Stop()
	if err := e.c.Close(); err != nil {
		t.Fatal(err)
	}
	e.open()
	for _, v := range []string{"2", "3"} {
		if _, err := e.c.Store.Commit(ctx, audit.Txn{Actor: "t", Ops: []audit.Op{audit.Put("app/a", []byte(v), "")}}); err != nil {
			t.Fatal(err)
		}
	}
	e.serving.Restart(e.c, e.cfg)
	// The client resumes on its own from the revision after the last it
	// received; so does a new watch that names it.
	if got, want := collect(t, wc, 2), []string{"2 PUT app/a=2 v2", "3 PUT app/a=3 v3"}; !slices.Equal(got, want) {
		t.Fatalf("resumed: %q, want %q", got, want)
	}
	if got, want := collect(t, cli.Watch(ctx, "app/a", clientv3.WithRev(2)), 2), []string{"2 PUT app/a=2 v2", "3 PUT app/a=3 v3"}; !slices.Equal(got, want) {
		t.Fatalf("watch with rev 2 after the restart: %q, want %q", got, want)
	}
}

// TestEtcdWatchBelowTheHorizonIsCompacted: a start revision whose history
// configd's retention removed is answered with the compact revision.
func TestEtcdWatchBelowTheHorizonIsCompacted(t *testing.T) {
	e := startConfigd(t, audit.WithRetention(2, 0), audit.WithCompactInterval(-1))
	cli := client(t, e.Addr)
	ctx := timeout(t)
	for i := range 5 {
		if _, err := cli.Put(ctx, "k", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.c.Store.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	h := e.c.Store.Horizon()
	if h < 2 {
		t.Fatalf("horizon %d after compaction", h)
	}
	resp := <-cli.Watch(ctx, "k", clientv3.WithRev(1))
	if resp.CompactRevision != h || resp.Err() != rpctypes.ErrCompacted {
		t.Fatalf("watch from 1: compact revision %d, err %v; want %d, %v", resp.CompactRevision, resp.Err(), h, rpctypes.ErrCompacted)
	}
	if _, err := cli.Get(ctx, "k", clientv3.WithRev(1)); err != rpctypes.ErrCompacted {
		t.Fatalf("get at revision 1: %v, want %v", err, rpctypes.ErrCompacted)
	}
	if got := collect(t, cli.Watch(ctx, "k", clientv3.WithRev(h)), 5-int(h)+1); len(got) == 0 || got[0] != fmt.Sprintf("%d PUT k=%d v%d", h, h-1, h) {
		t.Fatalf("watch from the horizon: %q", got)
	}
}

func TestEtcdWatchProgressNotify(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	if _, err := cli.Put(ctx, "k", "1"); err != nil {
		t.Fatal(err)
	}
	wc := cli.Watch(ctx, "k")
	if err := cli.RequestProgress(ctx); err != nil {
		t.Fatal(err)
	}
	resp := <-wc
	if !resp.IsProgressNotify() || resp.Header.Revision != 1 {
		t.Fatalf("progress: %+v, want a progress notification at revision 1", resp)
	}
}

// TestEtcdWatchesAreCounted: etcd watches count in configd_watchers with
// configd's own, and leave it when cancelled.
func TestEtcdWatchesAreCounted(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	watchers := func() string {
		resp, err := http.Get("http://" + e.Addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "configd_watchers ") {
				return strings.TrimPrefix(l, "configd_watchers ")
			}
		}
		return ""
	}
	if _, err := cli.Put(ctx, "other", "1"); err != nil { // etcd's revisions start at 1
		t.Fatal(err)
	}
	// progressed waits for a progress notification on wc: configd has
	// handled every request the client sent on the stream before.
	progressed := func(wc clientv3.WatchChan) {
		t.Helper()
		if err := cli.RequestProgress(ctx); err != nil {
			t.Fatal(err)
		}
		if resp := <-wc; !resp.IsProgressNotify() {
			t.Fatalf("got %+v, want the progress notification", resp)
		}
	}
	stays := cli.Watch(ctx, "other")
	wctx, cancel := context.WithCancel(ctx)
	wc := cli.Watch(wctx, "k")
	progressed(wc)
	<-stays // its progress notification too
	if got := watchers(); got != "2" {
		t.Fatalf("configd_watchers %q with two etcd watches, want 2", got)
	}
	cancel()
	for range wc {
	}
	progressed(stays) // sent after the cancel
	if got := watchers(); got != "1" {
		t.Fatalf("configd_watchers %q after a cancel, want 1", got)
	}
}

package pump_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/server/httpapi"
	"github.com/configd/configd/server/pump"
	"github.com/configd/configd/server/sourcelead"
	"github.com/configd/configd/source"
	"github.com/configd/configd/source/consul"
	"github.com/configd/configd/source/file"
)

// ttl is the replicas' session TTL in these tests; etcd raises a lease's
// TTL to its minimum (1.5 s with its default timings, rounded up to 2 s).
const ttl = time.Second

// The replicas of a cluster sync each source once: one replica runs it,
// a change is one revision, another replica takes over when the first
// dies, and nothing is lost while etcd is away.
func TestSourcesOnReplicas(t *testing.T) {
	etcd := testserver.Etcd(t)
	t.Run("OneReplicaSyncsEachSourceOnce", func(t *testing.T) { oneSyncer(t, etcd) })
	t.Run("TakeoverCatchesUpWithoutSpuriousDeletes", func(t *testing.T) { takeover(t, etcd, newFileFeed(t)) })
	t.Run("ConsulSourceAcrossTheDeathOfItsReplica", func(t *testing.T) {
		takeover(t, etcd, consulFeed{srv: testserver.Consul(t), prefix: "micro/config/"})
	})
	t.Run("EtcdDownWhileCampaigningKeepsTheLayer", func(t *testing.T) { etcdDown(t, etcd) })
	t.Run("AHolderWhoseKeyIsGoneRecordsNothing", func(t *testing.T) { fenced(t, etcd) })
	t.Run("SourceEventsAreListedByEveryReplica", func(t *testing.T) { sharedEvents(t, etcd) })
}

// cluster is n replicas of one store under the test's etcd prefix, each
// with a pump that runs one source, "files" (a file) or "kv" (Consul),
// mounted at app/.
type cluster struct {
	replicas []*replica
	feed     feed
}

// feed is the outside system a source reads.
type feed interface {
	// source is the source's config; its name is the layer's.
	source() source.Config
	// set makes the source's content be kvs, at once.
	set(t *testing.T, kvs map[string]string)
}

// fileFeed is a YAML file, read by a file source named "files".
type fileFeed struct{ path string }

func newFileFeed(t *testing.T) fileFeed {
	return fileFeed{path: filepath.Join(t.TempDir(), "app.yaml")}
}

func (f fileFeed) source() source.Config {
	return source.Config{Name: "files", Type: "file", Mount: "app/",
		TypeConfig: file.Config{Path: f.path, Debounce: 20 * time.Millisecond}}
}

func (f fileFeed) set(t *testing.T, kvs map[string]string) {
	t.Helper()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(kvs)) {
		fmt.Fprintf(&b, "%s: %q\n", k, kvs[k])
	}
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		t.Fatal(err)
	}
}

// consulFeed is a Consul KV prefix, read by a Consul source named "files"
// too (the layer's name does not matter here).
type consulFeed struct {
	srv    *testserver.ConsulServer
	prefix string
}

func (f consulFeed) source() source.Config {
	return source.Config{Name: "files", Type: "consul", Mount: "app/",
		TypeConfig: consul.Config{Address: f.srv.Addr, Prefix: f.prefix, RequestTimeout: 3 * time.Second}}
}

// set replaces the prefix's content in one Consul transaction.
func (f consulFeed) set(t *testing.T, kvs map[string]string) {
	t.Helper()
	cfg := consulapi.DefaultConfig()
	cfg.Address, cfg.Scheme = f.srv.Addr, "http"
	c, err := consulapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ops := consulapi.KVTxnOps{{Verb: consulapi.KVDeleteTree, Key: f.prefix}}
	for k, v := range kvs {
		ops = append(ops, &consulapi.KVTxnOp{Verb: consulapi.KVSet, Key: f.prefix + k, Value: []byte(v)})
	}
	ok, resp, _, err := c.KV().Txn(ops, nil)
	if err != nil || !ok {
		t.Fatalf("consul txn: %v %v", err, resp)
	}
}

type replica struct {
	name string
	st   *audit.Store
	// cli is the elections' own client: closing it ends the replica's
	// session as its death would, and leaves its store running.
	cli *clientv3.Client
	el  *sourcelead.Elections
	p   *pump.Pump
}

func newCluster(t *testing.T, etcd *testserver.EtcdServer, n int, f feed, content map[string]string) *cluster {
	t.Helper()
	prefix := "/configd-test/" + t.Name()
	c := &cluster{feed: f}
	f.set(t, content)
	cfgs := []source.Config{f.source()}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	for i := range n {
		r := &replica{name: fmt.Sprintf("r%d", i), cli: etcdClient(t, etcd)}
		st, err := audit.Open(context.Background(), filepath.Join(t.TempDir(), "configd.db"),
			audit.WithEtcd(etcdClient(t, etcd), prefix), audit.WithEtcdTimeout(2*time.Second),
			audit.WithLayers("files", audit.StoreLayer))
		if err != nil {
			t.Fatalf("open replica %s: %v", r.name, err)
		}
		t.Cleanup(func() { st.Close() })
		r.st = st
		r.el, err = sourcelead.New(r.cli, prefix, sourcelead.WithTTL(ttl), sourcelead.WithTimeout(time.Second),
			sourcelead.WithReplica(r.name))
		if err != nil {
			t.Fatal(err)
		}
		r.p, err = pump.Start(context.Background(), st, cfgs, logger.With("replica", r.name), pump.WithLeadership(r.el))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.el.Close() })
		t.Cleanup(r.p.Close) // first: the pump resigns before its session ends
		c.replicas = append(c.replicas, r)
	}
	return c
}

// etcdClient returns a client of etcd, closed when the test ends.
func etcdClient(t *testing.T, etcd *testserver.EtcdServer) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// leader waits until exactly one replica (not one of skip) syncs "files",
// and every other one says it stands by, and returns it.
func (c *cluster) leader(t *testing.T, skip ...*replica) *replica {
	t.Helper()
	var lead *replica
	waitFor(t, "one replica syncing the source", func() bool {
		lead = nil
		for _, r := range c.replicas {
			if slices.Contains(skip, r) {
				continue
			}
			if slices.Equal(r.p.Leading(), []string{"files"}) {
				if lead != nil {
					t.Fatalf("%s and %s both sync the source", lead.name, r.name)
				}
				lead = r
			}
		}
		return lead != nil
	})
	for _, r := range c.replicas {
		if r != lead && !slices.Contains(skip, r) {
			if got := r.p.Leading(); len(got) != 0 {
				t.Fatalf("%s syncs %v beside %s", r.name, got, lead.name)
			}
			if st := status(r, "files"); st.State != string(pump.StateStandby) {
				t.Errorf("%s: the source's state is %q, want %q", r.name, st.State, pump.StateStandby)
			}
		}
	}
	return lead
}

func status(r *replica, name string) (out struct{ State, LastError string }) {
	for _, ss := range r.p.Statuses() {
		if ss.Name == name {
			out.State, out.LastError = ss.State, ss.LastError
		}
	}
	return out
}

// synced waits until every replica's store holds want under app/ (nil: the
// key is missing) and has caught up with the log, and returns the head.
func (c *cluster) synced(t *testing.T, want map[string]string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var head int64
	waitFor(t, fmt.Sprintf("the source's keys %v on every replica", want), func() bool {
		for _, r := range c.replicas {
			rev, err := r.st.Sync(ctx)
			if err != nil {
				t.Fatalf("%s: sync: %v", r.name, err)
			}
			head = rev
			for k, v := range want {
				kv, err := r.st.Get(ctx, "app/"+k)
				if v == "" && err == nil || v != "" && (err != nil || string(kv.Value) != v) {
					return false
				}
			}
		}
		return true
	})
	return head
}

// onlyRevisionAfter checks that, on every replica, since is followed by
// exactly one revision, by the source, that made exactly want (key: new
// value, "" for a delete).
func (c *cluster) onlyRevisionAfter(t *testing.T, since int64, want map[string]string) {
	t.Helper()
	ctx := context.Background()
	for _, r := range c.replicas {
		revs, err := r.st.RevisionsAfter(ctx, since, 100)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, rev := range revs {
			for _, ch := range rev.Changes {
				v := ""
				if ch.New != nil {
					v = string(ch.New.Value)
				}
				lines = append(lines, fmt.Sprintf("rev %d by %s: %s %s=%q", rev.Rev, rev.Actor, ch.Type, ch.Key, v))
			}
		}
		if len(revs) != 1 || revs[0].Actor != "source:files" {
			t.Fatalf("%s: after rev %d, want one revision by source:files, got %d:\n%s", r.name, since, len(revs), strings.Join(lines, "\n"))
		}
		got := map[string]string{}
		for _, ch := range revs[0].Changes {
			got[strings.TrimPrefix(ch.Key, "app/")] = ""
			if ch.New != nil {
				got[strings.TrimPrefix(ch.Key, "app/")] = string(ch.New.Value)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: revision %d changed %v, want %v:\n%s", r.name, revs[0].Rev, got, want, strings.Join(lines, "\n"))
		}
	}
}

func oneSyncer(t *testing.T, etcd *testserver.EtcdServer) {
	c := newCluster(t, etcd, 3, newFileFeed(t), map[string]string{"a": "1", "b": "2", "c": "3"})
	lead := c.leader(t)
	rev := c.synced(t, map[string]string{"a": "1", "b": "2", "c": "3"})
	leaders, err := c.replicas[0].el.Leaders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if leaders["files"] != lead.name || len(leaders) != 1 {
		t.Fatalf("Leaders() = %v, want files: %s", leaders, lead.name)
	}

	c.feed.set(t, map[string]string{"a": "1", "b": "20", "c": "3"})
	c.synced(t, map[string]string{"b": "20"})
	c.onlyRevisionAfter(t, rev, map[string]string{"b": "20"})
	if again := c.leader(t); again != lead {
		t.Fatalf("%s syncs the source now, not %s", again.name, lead.name)
	}
}

func takeover(t *testing.T, etcd *testserver.EtcdServer, f feed) {
	c := newCluster(t, etcd, 3, f, map[string]string{"a": "1", "b": "2", "c": "3"})
	old := c.leader(t)
	rev := c.synced(t, map[string]string{"a": "1", "b": "2", "c": "3"})
	witness := c.replicas[0].el
	if old == c.replicas[0] {
		witness = c.replicas[1].el
	}

	// The leader dies: its session is no longer renewed, its pump stops the
	// source at once, and its key in the election stays until the TTL
	// runs out. A change made then is made while no replica syncs.
	old.cli.Close()
	waitFor(t, "the dead leader to stop syncing", func() bool { return len(old.p.Leading()) == 0 })
	stillDead := func() {
		t.Helper()
		leaders, err := witness.Leaders(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if leaders["files"] != old.name {
			t.Fatalf("the source's leader is %q, want the dead %s until its TTL runs out", leaders["files"], old.name)
		}
	}
	stillDead()
	c.feed.set(t, map[string]string{"a": "1", "b": "20", "d": "4"})
	stillDead()

	started := time.Now()
	next := c.leader(t, old)
	t.Logf("%s took over from %s after %v", next.name, old.name, time.Since(started).Round(time.Millisecond))
	c.synced(t, map[string]string{"a": "1", "b": "20", "c": "", "d": "4"})
	c.onlyRevisionAfter(t, rev, map[string]string{"b": "20", "c": "", "d": "4"})
}

func etcdDown(t *testing.T, etcd *testserver.EtcdServer) {
	c := newCluster(t, etcd, 2, newFileFeed(t), map[string]string{"a": "1", "b": "2"})
	c.leader(t)
	rev := c.synced(t, map[string]string{"a": "1", "b": "2"})

	etcd.Stop()
	restarted := false
	defer func() {
		if !restarted {
			etcd.Start() // for the next test
		}
	}()
	// Nobody can hold a role without etcd: the leader's session ends
	// within its TTL, and every pump keeps campaigning; one whose campaign
	// failed says why. (A replica still waiting in line, or between two
	// attempts, may have no error to show yet: under load that lasted past
	// the wait limit once, so the why is asked of one replica, not all.)
	waitFor(t, "every replica to stand by, one saying why", func() bool {
		why := false
		for _, r := range c.replicas {
			st := status(r, "files")
			if len(r.p.Leading()) != 0 || st.State != string(pump.StateStandby) {
				return false
			}
			why = why || strings.Contains(st.LastError, "campaign")
		}
		return why
	})
	// The layer stays as it was.
	ctx := context.Background()
	for _, r := range c.replicas {
		for k, v := range map[string]string{"a": "1", "b": "2"} {
			kv, err := r.st.Get(ctx, "app/"+k)
			if err != nil || string(kv.Value) != v {
				t.Fatalf("%s: app/%s = %q, %v while etcd is down; want %q", r.name, k, kv.Value, err, v)
			}
		}
	}
	c.feed.set(t, map[string]string{"a": "10", "b": "2"})

	etcd.Start()
	restarted = true
	c.leader(t)
	c.synced(t, map[string]string{"a": "10", "b": "2"})
	c.onlyRevisionAfter(t, rev, map[string]string{"a": "10"})
}

// A holder whose election key is gone while its session lives on (the
// key deleted under it, as etcd does when a paused holder's lease runs
// out) does not know it lost the role: the store refuses its next
// snapshot (the fence), it stands by and says why, and the next replica in
// line records the change, once.
func fenced(t *testing.T, etcd *testserver.EtcdServer) {
	c := newCluster(t, etcd, 2, newFileFeed(t), map[string]string{"a": "1"})
	old := c.leader(t)
	rev := c.synced(t, map[string]string{"a": "1"})

	ctx := context.Background()
	cli := etcdClient(t, etcd)
	dir := "/configd-test/" + t.Name() + "/elect/source/files/"
	var line *clientv3.GetResponse
	waitFor(t, "both replicas in the election's line", func() bool {
		var err error
		line, err = cli.Get(ctx, dir, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
		if err != nil {
			t.Fatal(err)
		}
		return len(line.Kvs) == 2
	})
	if string(line.Kvs[0].Value) != old.name {
		t.Fatalf("the election's line starts with %s's key, want the holder %s's", line.Kvs[0].Value, old.name)
	}
	if _, err := cli.Delete(ctx, string(line.Kvs[0].Key)); err != nil {
		t.Fatal(err)
	}
	// The other replica takes the role at once; the old holder still syncs
	// until its next snapshot is refused.
	c.feed.set(t, map[string]string{"a": "2"})
	waitFor(t, "the old holder to stand by, saying it lost the role", func() bool {
		st := status(old, "files")
		return len(old.p.Leading()) == 0 && st.State == string(pump.StateStandby) && strings.Contains(st.LastError, "role was lost")
	})
	next := c.leader(t)
	if next == old {
		t.Fatalf("%s syncs the source again", old.name)
	}
	c.synced(t, map[string]string{"a": "2"})
	c.onlyRevisionAfter(t, rev, map[string]string{"a": "2"})
	// The old holder's loss of the role is in the audit trail, on the
	// replica that syncs the source now too.
	waitFor(t, "the new holder listing the old one's loss of the role", func() bool {
		evs, err := next.st.SourceEvents(ctx, "files", 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(evs) > 0 && evs[0].State == "lost" && strings.Contains(evs[0].Message, "role was lost")
	})
}

// A source's events, recorded by the replica that syncs it, are listed
// by GET /v1/sources on the other replica, identically, and still after
// the replica that recorded them is gone.
func sharedEvents(t *testing.T, etcd *testserver.EtcdServer) {
	f := newFileFeed(t)
	c := newCluster(t, etcd, 2, f, map[string]string{"a": "1"})
	lead := c.leader(t)
	c.synced(t, map[string]string{"a": "1"})
	other := c.replicas[0]
	if other == lead {
		other = c.replicas[1]
	}
	sources := func(r *replica) func() []api.SourceEvent {
		srv := httptest.NewServer(httpapi.NewHandler(r.st, httpapi.WithSources(r.p), httpapi.WithLogger(slog.New(slog.DiscardHandler))))
		t.Cleanup(srv.Close)
		return func() []api.SourceEvent {
			t.Helper()
			resp, err := http.Get(srv.URL + "/v1/sources")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out api.SourcesResponse
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /v1/sources on %s: %s, %v", r.name, resp.Status, err)
			}
			return out.Events
		}
	}
	onLead, onOther := sources(lead), sources(other)
	states := func(evs []api.SourceEvent) string {
		var b strings.Builder
		for _, e := range evs {
			fmt.Fprintf(&b, "%s:%s ", e.Source, e.State)
		}
		return b.String()
	}

	// The file breaks, then is mended: its syncer records both.
	if err := os.WriteFile(f.path, []byte("a: [unclosed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other replica listing the source's failure", func() bool { return states(onOther()) == "files:degraded " })
	f.set(t, map[string]string{"a": "2"})
	var listed []api.SourceEvent
	waitFor(t, "the other replica listing the source's recovery", func() bool {
		listed = onOther()
		return states(listed) == "files:ok files:degraded "
	})
	if !strings.Contains(listed[1].Message, "yaml") {
		t.Fatalf("the failure is listed as %+v, want the file's parse error", listed[1])
	}
	// The syncer lists them from its own copy, filled by the same etcd
	// watch: it may list the recovery a moment later.
	waitFor(t, "the syncer listing what the other replica lists", func() bool {
		return reflect.DeepEqual(onLead(), listed)
	})

	// The syncer's session ends (it dies): it records that it lost the
	// role, and the other replica, which takes the source over, lists that
	// and the events before it.
	lead.cli.Close()
	waitFor(t, "the dead syncer to stop syncing", func() bool { return len(lead.p.Leading()) == 0 })
	lead.st.Close()
	if next := c.leader(t, lead); next != other {
		t.Fatalf("%s syncs the source, want %s", next.name, other.name)
	}
	c.synced(t, map[string]string{"a": "2"})
	var got []api.SourceEvent
	waitFor(t, "the other replica listing the loss of the role", func() bool {
		got = onOther()
		return states(got) == "files:lost "+states(listed)
	})
	if !reflect.DeepEqual(got[1:], listed) || !strings.Contains(got[0].Message, "session") {
		t.Fatalf("after the syncer's death, the other replica lists %+v, want a lost role then %+v", got, listed)
	}
}

// waitFor waits until cond holds, for at most 20 s: for a state that no
// event announces (who holds a role, a replica's status).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// The project's one wait limit: generous, since the campaigns' pauses
	// and etcd's timeouts stretch on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), configdtest.WaitLimit)
	defer cancel()
	if err := configdtest.WaitFor(ctx, cond); err != nil {
		t.Fatalf("still not %s after %s", what, configdtest.WaitLimit)
	}
}

// A replica that takes a source's role but cannot catch up with the
// cluster gives the role up (another replica may take it) and campaigns
// again; it syncs the source once it catches up.
func TestCatchUpFailureGivesUpTheRole(t *testing.T) {
	st, err := audit.Open(context.Background(), filepath.Join(t.TempDir(), "configd.db"), audit.WithLayers("files", audit.StoreLayer))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	flaky := &flakySync{Store: st}
	flaky.fails.Store(2)
	f := newFileFeed(t)
	f.set(t, map[string]string{"a": "1"})
	var l turns
	p, err := pump.Start(context.Background(), flaky, []source.Config{f.source()}, slog.New(slog.NewTextHandler(io.Discard, nil)), pump.WithLeadership(&l))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the source synced", func() bool {
		kv, err := st.Get(context.Background(), "app/a")
		return err == nil && string(kv.Value) == "1"
	})
	if got, gaveUp := l.given.Load(), l.gaveUp.Load(); got != 3 || gaveUp != 2 {
		t.Errorf("roles taken %d, given up %d; want 3 and 2 (two catch-ups failed)", got, gaveUp)
	}
	if got := p.Leading(); !slices.Equal(got, []string{"files"}) {
		t.Errorf("Leading() = %v", got)
	}
	p.Close()
	if gaveUp := l.gaveUp.Load(); gaveUp != 3 {
		t.Errorf("roles given up after Close: %d, want 3", gaveUp)
	}
}

// flakySync is a store whose Sync fails as many times as fails says.
type flakySync struct {
	*audit.Store
	fails atomic.Int32
}

func (f *flakySync) Sync(ctx context.Context) (int64, error) {
	if f.fails.Add(-1) >= 0 {
		return 0, errors.New("etcd does not answer")
	}
	return f.Store.Sync(ctx)
}

// turns gives every campaign the role at once and counts the roles given
// up.
type turns struct{ given, gaveUp atomic.Int32 }

func (l *turns) Campaign(ctx context.Context, _ string) (<-chan struct{}, audit.Fence, error) {
	l.given.Add(1)
	lost := make(chan struct{})
	context.AfterFunc(ctx, func() {
		l.gaveUp.Add(1)
		close(lost)
	})
	return lost, audit.Fence{}, nil
}

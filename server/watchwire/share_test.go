package watchwire_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/secrets"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/grpcapi"
	"github.com/configd/configd/server/httpapi"
	"github.com/configd/configd/server/watchwire"
	"github.com/configd/configd/watcher"
)

// plainSecret is a secret's value that must not reach a connection
// without TLS from a routable address.
const plainSecret = "s3cr3t-0f-the-share-test"

// listCounter is a real store whose List calls (the hub's snapshot reads
// of prefixes) are counted.
type listCounter struct {
	*audit.Store
	lists atomic.Int64
}

func (s *listCounter) List(ctx context.Context, prefix string, opts ...audit.ReadOption) ([]audit.KeyValue, int64, error) {
	s.lists.Add(1)
	return s.Store.List(ctx, prefix, opts...)
}

// shareEnv serves one hub over HTTP (long poll, SSE, the watch stream)
// and gRPC. remote, when set, is the client address every request and
// gRPC stream appears to come from.
type shareEnv struct {
	st     *audit.Store
	store  *listCounter
	hub    *watcher.Hub
	http   *httptest.Server
	client configdpb.ConfigClient
}

func newShareEnv(t *testing.T, remote string) *shareEnv {
	t.Helper()
	mk, _, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	e := &shareEnv{}
	env := configdtest.NewEnv(t, configdtest.WithCore(core.WithStoreOptions(audit.WithMasterKey(mk)),
		core.WithHubReads(func(st *audit.Store) watcher.Store {
			e.store = &listCounter{Store: st}
			return e.store
		})), configdtest.WithHandlerOptions(httpapi.WithProgressInterval(time.Minute)))
	e.st, e.hub = env.Store, env.Hub
	h := env.Handler()
	var gopts []grpcapi.Option
	if remote != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.RemoteAddr = remote
			inner.ServeHTTP(w, r)
		})
		addr, err := net.ResolveTCPAddr("tcp", remote)
		if err != nil {
			t.Fatal(err)
		}
		gopts = append(gopts, grpcapi.WithServerOptions(grpc.ChainStreamInterceptor(
			func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
				return handler(srv, peerStream{ServerStream: ss, ctx: peer.NewContext(ss.Context(), &peer.Peer{Addr: addr})})
			})))
	}
	e.http = env.Serve(h)
	e.client = env.GRPC("", gopts...)
	return e
}

// peerStream is a stream whose context says it comes from another peer.
type peerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s peerStream) Context() context.Context { return s.ctx }

func (e *shareEnv) commit(t *testing.T, ops ...audit.Op) int64 {
	t.Helper()
	r, err := e.st.Commit(context.Background(), audit.Txn{Actor: "alice", Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	return r.Rev
}

// holdSnapshot returns the snapshot of prefix at revision at (of n keys),
// as a watch of the hub's own receives it, so that every watch of prefix
// that starts before the next commit finds it held.
func (e *shareEnv) holdSnapshot(t *testing.T, prefix string, at int64, n int) watcher.Batch {
	t.Helper()
	w, err := e.hub.Watch(context.Background(), watcher.Filter{Prefixes: []string{prefix}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := w.Next(ctx)
	if err != nil || b.Kind != watcher.KindSnapshot || b.Rev != at || len(b.Events) != n {
		t.Fatalf("snapshot: %v at %d with %d events, %v", b.Kind, b.Rev, len(b.Events), err)
	}
	return b
}

// grpcWatch opens a gRPC Watch stream and creates a watch of prefix on it
// for each id, from since 0.
func (e *shareEnv) grpcWatch(t *testing.T, prefix string, ids ...int64) configdpb.Config_WatchClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	s, err := e.client.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := s.Send(&configdpb.WatchRequest{Request: &configdpb.WatchRequest_Create{
			Create: &configdpb.WatchCreate{WatchId: id, Prefixes: []string{prefix}}}}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// sse opens a server-sent events watch of prefix from since 0 and returns
// a function that reads its next event.
func (e *shareEnv) sse(t *testing.T, prefix string) func() (event string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.http.URL+"/v1/watch?since=0&prefix="+prefix, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	r := bufio.NewReaderSize(resp.Body, 1<<20)
	return func() (string, []byte) {
		t.Helper()
		var event string
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				t.Fatalf("read an event: %v", err)
			}
			switch {
			case strings.HasPrefix(string(line), "event: "):
				event = strings.TrimSpace(strings.TrimPrefix(string(line), "event: "))
			case strings.HasPrefix(string(line), "data: "):
				return event, []byte(strings.TrimPrefix(strings.TrimSuffix(string(line), "\n"), "data: "))
			}
		}
	}
}

// shareValue is app/k<i>'s value: 40 of them make a snapshot larger than
// the largest frame a watch stream copies (64 KiB).
func shareValue(i int) string { return fmt.Sprintf("v%d-", i) + strings.Repeat("x", 2000) }

// wantValues checks that got is "key=value" of the keys app/k000... with
// their shareValue.
func wantValues(t *testing.T, who string, got []string, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%s: %d keys, want %d", who, len(got), n)
	}
	for i, kv := range got {
		if want := fmt.Sprintf("app/k%03d=%s", i, shareValue(i)); kv != want {
			t.Fatalf("%s: key %d is %.20s..., want %.20s...", who, i, kv, want)
		}
	}
}

// recvEach reads s until each watch of ids has had one message of kind,
// which check checks; it skips other kinds, and fails on a second message
// of kind for a watch or one for a watch not in ids.
func recvEach(t *testing.T, s configdpb.Config_WatchClient, kind configdpb.WatchResponse_Kind, ids []int64, check func(*configdpb.WatchResponse)) {
	t.Helper()
	want := map[int64]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for len(want) > 0 {
		m, err := s.Recv()
		if err != nil {
			t.Fatalf("waiting for %v of watches %v: %v", kind, ids, err)
		}
		if m.GetKind() != kind {
			continue
		}
		if !want[m.GetWatchId()] {
			t.Fatalf("%v for watch %d, want one for each of %v", kind, m.GetWatchId(), ids)
		}
		delete(want, m.GetWatchId())
		check(m)
	}
}

func pbKeys(m *configdpb.WatchResponse) []string {
	var out []string
	for _, ev := range m.GetEvents() {
		out = append(out, ev.GetKv().GetKey()+"="+string(ev.GetKv().GetValue()))
	}
	return out
}

func apiKeys(b api.WatchBatch) []string {
	var out []string
	for _, ev := range b.Events {
		out = append(out, ev.Key+"="+ev.Value)
	}
	return out
}

func TestSnapshotWatchesOnEveryTransportShareOneReadAndOneEncoding(t *testing.T) {
	e := newShareEnv(t, "")
	const n = 40
	var ops []audit.Op
	for i := range n {
		ops = append(ops, audit.Put(fmt.Sprintf("app/k%03d", i), []byte(shareValue(i)), ""))
	}
	at := e.commit(t, append(ops, audit.Put("other", []byte("x"), ""))...)

	snap := e.holdSnapshot(t, "app/", at, n)

	addr := e.http.Listener.Addr().String()
	var streams []*configdtest.WatchStream
	for range 3 {
		s := configdtest.OpenWatchStream(t, addr, "prefix=app/&since=0", "")
		s.NextOf(configdpb.WatchResponse_CREATED)
		streams = append(streams, s)
	}
	g1, g2 := e.grpcWatch(t, "app/", 7, 9), e.grpcWatch(t, "app/", 1)
	var events []func() (string, []byte)
	for range 3 {
		events = append(events, e.sse(t, "app/"))
	}

	for i, s := range streams {
		m := s.NextOf(configdpb.WatchResponse_SNAPSHOT)
		if m.GetRev() != at || m.GetWatchId() != 0 {
			t.Fatalf("stream %d: snapshot at %d, watch id %d", i, m.GetRev(), m.GetWatchId())
		}
		wantValues(t, fmt.Sprintf("stream %d", i), pbKeys(m), n)
	}
	grpcs := map[configdpb.Config_WatchClient][]int64{g1: {7, 9}, g2: {1}}
	for s, ids := range grpcs {
		recvEach(t, s, configdpb.WatchResponse_SNAPSHOT, ids, func(m *configdpb.WatchResponse) {
			if m.GetRev() != at {
				t.Fatalf("snapshot of watch %d at %d, want %d", m.GetWatchId(), m.GetRev(), at)
			}
			wantValues(t, fmt.Sprintf("grpc watch %d", m.GetWatchId()), pbKeys(m), n)
		})
	}
	for i, next := range events {
		event, data := next()
		var b api.WatchBatch
		if err := json.Unmarshal(data, &b); err != nil || event != api.WatchSnapshot || b.Rev != at {
			t.Fatalf("sse %d: %s at %d, %v", i, event, b.Rev, err)
		}
		wantValues(t, fmt.Sprintf("sse %d", i), apiKeys(b), n)
	}
	for i := range 3 {
		status, resp, _ := configdtest.PollWatch(t, e.http.URL, "prefix=app/&since=0")
		if status != http.StatusOK || resp.Kind != api.WatchSnapshot || resp.Rev != at || len(resp.Batches) != 1 {
			t.Fatalf("long poll %d: %d %s at %d with %d batches", i, status, resp.Kind, resp.Rev, len(resp.Batches))
		}
		wantValues(t, fmt.Sprintf("long poll %d", i), apiKeys(resp.Batches[0]), n)
	}

	if got := e.store.lists.Load(); got != 1 {
		t.Errorf("13 watches of one scope from since 0 read it %d times, want once", got)
	}
	for name, key := range map[string]any{"protobuf": watchwire.ProtoFrameKey, "JSON": watchwire.JSONKey} {
		snap.Encoded(key, func(watcher.Batch) []byte {
			t.Errorf("the snapshot's %s was not encoded once for every watcher", name)
			return nil
		})
	}

	// One change, shared by every watch of the scope, each with its ID.
	rev := e.commit(t, audit.Put("app/k000", []byte("changed"), ""))
	for i, s := range streams {
		if m := s.NextOf(configdpb.WatchResponse_CHANGES); m.GetRev() != rev || strings.Join(pbKeys(m), ",") != "app/k000=changed" {
			t.Fatalf("stream %d: changes at %d: %v", i, m.GetRev(), pbKeys(m))
		}
	}
	for s, ids := range grpcs {
		recvEach(t, s, configdpb.WatchResponse_CHANGES, ids, func(m *configdpb.WatchResponse) {
			if m.GetRev() != rev || strings.Join(pbKeys(m), ",") != "app/k000=changed" {
				t.Fatalf("changes of watch %d at %d: %v", m.GetWatchId(), m.GetRev(), pbKeys(m))
			}
		})
	}
	for i, next := range events {
		event, data := next()
		var b api.WatchBatch
		if err := json.Unmarshal(data, &b); err != nil || event != api.WatchChanges || b.Rev != rev || strings.Join(apiKeys(b), ",") != "app/k000=changed" {
			t.Fatalf("sse %d: %s %s, %v", i, event, data, err)
		}
	}
}

func TestASharedSnapshotWithASecretGoesOnlyToSecureConnections(t *testing.T) {
	// Every connection below comes from a routable address without TLS.
	e := newShareEnv(t, "192.0.2.10:40000")
	at := e.commit(t, audit.Put("app/a", []byte("1"), ""), audit.Put("app/pw", []byte(plainSecret), "").AsSecret())
	e.holdSnapshot(t, "app/", at, 2)

	s := configdtest.OpenWatchStream(t, e.http.Listener.Addr().String(), "prefix=app/&since=0", "")
	s.NextOf(configdpb.WatchResponse_CREATED)
	if m := s.Next(); m.GetKind() != configdpb.WatchResponse_CANCELED || m.GetCode() != api.CodeForbidden || len(m.GetEvents()) != 0 {
		t.Fatalf("watch stream: %v %s %q", m.GetKind(), m.GetCode(), m.GetError())
	}
	g := e.grpcWatch(t, "app/", 3)
	for {
		m, err := g.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.GetKind() == configdpb.WatchResponse_CREATED {
			continue
		}
		if m.GetKind() != configdpb.WatchResponse_CANCELED || m.GetWatchId() != 3 || m.GetCode() != api.CodeForbidden || len(m.GetEvents()) != 0 {
			t.Fatalf("grpc: %v %d %s %q", m.GetKind(), m.GetWatchId(), m.GetCode(), m.GetError())
		}
		break
	}
	if event, data := e.sse(t, "app/")(); event != "error" || strings.Contains(string(data), plainSecret) || !strings.Contains(string(data), api.CodeForbidden) {
		t.Fatalf("sse: %s %s", event, data)
	}
	if status, _, bad := configdtest.PollWatch(t, e.http.URL, "prefix=app/&since=0"); status != http.StatusForbidden || bad.Error.Code != api.CodeForbidden {
		t.Fatalf("long poll: %d %+v", status, bad)
	}
}

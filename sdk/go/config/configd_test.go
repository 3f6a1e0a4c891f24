package config

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/server"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/grpcapi"
	"github.com/configd/configd/watcher"
)

// testConfigd is a real configd in the test process: the audit store, the
// watch hub fed by its commits, and configd's HTTP API and gRPC API on a
// loopback port (as configd serves them: HTTP/1.1 and the watch stream,
// gRPC over HTTP/2 without TLS) that can be stopped and served again on
// the same address.
type testConfigd struct {
	t        testing.TB
	c        *core.Core // the store and hub, replaced by a restart with a new hub
	st       *audit.Store
	hubOpts  []watcher.Option
	progress time.Duration
	auth     *authz.Auth
	addr     string

	mu  sync.Mutex
	srv *http.Server
	lis *trackingListener
}

type configdOption func(*testConfigd)

func withHubOptions(opts ...watcher.Option) configdOption {
	return func(d *testConfigd) { d.hubOpts = opts }
}

// withProgressInterval sets how often an idle watch is told the current
// revision, over HTTP and gRPC.
func withProgressInterval(p time.Duration) configdOption {
	return func(d *testConfigd) { d.progress = p }
}

// startConfigd opens a store in a temporary directory and serves it.
func startConfigd(t testing.TB, opts ...configdOption) *testConfigd {
	t.Helper()
	d := &testConfigd{t: t}
	for _, o := range opts {
		o(d)
	}
	d.open(filepath.Join(t.TempDir(), "configd.db"))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = lis.Addr().String()
	d.serve(lis)
	t.Cleanup(func() {
		d.stop()
		d.c.Close()
	})
	return d
}

// open opens the store at path and its hub.
func (d *testConfigd) open(path string) {
	c, err := core.Open(context.Background(), path, core.WithStoreOptions(audit.WithLogger(discard())), core.WithHubOptions(d.hubOpts...))
	if err != nil {
		d.t.Fatal(err)
	}
	d.c, d.st = c, c.Store
}

func (d *testConfigd) serve(lis net.Listener) {
	grpcOpts := []grpcapi.Option{grpcapi.WithLogger(discard())}
	opts := []server.HandlerOption{server.WithLogger(discard())}
	if d.progress > 0 {
		grpcOpts = append(grpcOpts, grpcapi.WithProgressInterval(d.progress))
		opts = append(opts, server.WithProgressInterval(d.progress))
	}
	if d.auth != nil {
		grpcOpts = append(grpcOpts, grpcapi.WithAuth(d.auth))
		opts = append(opts, server.WithAuth(d.auth))
	}
	opts = append(opts, server.WithHub(d.c.Hub, grpcOpts...))
	srv := &http.Server{Handler: server.NewHandler(d.st, opts...), ErrorLog: log.New(io.Discard, "", 0)}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	tl := &trackingListener{Listener: lis, conns: map[net.Conn]struct{}{}}
	d.mu.Lock()
	d.srv, d.lis = srv, tl
	d.mu.Unlock()
	go srv.Serve(tl)
}

// stop stops serving: every connection is cut (watch streams included,
// which the HTTP server no longer tracks), the port is closed.
func (d *testConfigd) stop() {
	d.mu.Lock()
	srv, lis := d.srv, d.lis
	d.srv, d.lis = nil, nil
	d.mu.Unlock()
	if srv != nil {
		srv.Close()
		lis.closeAll()
	}
}

// trackingListener remembers the connections it accepted, to cut them.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns[c] = struct{}{}
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
}

// restart serves again on the same address; newHub reopens the store
// and its hub, as a restarted daemon does.
func (d *testConfigd) restart(newHub bool) {
	d.t.Helper()
	if newHub {
		path := d.st.Path()
		if err := d.c.Close(); err != nil {
			d.t.Fatal(err)
		}
		d.open(path)
	}
	var lis net.Listener
	var err error
	// The port was just closed; it is free again at once on Linux, but be
	// patient with a slow kernel.
	deadline := time.Now().Add(5 * time.Second)
	for {
		lis, err = net.Listen("tcp", d.addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		d.t.Fatal(err)
	}
	d.serve(lis)
}

// put commits key, value pairs (text/plain) as one revision.
func (d *testConfigd) put(kvs ...string) int64 {
	d.t.Helper()
	var ops []audit.Op
	for i := 0; i+1 < len(kvs); i += 2 {
		ops = append(ops, audit.Put(kvs[i], []byte(kvs[i+1]), ""))
	}
	return d.commit(ops...)
}

func (d *testConfigd) del(keys ...string) int64 {
	d.t.Helper()
	var ops []audit.Op
	for _, k := range keys {
		ops = append(ops, audit.Delete(k))
	}
	return d.commit(ops...)
}

func (d *testConfigd) commit(ops ...audit.Op) int64 {
	d.t.Helper()
	r, err := d.st.Commit(context.Background(), audit.Txn{Actor: "alice", Origin: "api", Reason: "test", Ops: ops})
	if err != nil {
		d.t.Fatal(err)
	}
	return r.Rev
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// syncBuffer is a log destination tests can read while the client writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// connect makes a client of addrs that logs nothing, closed at the end
// of the test.
func connect(t testing.TB, addrs []string, opts ...Option) *Client {
	t.Helper()
	c, err := New(context.Background(), append([]Option{WithAddress(addrs...), WithLogger(discard())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

const waitLimit = 10 * time.Second

// next waits for the watcher's next update.
func next(t testing.TB, w *Watcher) Update {
	t.Helper()
	type result struct {
		u   Update
		err error
	}
	ch := make(chan result, 1)
	go func() {
		u, err := w.NextUpdate()
		ch <- result{u, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("NextUpdate: %v", r.err)
		}
		return r.u
	case <-time.After(waitLimit):
		w.Stop()
		<-ch
		t.Fatalf("no update within %v", waitLimit)
	}
	panic("unreachable")
}

// waitRev waits until the client's copy is at rev.
func waitRev(t testing.TB, c *Client, rev int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := c.WaitRev(ctx, rev); err != nil {
		t.Fatalf("WaitRev(%d): %v (the client is at %d)", rev, err, c.Rev())
	}
}

// queued is how many updates wait in w.
func queued(w *Watcher) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}

// keysOf lists an update's changes as "key=value" or "-key".
func keysOf(u Update) []string {
	var out []string
	for _, ch := range u.Changes {
		if ch.Deleted {
			out = append(out, "-"+ch.Key)
		} else {
			out = append(out, ch.Key+"="+ch.Value.String("?"))
		}
	}
	return out
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	lis := listen(t)
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

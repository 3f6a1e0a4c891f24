package config

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/delivery"
	"github.com/configd/configd/server/grpcapi"
	"github.com/configd/configd/server/httpapi"
	"github.com/configd/configd/watcher"
)

// testConfigd is a real configd in the test process: the audit store, the
// watch hub fed by its commits, and configd's HTTP API and gRPC API on one
// loopback port, as the daemon serves them (configdtest.Serving), that can
// be stopped and served again on the same address.
type testConfigd struct {
	t        testing.TB
	c        *core.Core // the store and hub, replaced by a restart with a new hub
	st       *audit.Store
	hubOpts  []watcher.Option
	progress time.Duration
	auth     *authz.Auth
	addr     string
	serving  *configdtest.Serving
	// clients is the delivery tracking table served (reports, GET
	// /v1/clients), made anew with each store.
	clients *delivery.Table
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
	d.serving = configdtest.Serve(t, d.c, d.config())
	d.addr = d.serving.Addr
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
	d.clients = delivery.New("test", c.Store)
}

// config is how d serves.
func (d *testConfigd) config() server.APIConfig {
	cfg := server.APIConfig{Auth: d.auth, HTTP: []httpapi.Option{httpapi.WithClients(d.clients)}}
	if d.progress > 0 {
		cfg.HTTP = append(cfg.HTTP, httpapi.WithProgressInterval(d.progress))
		cfg.GRPC = []grpcapi.Option{grpcapi.WithProgressInterval(d.progress)}
	}
	return cfg
}

// stop stops serving: every connection is cut, the port is closed.
func (d *testConfigd) stop() { d.serving.Stop() }

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
	d.serving.Restart(d.c, d.config())
}

// put commits key, value pairs (text/plain) as one revision.
func (d *testConfigd) put(kvs ...string) int64 {
	d.t.Helper()
	return d.commit(configdtest.Puts(kvs...)...)
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
	return configdtest.Commit(d.t, d.st, audit.Txn{Actor: "alice", Origin: "api", Reason: "test", Ops: ops})
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

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

package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/source"
	"github.com/configd/configd/source/etcd"
	"github.com/configd/configd/source/internal/sourcetest"
)

const prefix = "/infra/"

func client(t testing.TB, srv *testserver.EtcdServer) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func put(t testing.TB, c *clientv3.Client, key, value string) int64 {
	t.Helper()
	resp, err := c.Put(ctx(t), key, value)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return resp.Header.Revision
}

// newSource builds the source of cfg, whose TypeConfig is an etcd.Config,
// with fast retries and probes. A cfg without a name reads /infra/ and is
// named infra, mounted at infra/.
func newSource(t testing.TB, cfg source.Config, opts ...source.Option) source.Source {
	t.Helper()
	c := cfg.TypeConfig.(etcd.Config)
	if cfg.Name == "" {
		cfg.Name, cfg.Type, cfg.Mount = "infra", "etcd", "infra/"
		c.Prefix = prefix
	}
	c.RequestTimeout, c.ProbeInterval = time.Second, 200*time.Millisecond
	cfg.TypeConfig = c
	opts = append([]source.Option{source.WithBackoff(20*time.Millisecond, 500*time.Millisecond)}, opts...)
	src, err := source.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// endpoints is the config of a source of srv's /infra/ (see newSource).
func endpoints(srv *testserver.EtcdServer) source.Config {
	return source.Config{TypeConfig: etcd.Config{Endpoints: srv.Endpoints}}
}

func wantTexts(t testing.TB, got map[string]source.Value, want map[string]string) {
	t.Helper()
	if g := sourcetest.Texts(got); !maps.Equal(g, want) {
		t.Fatalf("snapshot = %v, want %v", g, want)
	}
}

func TestEtcdLoadChangeDelete(t *testing.T) {
	srv := testserver.Etcd(t)
	c := client(t, srv)
	put(t, c, prefix+"db/host", "db1")
	put(t, c, prefix+"db/port", "5432")
	put(t, c, "/elsewhere/x", "not ours")

	r := sourcetest.Run(t, newSource(t, endpoints(srv)))
	u := r.NextSnapshot()
	wantTexts(t, u.Snapshot, map[string]string{"db/host": "db1", "db/port": "5432"})
	if u.Status.State != source.StateOK || u.Status.Revision < 3 {
		t.Fatalf("status = %+v", u.Status)
	}

	start := time.Now()
	rev := put(t, c, prefix+"db/host", "db2")
	u = r.NextSnapshot()
	t.Logf("change seen %v after the put started", u.At.Sub(start))
	wantTexts(t, u.Snapshot, map[string]string{"db/host": "db2", "db/port": "5432"})
	if u.Status.Revision != rev {
		t.Fatalf("revision = %d, want the put's %d", u.Status.Revision, rev)
	}

	// One transaction is one snapshot.
	if _, err := c.Txn(ctx(t)).Then(
		clientv3.OpDelete(prefix+"db/port"),
		clientv3.OpPut(prefix+"db/user", "app"),
	).Commit(); err != nil {
		t.Fatal(err)
	}
	wantTexts(t, r.NextSnapshot().Snapshot, map[string]string{"db/host": "db2", "db/user": "app"})

	start = time.Now()
	if _, err := c.Delete(ctx(t), prefix+"db/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	u = r.NextSnapshot()
	t.Logf("delete seen %v after it started", u.At.Sub(start))
	wantTexts(t, u.Snapshot, map[string]string{})
}

func TestEtcdDownAtStartCatchesUpWithoutEmptySnapshot(t *testing.T) {
	srv := testserver.NewEtcd(t)
	srv.Start()
	put(t, client(t, srv), prefix+"a", "1")
	srv.Stop()

	r := sourcetest.Run(t, newSource(t, endpoints(srv)))
	err := r.NextError()
	if !strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("error %q does not name the endpoint", err)
	}
	if st := r.Src.Status(); st.State != source.StateDegraded {
		t.Fatalf("status while down = %+v", st)
	}
	srv.Start()
	for {
		u := r.Next()
		if u.Err != nil {
			continue
		}
		wantTexts(t, u.Snapshot, map[string]string{"a": "1"})
		break
	}
}

func TestEtcdRestartMidRun(t *testing.T) {
	srv := testserver.Etcd(t)
	c := client(t, srv)
	put(t, c, prefix+"a", "1")
	r := sourcetest.Run(t, newSource(t, endpoints(srv)))
	wantTexts(t, r.NextSnapshot().Snapshot, map[string]string{"a": "1"})

	srv.Stop()
	// The probe notices the server is gone.
	if err := r.NextError(); err == nil {
		t.Fatal("no error while the server is down")
	}
	srv.Start()
	var u sourcetest.Received
	for u = r.Next(); u.Err != nil; u = r.Next() {
	}
	wantTexts(t, u.Snapshot, map[string]string{"a": "1"})

	put(t, c, prefix+"b", "2")
	wantTexts(t, r.NextSnapshot().Snapshot, map[string]string{"a": "1", "b": "2"})
}

func TestEtcdCompactionPastWatchedRevisionRereads(t *testing.T) {
	srv := testserver.Etcd(t)
	c := client(t, srv)
	put(t, c, prefix+"a", "1")
	put(t, c, prefix+"gone", "x")

	src := newSource(t, endpoints(srv))
	var loads atomic.Int32
	etcd.SetAfterLoad(src, func() {
		if loads.Add(1) != 1 {
			return
		}
		// Between the Get (revision R) and the Watch (from R+1): change the
		// prefix and compact past R+1, so the watch cannot start.
		put(t, c, prefix+"a", "2")
		if _, err := c.Delete(ctx(t), prefix+"gone"); err != nil {
			t.Error(err)
		}
		rev := put(t, c, prefix+"b", "3")
		if _, err := c.Compact(ctx(t), rev, clientv3.WithCompactPhysical()); err != nil {
			t.Error(err)
		}
	})
	r := sourcetest.Run(t, src)
	wantTexts(t, r.NextSnapshot().Snapshot, map[string]string{"a": "1", "gone": "x"})
	// The compacted watch makes the source read again: a fresh snapshot
	// with every change, the delete included, and no error on the way.
	wantTexts(t, r.NextSnapshot().Snapshot, map[string]string{"a": "2", "b": "3"})
	if n := loads.Load(); n != 2 {
		t.Fatalf("%d reads, want 2 (the first, and one after the compaction)", n)
	}
	// The new watch works.
	put(t, c, prefix+"c", "4")
	wantTexts(t, r.NextSnapshot().Snapshot, map[string]string{"a": "2", "b": "3", "c": "4"})
}

func TestEtcdSizeLimitAndInvalidKeys(t *testing.T) {
	srv := testserver.Etcd(t)
	c := client(t, srv)
	put(t, c, prefix+"small", "ok")
	put(t, c, prefix+"big", strings.Repeat("x", 2000))
	put(t, c, prefix+"bad//key", "empty segment")
	put(t, c, prefix+"bin", "\xff")
	r := sourcetest.Run(t, newSource(t, endpoints(srv), source.WithMaxValueSize(1024)))
	u := r.NextSnapshot()
	wantTexts(t, u.Snapshot, map[string]string{"small": "ok", "bin": "\xff"})
	if u.Snapshot["bin"].ContentType != source.TypeBinary {
		t.Errorf("bin: %s", u.Snapshot["bin"].ContentType)
	}
	text := source.WarningsText(u.Warnings)
	if len(u.Warnings) != 2 || !strings.Contains(text, "2000 bytes, the limit is 1024") || !strings.Contains(text, "empty segment") {
		t.Fatalf("warnings = %q", text)
	}
}

func TestEtcdUsernamePassword(t *testing.T) {
	srv := testserver.Etcd(t)
	c := client(t, srv)
	put(t, c, prefix+"a", "1")
	for _, step := range []func() error{
		func() error { _, err := c.RoleAdd(ctx(t), "root"); return err },
		func() error { _, err := c.UserAdd(ctx(t), "root", "rootpw"); return err },
		func() error { _, err := c.UserGrantRole(ctx(t), "root", "root"); return err },
		func() error { _, err := c.AuthEnable(ctx(t)); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	ok := etcd.Config{Endpoints: srv.Endpoints, Prefix: prefix, Username: "root", Password: "rootpw"}
	named := func(c etcd.Config) source.Config { return source.Config{Name: "infra", Type: "etcd", TypeConfig: c} }
	wantTexts(t, sourcetest.Run(t, newSource(t, named(ok))).NextSnapshot().Snapshot, map[string]string{"a": "1"})

	bad := ok
	bad.Password = "wrong"
	r := sourcetest.Run(t, newSource(t, named(bad)))
	if err := r.NextError(); !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("error = %v, want an authentication failure", err)
	}
	none := ok
	none.Username, none.Password = "", ""
	r = sourcetest.Run(t, newSource(t, named(none)))
	if err := r.NextError(); !strings.Contains(err.Error(), "user name is empty") && !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("error = %v, want a refusal", err)
	}
}

func TestEtcdWholeKeyspaceAndSlashPrefix(t *testing.T) {
	srv := testserver.Etcd(t)
	c := client(t, srv)
	put(t, c, "/a/b", "1")
	put(t, c, "c", "2")
	r := sourcetest.Run(t, newSource(t, source.Config{Name: "all", Type: "etcd", TypeConfig: etcd.Config{Endpoints: srv.Endpoints, Prefix: "/"}}))
	wantTexts(t, r.NextSnapshot().Snapshot, map[string]string{"a/b": "1"})
	r = sourcetest.Run(t, newSource(t, source.Config{Name: "all", Type: "etcd", TypeConfig: etcd.Config{Endpoints: srv.Endpoints}}))
	u := r.NextSnapshot()
	wantTexts(t, u.Snapshot, map[string]string{"c": "2"}) // "/a/b" is no valid key without a prefix
	if len(u.Warnings) != 1 || !strings.Contains(u.Warnings[0].Problem, "starts with '/'") {
		t.Fatalf("warnings = %v", u.Warnings)
	}
}

func TestEtcdConfigErrors(t *testing.T) {
	x1 := []string{"x:1"}
	for _, c := range []struct {
		cfg  source.Config
		want string
	}{
		{source.Config{Name: "e", Type: "etcd", TypeConfig: etcd.Config{}}, "endpoints is required"},
		{source.Config{Name: "e", Type: "etcd", TypeConfig: etcd.Config{Endpoints: x1, Prefix: "//x/"}}, "more than one leading '/'"},
		{source.Config{Name: "e", Type: "etcd", TypeConfig: etcd.Config{Endpoints: x1, Prefix: "/a/./b"}}, "not a valid key prefix"},
		{source.Config{Name: "e", Type: "etcd", TypeConfig: etcd.Config{Endpoints: x1, Username: "u"}}, "username and password go together"},
		{source.Config{Name: "e", Type: "etcd", Mount: "../x", TypeConfig: etcd.Config{Endpoints: x1}}, "not a valid key prefix"},
	} {
		if _, err := source.New(c.cfg); !errors.Is(err, source.ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want ErrConfig mentioning %q", c.cfg, err, c.want)
		}
	}
	// From a config file: a field of another type, values of the wrong kind.
	for _, c := range []struct{ entry, want string }{
		{"{name: e, type: etcd, endpoints: [x:1], token: t}", `source "e" (type etcd): token: unknown field (known: name, type, mount, endpoints, prefix, username, password, tls)`},
		{"{name: e, type: etcd, endpoints: 5}", "endpoints: want a list of strings, got 5"},
		{"{name: e, type: etcd, endpoints: [x:1], tls: yes}", `tls: want a mapping of ca_file, cert_file, key_file, server_name, insecure_skip_verify, got "yes"`},
		{"{name: e, type: etcd, endpoints: [x:1], tls: {insecure_skip_verify: maybe}}", `tls.insecure_skip_verify: want true or false, got "maybe"`},
		{"{name: e, type: etcd}", "endpoints is required"},
	} {
		if _, err := sourcetest.Decode(t, c.entry, etcd.Config{}); !errors.Is(err, source.ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("DecodeConfig(%s) = %v, want ErrConfig mentioning %q", c.entry, err, c.want)
		}
	}
}

// BenchmarkEtcdPutToUpdate measures the time from the start of a Put to
// the source's callback with the new value, over b.N changes (run with
// -benchtime 100x), and reports the median and the 99th percentile.
func BenchmarkEtcdPutToUpdate(b *testing.B) {
	srv := testserver.Etcd(b)
	c := client(b, srv)
	r := sourcetest.Run(b, newSource(b, endpoints(srv)))
	r.NextSnapshot()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		want := fmt.Sprint(i)
		start := time.Now()
		put(b, c, prefix+"bench", want)
		for {
			u := r.NextSnapshot()
			if string(u.Snapshot["bench"].Data) == want {
				lat = append(lat, u.At.Sub(start))
				break
			}
		}
	}
	b.ReportMetric(float64(sourcetest.Percentile(lat, 50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(sourcetest.Percentile(lat, 99).Microseconds())/1000, "p99-ms")
}

func TestEtcdTLS(t *testing.T) {
	srv := testserver.EtcdTLS(t)
	c, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints, DialTimeout: 5 * time.Second, TLS: srv.TLS.ClientConfig(t), Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	put(t, c, prefix+"a", "over tls")

	c2 := etcd.Config{Endpoints: srv.Endpoints, Prefix: prefix,
		TLS: &source.TLSConfig{CAFile: srv.TLS.CAFile, CertFile: srv.TLS.ClientCert, KeyFile: srv.TLS.ClientKey}}
	cfg := source.Config{Name: "infra", Type: "etcd", TypeConfig: c2}
	wantTexts(t, sourcetest.Run(t, newSource(t, cfg)).NextSnapshot().Snapshot, map[string]string{"a": "over tls"})

	// Without the client certificate the server refuses: degraded.
	c2.TLS = &source.TLSConfig{CAFile: srv.TLS.CAFile}
	cfg.TypeConfig = c2
	if err := sourcetest.Run(t, newSource(t, cfg)).NextError(); err == nil {
		t.Fatal("no error without a client certificate")
	}
}

package consul_test

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/source"
	"github.com/configd/configd/source/consul"
	"github.com/configd/configd/source/internal/sourcetest"
)

const prefix = "micro/config/"

// kv returns a client of srv's KV store.
func kv(t testing.TB, srv *testserver.ConsulServer, token string) *api.KV {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Scheme, cfg.Token = srv.Addr, "http", token
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c.KV()
}

func put(t testing.TB, k *api.KV, key, value string) {
	t.Helper()
	if _, err := k.Put(&api.KVPair{Key: key, Value: []byte(value)}, nil); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func newSource(t testing.TB, addr string, opts ...source.Option) source.Source {
	t.Helper()
	return newSourceCfg(t, source.Config{Name: "shared", Type: "consul", Mount: "app/", TypeConfig: consul.Config{Address: addr, Prefix: prefix}}, opts...)
}

// newSourceCfg builds the source of cfg, whose TypeConfig is a
// consul.Config, with fast retries and a 3s RequestTimeout unless it sets
// one.
func newSourceCfg(t testing.TB, cfg source.Config, opts ...source.Option) source.Source {
	t.Helper()
	c := cfg.TypeConfig.(consul.Config)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, 3*time.Second)
	cfg.TypeConfig = c
	opts = append([]source.Option{source.WithBackoff(20*time.Millisecond, 500*time.Millisecond)}, opts...)
	src, err := source.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func wantTexts(t testing.TB, got map[string]source.Value, want map[string]string) {
	t.Helper()
	if g := sourcetest.Texts(got); !maps.Equal(g, want) {
		t.Fatalf("snapshot = %v, want %v", g, want)
	}
}

func TestConsulLoadChangeDelete(t *testing.T) {
	srv := testserver.Consul(t)
	k := kv(t, srv, "")
	put(t, k, prefix+"db/host", "db1")
	put(t, k, prefix+"db/port", "5432")
	put(t, k, prefix+"folder/", "") // a Consul folder: skipped
	put(t, k, "elsewhere/x", "not ours")

	r := sourcetest.Run(t, newSource(t, srv.Addr))
	u := r.NextSnapshot()
	wantTexts(t, u.Snapshot, map[string]string{"db/host": "db1", "db/port": "5432"})
	if u.Status.State != source.StateOK || u.Status.Revision <= 0 || u.Status.Keys != 2 {
		t.Fatalf("status = %+v", u.Status)
	}
	rev := u.Status.Revision

	start := time.Now()
	put(t, k, prefix+"db/host", "db2")
	u = r.NextSnapshot()
	t.Logf("change seen %v after the put started", u.At.Sub(start))
	wantTexts(t, u.Snapshot, map[string]string{"db/host": "db2", "db/port": "5432"})
	if u.Status.Revision <= rev {
		t.Fatalf("revision %d did not move past %d", u.Status.Revision, rev)
	}

	// A write outside the prefix wakes nothing up, or at least sends nothing.
	put(t, k, "elsewhere/y", "still not ours")
	start = time.Now()
	if _, err := k.Delete(prefix+"db/port", nil); err != nil {
		t.Fatal(err)
	}
	u = r.NextSnapshot()
	t.Logf("delete seen %v after it started", u.At.Sub(start))
	wantTexts(t, u.Snapshot, map[string]string{"db/host": "db2"})
}

func TestConsulDownAtStartCatchesUpWithoutEmptySnapshot(t *testing.T) {
	srv := testserver.NewConsul(t)
	srv.Start()
	put(t, kv(t, srv, ""), prefix+"db/host", "db1")
	srv.Stop()

	r := sourcetest.Run(t, newSource(t, srv.Addr))
	err := r.NextError()
	if !strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("error %q does not name the address", err)
	}
	if st := r.Src.Status(); st.State != source.StateDegraded || st.LastError == "" {
		t.Fatalf("status while down = %+v", st)
	}
	srv.Start()
	// Only errors may come before the first snapshot, and that snapshot is
	// the data, never an empty scope.
	for {
		u := r.Next()
		if u.Err != nil {
			continue
		}
		wantTexts(t, u.Snapshot, map[string]string{"db/host": "db1"})
		break
	}
	if st := r.Src.Status(); st.State != source.StateOK {
		t.Fatalf("status after catching up = %+v", st)
	}
}

func TestConsulRestartMidRun(t *testing.T) {
	srv := testserver.Consul(t)
	k := kv(t, srv, "")
	put(t, k, prefix+"a", "1")
	r := sourcetest.Run(t, newSource(t, srv.Addr))
	wantTexts(t, r.NextSnapshot().Snapshot, map[string]string{"a": "1"})

	srv.Stop()
	if err := r.NextError(); err == nil {
		t.Fatal("no error while the server is down")
	}
	srv.Start()
	// Back: a snapshot (sent although unchanged, to say the source is
	// healthy), with the data the server kept.
	var u sourcetest.Received
	for u = r.Next(); u.Err != nil; u = r.Next() {
	}
	wantTexts(t, u.Snapshot, map[string]string{"a": "1"})

	// And the blocking queries work again.
	put(t, k, prefix+"b", "2")
	wantTexts(t, r.NextSnapshot().Snapshot, map[string]string{"a": "1", "b": "2"})
}

func TestConsulValueOverSizeLimitIsLeftOutAndReported(t *testing.T) {
	srv := testserver.Consul(t)
	k := kv(t, srv, "")
	put(t, k, prefix+"small", "ok")
	put(t, k, prefix+"big", strings.Repeat("x", 2000))
	put(t, k, prefix+"dir/", "a folder with a value: not a valid configd key")
	put(t, k, prefix+"bin", "\xff\xfe")

	r := sourcetest.Run(t, newSource(t, srv.Addr, source.WithMaxValueSize(1024)))
	u := r.NextSnapshot()
	wantTexts(t, u.Snapshot, map[string]string{"small": "ok", "bin": "\xff\xfe"})
	if ct := u.Snapshot["bin"].ContentType; ct != source.TypeBinary {
		t.Errorf("bin content type = %s", ct)
	}
	text := source.WarningsText(u.Warnings)
	if len(u.Warnings) != 2 || !strings.Contains(text, prefix+"big: left out") || !strings.Contains(text, "2000 bytes, the limit is 1024") ||
		!strings.Contains(text, prefix+"dir/: left out") {
		t.Fatalf("warnings = %q, want the oversize value and the invalid key", text)
	}
	if u.Status.Warnings != 2 {
		t.Fatalf("status warnings = %d", u.Status.Warnings)
	}

	// Shrinking the value brings it in.
	put(t, k, prefix+"big", "now small")
	u = r.NextSnapshot()
	wantTexts(t, u.Snapshot, map[string]string{"small": "ok", "bin": "\xff\xfe", "big": "now small"})
	if len(u.Warnings) != 1 {
		t.Fatalf("warnings = %v, want only the invalid key", u.Warnings)
	}
}

func TestConsulACLToken(t *testing.T) {
	const root = "8f3c6a2e-5b1d-4c7e-9a0f-2d4b6c8e0a1f"
	srv := testserver.NewConsul(t, `acl { enabled = true, default_policy = "deny", tokens { initial_management = "`+root+`" } }`).WithToken(root)
	srv.Start()
	put(t, kv(t, srv, root), prefix+"secret", "s3")

	c := consul.Config{Address: srv.Addr, Prefix: prefix, Token: root}
	cfg := source.Config{Name: "shared", Type: "consul", TypeConfig: c}
	wantTexts(t, sourcetest.Run(t, newSourceCfg(t, cfg)).NextSnapshot().Snapshot, map[string]string{"secret": "s3"})

	c.Token = "00000000-0000-0000-0000-000000000000" // unknown token: refused, degraded
	cfg.TypeConfig = c
	r := sourcetest.Run(t, newSourceCfg(t, cfg))
	if err := r.NextError(); !strings.Contains(err.Error(), "403") && !strings.Contains(strings.ToLower(err.Error()), "acl") {
		t.Fatalf("error = %v, want an ACL refusal", err)
	}
}

func TestConsulConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  consul.Config
		want string
	}{
		{consul.Config{Prefix: "/micro/"}, "Consul keys do not start with '/'"},
		{consul.Config{Prefix: "a//b/"}, `prefix "a//b/" is not a valid key prefix`},
		{consul.Config{Address: "ftp://x:1"}, "want host:port"},
		{consul.Config{TLS: &source.TLSConfig{CAFile: "/nonexistent/ca.pem"}}, "ca_file"},
		{consul.Config{TLS: &source.TLSConfig{CertFile: "c.pem"}}, "cert_file and key_file go together"},
	} {
		cfg := source.Config{Name: "c", Type: "consul", TypeConfig: c.cfg}
		if _, err := source.New(cfg); !errors.Is(err, source.ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want ErrConfig mentioning %q", c.cfg, err, c.want)
		}
	}
	// From a config file: a field of another type, a value of the wrong kind.
	for _, c := range []struct{ entry, want string }{
		{"{name: c, type: consul, path: ./x}", `source "c" (type consul): path: unknown field (known: name, type, mount, address, prefix, datacenter, token, tls)`},
		{"{name: c, type: consul, tls: yes}", `tls: want a mapping of ca_file, cert_file, key_file, server_name, insecure_skip_verify, got "yes"`},
		{"{name: c, type: consul, tls: {ca: x}}", "tls.ca: unknown field (known: ca_file, cert_file, key_file, server_name, insecure_skip_verify)"},
		{"{name: c, type: consul, tls: {cert_file: c.pem}}", "cert_file and key_file go together"},
		{"{name: c, type: consul, prefix: /micro/}", "Consul keys do not start with '/'"},
	} {
		if _, err := sourcetest.Decode(t, c.entry, consul.Config{}); !errors.Is(err, source.ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("DecodeConfig(%s) = %v, want ErrConfig mentioning %q", c.entry, err, c.want)
		}
	}
}

func TestConsulSnapshotStripsPrefixAndSkipsFolders(t *testing.T) {
	pairs := api.KVPairs{
		{Key: "p/", Value: nil},
		{Key: "p/a", Value: []byte("1")},
		{Key: "p/dir/", Value: nil},
		{Key: "p/dir/b", Value: nil},
	}
	snap, w := consul.Snapshot(pairs, "p/", "m/", 0)
	wantTexts(t, snap, map[string]string{"a": "1", "dir/b": ""})
	if len(w) != 0 {
		t.Fatalf("warnings %v", w)
	}
}

// BenchmarkConsulPutToUpdate measures the time from the start of a KV put
// to the source's callback with the new value, over b.N changes (run with
// -benchtime 100x), and reports the median and the 99th percentile.
func BenchmarkConsulPutToUpdate(b *testing.B) {
	srv := testserver.Consul(b)
	k := kv(b, srv, "")
	r := sourcetest.Run(b, newSource(b, srv.Addr))
	r.NextSnapshot()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		want := fmt.Sprint(i)
		start := time.Now()
		put(b, k, prefix+"bench", want)
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

func TestConsulTLS(t *testing.T) {
	srv := testserver.ConsulTLS(t)
	put(t, kv(t, srv, ""), prefix+"a", "over tls")
	cfg := source.Config{Name: "shared", Type: "consul", TypeConfig: consul.Config{Address: srv.HTTPSAddr, Prefix: prefix,
		TLS: &source.TLSConfig{CAFile: srv.TLS.CAFile, CertFile: srv.TLS.ClientCert, KeyFile: srv.TLS.ClientKey}}}
	wantTexts(t, sourcetest.Run(t, newSourceCfg(t, cfg)).NextSnapshot().Snapshot, map[string]string{"a": "over tls"})

	// https:// in the address without a CA: the server's certificate is
	// not trusted, so the source is degraded.
	cfg = source.Config{Name: "shared", Type: "consul", TypeConfig: consul.Config{Address: "https://" + srv.HTTPSAddr, Prefix: prefix}}
	if err := sourcetest.Run(t, newSourceCfg(t, cfg)).NextError(); !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("error = %v, want a certificate error", err)
	}
}

// A snapshot restore takes the KV store, and the prefix's index, back in
// time. A blocking query does not return for it (Consul goes on waiting for
// an index above the old one) until its wait time is over; then the index
// has gone backwards, and the source takes the answer and resets.
func TestConsulSnapshotRestoreIndexGoesBackwards(t *testing.T) {
	srv := testserver.Consul(t)
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Scheme = srv.Addr, "http"
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k := c.KV()
	put(t, k, prefix+"a", "1")
	snap, _, err := c.Snapshot().Save(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	saved, err := io.ReadAll(snap)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		put(t, k, prefix+"a", fmt.Sprint(i+2))
	}
	put(t, k, prefix+"b", "later")

	r := sourcetest.Run(t, newSourceCfg(t, source.Config{Name: "shared", Type: "consul", Mount: "app/",
		TypeConfig: consul.Config{Address: srv.Addr, Prefix: prefix, WaitTime: time.Second}}))
	u := r.NextSnapshot()
	wantTexts(t, u.Snapshot, map[string]string{"a": "6", "b": "later"})
	before := u.Status.Revision

	if err := c.Snapshot().Restore(nil, bytes.NewReader(saved)); err != nil {
		t.Fatal(err)
	}
	for {
		u = r.Next()
		if u.Err != nil {
			continue // a restore may interrupt a blocking query
		}
		break
	}
	wantTexts(t, u.Snapshot, map[string]string{"a": "1"})
	t.Logf("index before the restore %d, after %d", before, u.Status.Revision)
	if u.Status.Revision >= before {
		t.Fatalf("index did not go backwards (%d, then %d): the test does not test the reset", before, u.Status.Revision)
	}

	put(t, k, prefix+"c", "after restore")
	wantTexts(t, r.NextSnapshot().Snapshot, map[string]string{"a": "1", "c": "after restore"})
}

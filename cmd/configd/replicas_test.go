package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/tcpproxy"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/migrations"
	"github.com/configd/configd/sdk/go/config"
	"github.com/configd/configd/secrets"
)

// TestReplicas runs configd binaries as replicas of clusters on one real
// 3-member etcd cluster, shared by the subtests (each cluster has an etcd
// prefix of its own). The one that stops etcd's quorum runs last.
func TestReplicas(t *testing.T) {
	etcd := testserver.EtcdCluster3(t)
	newCluster := func(t *testing.T, args ...string) *configdtest.Cluster {
		return configdtest.NewCluster(t, bin, etcd.Endpoints, "/"+strings.ReplaceAll(t.Name(), "/", "-"), args...)
	}
	// First, while only its cluster has etcd watches.
	t.Run("EtcdWatchersStayFlat", func(t *testing.T) { testEtcdWatchersStayFlat(t, etcd, newCluster(t).Start(2)) })
	t.Run("WriteOnOneReadOnAnother", func(t *testing.T) {
		testWriteOnOneReadOnAnother(t, newCluster(t, "--master-key-file", masterKeyFile(t)).Start(3))
	})
	t.Run("EtcdLeasesAcrossReplicas", func(t *testing.T) { testEtcdLeasesAcrossReplicas(t, newCluster(t).Start(2)) })
	t.Run("StartRefusals", func(t *testing.T) { testReplicaStartRefusals(t, etcd, newCluster) })
	t.Run("ReplicaDataDirAlone", func(t *testing.T) { testReplicaDataDirAlone(t, newCluster(t).Start(1)) })
	t.Run("ClientsAcrossReplicas", func(t *testing.T) {
		testClientsAcrossReplicas(t, newCluster(t, "--client-expiry", "3s").Start(2))
	})
	t.Run("TokensAcrossReplicas", func(t *testing.T) { testTokensAcrossReplicas(t, newCluster(t, "--auth")) })
	t.Run("UISessionsAcrossReplicas", func(t *testing.T) { testUISessionsAcrossReplicas(t, newCluster(t, "--auth")) })
	t.Run("Kill9MidStormLosesNothing", func(t *testing.T) { testReplicaKill9MidStorm(t, newCluster(t).Start(3)) })
	t.Run("WatchersFailOver", func(t *testing.T) { testWatchersFailOver(t, etcd, newCluster(t).Start(3)) })
	t.Run("CutOffAndHealed", func(t *testing.T) { testCutOffAndHealed(t, etcd, newCluster(t).Start(1)) })
	t.Run("WritesGoToTheWriter", func(t *testing.T) { testWritesGoToTheWriter(t, newCluster(t, "--etcd-lease-ttl", "2s").Start(3)) })
	t.Run("WritesForwardedOverTLS", func(t *testing.T) { testWritesForwardedOverTLS(t, newCluster) })
	t.Run("ASourceRunsOnceAcrossItsReplicasDeath", func(t *testing.T) { testASourceRunsOnceAcrossItsReplicasDeath(t, etcd) })
	t.Run("QuorumLost", func(t *testing.T) { testQuorumLost(t, etcd, newCluster(t, "--etcd-timeout", "1s").Start(2)) })
}

// waitFor waits until cond holds, for at most configdtest.WaitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	configdtest.Eventually(t, what, cond)
}

// masterKeyFile writes a new master key to a file and returns its path.
func masterKeyFile(t *testing.T) string {
	t.Helper()
	_, b64, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(path, []byte(b64), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// replicaDaemons are HTTP clients of c's replicas, in order.
func replicaDaemons(t *testing.T, c *configdtest.Cluster) []*daemon {
	var ds []*daemon
	for _, p := range c.Replicas {
		ds = append(ds, asDaemon(t, p))
	}
	return ds
}

func asDaemon(t *testing.T, p *configdtest.Process) *daemon {
	d := &daemon{Process: p, t: t, client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	t.Cleanup(d.client.CloseIdleConnections)
	return d
}

// request sends a request with headers as "Name", "value" pairs and returns
// the status and body.
func (d *daemon) request(method, path string, body []byte, headers ...string) (int, []byte, error) {
	req, err := http.NewRequest(method, d.url(path), bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set(api.HeaderActor, "test")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// put writes key=value on d and returns the revision.
func (d *daemon) put(key, value string) int64 {
	d.t.Helper()
	var wr api.WriteResponse
	d.mustCall(http.MethodPut, "/v1/kv/"+key, []byte(value), &wr)
	return wr.Rev
}

// verify is d's audit chain head, once d has applied rev.
func (d *daemon) verify(rev int64) api.VerifyResponse {
	d.t.Helper()
	d.mustCall(http.MethodGet, fmt.Sprintf("/v1/kv?prefix=&min_rev=%d", rev), nil, nil)
	var v api.VerifyResponse
	d.mustCall(http.MethodGet, "/v1/audit/verify", nil, &v)
	if !v.OK {
		d.t.Fatalf("%s: audit verify: %+v", d.Addr, v)
	}
	return v
}

// history is d's whole history, oldest first.
func (d *daemon) history() []api.Revision {
	d.t.Helper()
	var all []api.Revision
	cursor := ""
	for {
		var h api.HistoryResponse
		d.mustCall(http.MethodGet, "/v1/history?prefix=&limit=1000&cursor="+cursor, nil, &h)
		all = append(all, h.Revisions...)
		if cursor = h.NextCursor; cursor == "" {
			break
		}
	}
	slices.Reverse(all)
	return all
}

// sameEverywhere checks that every replica has applied rev and has the same
// audit chain head: the same history, revision by revision.
func sameEverywhere(t *testing.T, ds []*daemon, rev int64) api.VerifyResponse {
	t.Helper()
	first := ds[0].verify(rev)
	for _, d := range ds[1:] {
		if v := d.verify(rev); v.Head != first.Head || v.HeadHash != first.HeadHash {
			t.Errorf("%s: audit head %d %s, %s has %d %s", d.Addr, v.Head, v.HeadHash, ds[0].Addr, first.Head, first.HeadHash)
		}
	}
	return first
}

func testWriteOnOneReadOnAnother(t *testing.T, c *configdtest.Cluster) {
	ds := replicaDaemons(t, c)
	r1, r2, r3 := ds[0], ds[1], ds[2]
	rev := r1.put("app/db/timeout", "5s")
	// Read your writes on the replica that took the write, with nothing
	// more to ask.
	var kv api.KeyValue
	r1.mustCall(http.MethodGet, "/v1/kv/app/db/timeout", nil, &kv)
	if kv.Value != "5s" || kv.ModRev != rev {
		t.Fatalf("r1 reads its write as %+v, want 5s at %d", kv, rev)
	}
	// Another replica answers a read that names the revision, or a
	// linearizable one, with the write.
	st, b, err := r3.request(http.MethodGet, "/v1/kv/app/db/timeout", nil, api.HeaderRev, fmt.Sprint(rev))
	if err != nil || st != http.StatusOK || !strings.Contains(string(b), `"value":"5s"`) {
		t.Fatalf("r3 with %s %d: %d %s %v", api.HeaderRev, rev, st, b, err)
	}
	r2.put("app/db/pool", "10")
	// A secret sealed on one replica is read on another (the cluster
	// shares its data keys; loopback may read secrets).
	if st, b, err := r2.request(http.MethodPut, "/v1/kv/app/db/password?secret=true", []byte("s3cret"), "Content-Type", api.TypeText); err != nil || st != http.StatusOK {
		t.Fatalf("put a secret on r2: %d %s %v", st, b, err)
	}
	last := r3.put("app/db/pool", "20")
	r1.mustCall(http.MethodGet, fmt.Sprintf("/v1/kv/app/db/password?min_rev=%d", last), nil, &kv)
	if kv.Value != "s3cret" {
		t.Errorf("r1 reads r2's secret as %+v", kv)
	}
	r1.mustCall(http.MethodGet, "/v1/kv/app/db/pool?consistent=true", nil, &kv)
	if kv.Value != "20" || kv.ModRev != last {
		t.Fatalf("r1's consistent read: %+v, want 20 at %d", kv, last)
	}
	head := sameEverywhere(t, ds, last)
	if head.Head != last {
		t.Errorf("audit head %d, want %d", head.Head, last)
	}
	h1, h2 := r1.history(), r2.history()
	if len(h1) != int(last) || !reflect.DeepEqual(h1, h2) {
		t.Errorf("history: r1 has %d revisions, r2 %d, equal %v; want %d on both, equal", len(h1), len(h2), reflect.DeepEqual(h1, h2), last)
	}

	// Each replica lists the others (GET /v1/replicas, configctl replicas).
	var rs api.ReplicasResponse
	waitFor(t, "r2 lists 3 replicas at the last revision", func() bool {
		if r2.call(http.MethodGet, "/v1/replicas", nil, &rs) != nil || len(rs.Replicas) != 3 || rs.Rev != last {
			return false
		}
		for _, r := range rs.Replicas { // each registration moves on its own
			if r.Rev != last {
				return false
			}
		}
		return true
	})
	// Each says its log format and schema level, what a rolling upgrade
	// compares (docs/ha.md, "Versions and upgrades").
	ms, err := migrations.Load(migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs.Replicas {
		if want := fmt.Sprint("r", i+1); r.Name != want || r.Addr != ds[i].Addr || r.Self != (i == 1) || r.Rev != last || r.Lag != 0 || r.Version == "" ||
			r.LogFormat != 1 || r.Schema != len(ms) {
			t.Errorf("replica %d: %+v, want %s at %s, rev %d, log format 1, schema %d", i, r, want, ds[i].Addr, last, len(ms))
		}
	}
	out, err := exec.Command(ctlBin, "--addr", r2.Addr, "replicas").CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^r2 \*\s+`+regexp.QuoteMeta(r2.Addr)+`\s`).Match(out) || !strings.Contains(string(out), r3.Addr) {
		t.Errorf("configctl replicas: %v\n%s", err, out)
	}
}

func testReplicaStartRefusals(t *testing.T, etcd *testserver.EtcdCluster, newCluster func(*testing.T, ...string) *configdtest.Cluster) {
	c := newCluster(t, "--master-key-file", masterKeyFile(t)).Start(1)
	ds := replicaDaemons(t, c)
	if st, b, err := ds[0].request(http.MethodPut, "/v1/kv/app/password?secret=true", []byte("s3cret"), "Content-Type", api.TypeText); err != nil || st != http.StatusOK {
		t.Fatalf("put a secret: %d %s %v", st, b, err)
	}
	sqliteDir := t.TempDir()
	alone := start(t, sqliteDir)
	alone.put("app/a", "1")
	alone.Stop()

	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(t.Context(), "/not-configd/app/x", "1"); err != nil {
		t.Fatal(err)
	}
	// The log of a cluster of a newer release, of another log format.
	if _, err := cli.Put(t.Context(), "/configd-format2/meta", `{"configd":"configd commit log","format":2,"cluster":"c0ffee","schema":12}`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		dir      string
		extra    []string
		etcdDown bool
		want     []string
	}{
		{name: "a SQLite-mode data dir", dir: sqliteDir, want: []string{"SQLite-only", "a data dir of its own"}},
		{name: "another master key", extra: []string{"--master-key-file", masterKeyFile(t)}, want: []string{"refusing to join the cluster", "master key"}},
		{name: "etcd unreachable for a new replica", etcdDown: true, want: []string{"cannot reach etcd at 127.0.0.1:1", "--etcd-endpoints"}},
		{name: "a prefix that is not configd's", extra: []string{"--etcd-prefix", "/not-configd"}, want: []string{"/not-configd/app/x", "prefix of its own", "--etcd-prefix"}},
		{name: "a cluster of another log format", extra: []string{"--etcd-prefix", "/configd-format2"}, want: []string{"is format 2", "reads and writes format 1", "upgrade it to the release the cluster's replicas run"}},
	} {
		dir := tc.dir
		if dir == "" {
			dir = t.TempDir()
		}
		launch := c.Launch
		if tc.etcdDown {
			launch = configdtest.NewCluster(t, bin, []string{"127.0.0.1:1"}, c.Prefix, "--etcd-timeout", "1s").Launch
		}
		p := launch(dir, "late", tc.extra...)
		if code := p.Wait(); code != 1 {
			t.Fatalf("%s: exit %d, want 1; output:\n%s", tc.name, code, p.Log)
		}
		line := configdLine(p.Log.String())
		t.Logf("%s: %s", tc.name, line)
		for _, w := range tc.want {
			if !strings.Contains(line, w) {
				t.Errorf("%s: %q lacks %q", tc.name, line, w)
			}
		}
	}
}

// testReplicaDataDirAlone: a replica's data dir is refused by a configd
// started without --store etcd, with a message that says what to do.
func testReplicaDataDirAlone(t *testing.T, c *configdtest.Cluster) {
	c.Replicas[0].Stop()
	p := launch(t, "--data-dir", c.DataDir(0), "--http-addr", "127.0.0.1:0")
	if code := p.Wait(); code != 1 {
		t.Fatalf("exit %d, want 1; output:\n%s", code, p.Log)
	}
	line := configdLine(p.Log.String())
	for _, w := range []string{"replica of configd cluster", "start it as the replica it is (--store etcd"} {
		if !strings.Contains(line, w) {
			t.Errorf("%q lacks %q", line, w)
		}
	}
	t.Log(line)
}

// clusterAdmin is the bootstrap token of the clusters started with
// startWithToken.
const clusterAdmin = "cfd_bootstrap-admin-secret-0123456789"

// startWithToken starts two replicas of c (started with --auth) with the
// bootstrap token clusterAdmin, and creates on r1 a token of the given
// name and grants (JSON).
func startWithToken(t *testing.T, c *configdtest.Cluster, name, grants string) (r1, r2 *daemon, created api.TokenCreated) {
	t.Helper()
	// Every replica is started with the same bootstrap token: the first
	// creates it, the others find it.
	c.Env = append(configdtest.CleanEnv(), "CONFIGD_BOOTSTRAP_TOKEN="+clusterAdmin)
	c.Start(2)
	ds := replicaDaemons(t, c)
	st, b, err := ds[0].request(http.MethodPost, "/v1/tokens", []byte(`{"name":"`+name+`","grants":`+grants+`}`), "Authorization", "Bearer "+clusterAdmin)
	if err != nil || st != http.StatusCreated || json.Unmarshal(b, &created) != nil || created.Token == "" {
		t.Fatalf("create a token on r1: %d %s %v", st, b, err)
	}
	return ds[0], ds[1], created
}

func testTokensAcrossReplicas(t *testing.T, c *configdtest.Cluster) {
	const admin = clusterAdmin
	r1, r2, created := startWithToken(t, c, "app-reader", `[{"permission":"read","prefix":"app/"}]`)
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	if st, b, _ := r1.request(http.MethodPut, "/v1/kv/app/a", []byte("1"), bearer(admin)...); st != http.StatusOK {
		t.Fatalf("put: %d %s", st, b)
	}
	waitFor(t, "the token created on r1 works on r2", func() bool {
		st, _, _ := r2.request(http.MethodGet, "/v1/kv/app/a?min_rev=1", nil, bearer(created.Token)...)
		return st == http.StatusOK
	})
	// A watch open on r2 with the token ends within a second of its
	// revocation on r1.
	watch := configdtest.Spawn(t, exec.Command(ctlBin, "--addr", r2.Addr, "--token", created.Token, "--timeout", "1h", "watch", "app/"))
	watch.WaitLog(regexp.MustCompile(`watching app at rev \d+`))
	revoked := time.Now()
	if st, b, _ := r1.request(http.MethodDelete, "/v1/tokens/app-reader", nil, bearer(admin)...); st != http.StatusNoContent {
		t.Fatalf("revoke on r1: %d %s", st, b)
	}
	code := watch.Wait()
	if d := time.Since(revoked); d > time.Second {
		t.Errorf("the watch on r2 ended %v after the revocation on r1, want under a second", d)
	}
	if code != 5 || !strings.Contains(watch.Log.String(), "revoked") {
		t.Errorf("configctl watch on r2: exit %d, %q; want 5 naming the revocation", code, watch.Log)
	}
	if st, _, _ := r2.request(http.MethodGet, "/v1/kv/app/a", nil, bearer(created.Token)...); st != http.StatusUnauthorized {
		t.Errorf("the revoked token on r2: %d, want 401", st)
	}
}

// testReplicaKill9MidStorm: writers spread over three replicas; one is
// killed with SIGKILL mid-storm. Every acknowledged write is in the
// history, numbered without a gap, and every replica (the killed one
// restarted, and a fourth started late on an empty data dir) has the same
// audit chain.
func testReplicaKill9MidStorm(t *testing.T, c *configdtest.Cluster) {
	const writers, perWriter, victim = 24, 60, 1
	ds := replicaDaemons(t, c)
	acks, cut := writeStorm(t, ds, writers, perWriter, writers*perWriter/3, configdtest.WaitLimit, ds[victim])
	c.Restart(victim)
	c.Add()
	ds = replicaDaemons(t, c)

	// The newest revision: a linearizable read on any replica.
	st, _, err := ds[2].request(http.MethodGet, "/v1/kv?prefix=storm/&consistent=true", nil)
	if err != nil || st != http.StatusOK {
		t.Fatalf("consistent read: %d %v", st, err)
	}
	h := ds[0].history()
	last := int64(len(h))
	for i, r := range h {
		if r.Rev != int64(i+1) {
			t.Fatalf("history: revision %d at position %d: a gap or a duplicate", r.Rev, i+1)
		}
	}
	for _, a := range acks {
		if a.rev > last {
			t.Errorf("acknowledged revision %d is beyond the history's last, %d", a.rev, last)
			continue
		}
		r := h[a.rev-1]
		if len(r.Changes) != 1 || r.Changes[0].Key != a.key || r.Changes[0].New == nil || r.Changes[0].New.Value != a.value {
			t.Errorf("acknowledged revision %d (%s=%s) reads back as %+v", a.rev, a.key, a.value, r.Changes)
		}
	}
	head := sameEverywhere(t, ds, last)
	t.Logf("%d writes acknowledged, %d writers cut by the kill, %d revisions; audit head %d on all 4 replicas", len(acks), cut, last, head.Head)
}

// testWatchersFailOver: SDK clients watch a key through a replica that is
// killed with SIGKILL while a writer changes the key on another; each
// resumes on another replica and sees every change once, in order.
func testWatchersFailOver(t *testing.T, etcd *testserver.EtcdCluster, c *configdtest.Cluster) {
	const clients, before, after = 20, 20, 20
	ds := replicaDaemons(t, c)
	etcdWatchers := etcdWatcherCount(t, etcd)
	victim, writer := ds[1], ds[0]
	first := writer.put("app/flag", "v0")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	type seen struct {
		mu   sync.Mutex
		revs []int64
		vals []string
	}
	results := make([]*seen, clients)
	var wg sync.WaitGroup
	for i := range clients {
		results[i] = &seen{}
		opts := []config.Option{config.WithAddress(victim.Addr, writer.Addr, ds[2].Addr), config.WithTimeout(30 * time.Second), config.WithLogger(quiet)}
		if i%2 == 1 {
			opts = append(opts, config.WithGRPC()) // half of them watch over gRPC
		}
		cl, err := config.New(ctx, opts...)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		t.Cleanup(func() { cl.Close() })
		w, err := cl.Watch("app/flag")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				u, err := w.NextUpdate()
				if err != nil {
					return
				}
				r := results[i]
				r.mu.Lock()
				r.revs, r.vals = append(r.revs, u.Rev), append(r.vals, u.Value.String("<deleted>"))
				r.mu.Unlock()
			}
		}()
	}
	// Every client watches through the victim, the first of its addresses.
	waitFor(t, "every client watches through the victim", func() bool {
		_, b, _ := victim.request(http.MethodGet, "/metrics", nil)
		return regexp.MustCompile(fmt.Sprintf(`(?m)^configd_watchers %d$`, clients)).Match(b)
	})
	// The replicas hold no etcd watch per client. (A replica's own
	// watches of the log may register just after it listens: the count
	// may grow by those, never by one per client.)
	if n := etcdWatcherCount(t, etcd); n-etcdWatchers >= clients/2 {
		t.Errorf("etcd has %d watchers with %d SDK clients watching, %d before them: want no watch per client", n, clients, etcdWatchers)
	} else {
		t.Logf("etcd watchers: %d before the SDK clients, %d with %d of them watching", etcdWatchers, n, clients)
	}
	var want []int64
	for n := 1; n <= before; n++ {
		want = append(want, writer.put("app/flag", fmt.Sprint("v", n)))
	}
	victim.Signal(syscall.SIGKILL)
	victim.Wait()
	for n := before + 1; n <= before+after; n++ {
		want = append(want, writer.put("app/flag", fmt.Sprint("v", n)))
	}
	lastRev := want[len(want)-1]
	waitFor(t, "every watcher reaches the last revision", func() bool {
		for _, r := range results {
			r.mu.Lock()
			done := len(r.revs) > 0 && r.revs[len(r.revs)-1] >= lastRev
			r.mu.Unlock()
			if !done {
				return false
			}
		}
		return true
	})
	cancel()
	for i, r := range results {
		r.mu.Lock()
		got := slices.Clone(r.revs)
		r.mu.Unlock()
		// The first update may be the initial value (revision first).
		if len(got) > 0 && got[0] == first {
			got = got[1:]
		}
		if !slices.Equal(got, want) {
			t.Errorf("client %d saw revisions %v, want %v", i, got, want)
		}
	}
}

// testQuorumLost: with two of etcd's three members stopped, a replica
// refuses writes with 503 store_unavailable (configctl exits 1 saying
// so), goes on serving reads, says so in /readyz and in
// configd_store_available, and takes writes again once etcd is back.
func testQuorumLost(t *testing.T, etcd *testserver.EtcdCluster, c *configdtest.Cluster) {
	ds := replicaDaemons(t, c)
	r1, r2 := ds[0], ds[1]
	rev := r1.put("app/a", "before")
	var kv api.KeyValue
	r2.mustCall(http.MethodGet, fmt.Sprintf("/v1/kv/app/a?min_rev=%d", rev), nil, &kv)

	etcd.Stop(1)
	etcd.Stop(2)
	restarted := false
	defer func() {
		if !restarted {
			etcd.StartAll(1, 2)
		}
	}()
	st, b, err := r1.request(http.MethodPut, "/v1/kv/app/a", []byte("during"))
	if err != nil || st != http.StatusServiceUnavailable || !strings.Contains(string(b), api.CodeStoreUnavailable) {
		t.Fatalf("a write without etcd's quorum: %d %s %v; want 503 %s", st, b, err, api.CodeStoreUnavailable)
	}
	out, err := exec.Command(ctlBin, "--addr", r2.Addr, "set", "app/a", "during").CombinedOutput()
	if code := exitCodeOf(err); code != 1 || !strings.Contains(string(out), "etcd is unreachable") {
		t.Errorf("configctl set without quorum: exit %d %q; want 1 saying etcd is unreachable", code, out)
	}
	r2.mustCall(http.MethodGet, "/v1/kv/app/a", nil, &kv)
	if kv.Value != "before" {
		t.Errorf("a read without quorum: %+v, want before", kv)
	}
	waitFor(t, "r2's /readyz says it is degraded", func() bool {
		st, b, _ := r2.request(http.MethodGet, "/readyz", nil)
		return st == http.StatusOK && strings.Contains(string(b), "degraded")
	})
	if st, b, _ := r2.request(http.MethodGet, "/readyz?writes=true", nil); st != http.StatusServiceUnavailable || !strings.Contains(string(b), "writes are refused") {
		t.Errorf("/readyz?writes=true without quorum: %d %s, want 503", st, b)
	}
	if _, b, _ := r2.request(http.MethodGet, "/metrics", nil); !regexp.MustCompile(`(?m)^configd_store_available 0$`).Match(b) {
		t.Errorf("/metrics without quorum lacks configd_store_available 0")
	}

	etcd.StartAll(1, 2)
	restarted = true
	var wr api.WriteResponse
	waitFor(t, "writes resume once etcd is back", func() bool {
		return r1.call(http.MethodPut, "/v1/kv/app/a", []byte("after"), &wr) == nil
	})
	r2.mustCall(http.MethodGet, fmt.Sprintf("/v1/kv/app/a?min_rev=%d", wr.Rev), nil, &kv)
	if kv.Value != "after" {
		t.Errorf("after etcd is back: %+v", kv)
	}
	waitFor(t, "r2's /readyz is ok again", func() bool {
		st, b, _ := r2.request(http.MethodGet, "/readyz?writes=true", nil)
		return st == http.StatusOK && !strings.Contains(string(b), "degraded")
	})
	if _, b, _ := r2.request(http.MethodGet, "/metrics", nil); !regexp.MustCompile(`(?m)^configd_store_available 1$`).Match(b) {
		t.Errorf("/metrics after etcd is back lacks configd_store_available 1")
	}
	// Both are registered again, whether or not their leases outlived
	// the outage.
	var rs api.ReplicasResponse
	waitFor(t, "both replicas registered after the outage", func() bool {
		return r1.call(http.MethodGet, "/v1/replicas", nil, &rs) == nil && len(rs.Replicas) == 2 && rs.Replicas[1].Rev == wr.Rev
	})
}

func exitCodeOf(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// testCutOffAndHealed: a replica cut off from etcd (TCP proxies between
// them that the test closes) refuses writes with 503 store_unavailable
// and serves reads, while the others go on writing; healed, it catches
// up and takes writes again.
func testCutOffAndHealed(t *testing.T, etcd *testserver.EtcdCluster, c *configdtest.Cluster) {
	var proxies []*tcpproxy.Proxy
	var through []string
	for _, ep := range etcd.Endpoints {
		p, err := tcpproxy.New(strings.TrimPrefix(ep, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		proxies = append(proxies, p)
		through = append(through, p.Addr())
	}
	cutOff := configdtest.NewCluster(t, bin, through, c.Prefix, "--etcd-timeout", "1s")
	r1, r2 := asDaemon(t, c.Replicas[0]), asDaemon(t, cutOff.Launch(filepath.Join(t.TempDir(), "data"), "r2"))
	r2.Listening()
	rev := r1.put("app/a", "before")
	var kv api.KeyValue
	r2.mustCall(http.MethodGet, fmt.Sprintf("/v1/kv/app/a?min_rev=%d", rev), nil, &kv)

	for _, p := range proxies {
		p.Cut()
	}
	waitFor(t, "the cut-off replica's /readyz says it is degraded", func() bool {
		st, b, _ := r2.request(http.MethodGet, "/readyz", nil)
		return st == http.StatusOK && strings.Contains(string(b), "degraded")
	})
	// Knowing it, it takes no write, not even one to forward to the writer
	// (it could not read it back).
	st, b, err := r2.request(http.MethodPut, "/v1/kv/app/a", []byte("cut"))
	if err != nil || st != http.StatusServiceUnavailable || !strings.Contains(string(b), api.CodeStoreUnavailable) {
		t.Fatalf("a write on the cut-off replica: %d %s %v; want 503 %s", st, b, err, api.CodeStoreUnavailable)
	}
	during := r1.put("app/a", "during") // the others go on
	r2.mustCall(http.MethodGet, "/v1/kv/app/a", nil, &kv)
	if kv.Value != "before" {
		t.Errorf("a read on the cut-off replica: %+v, want before", kv)
	}

	for _, p := range proxies {
		p.Restore()
	}
	r2.mustCall(http.MethodGet, fmt.Sprintf("/v1/kv/app/a?min_rev=%d", during), nil, &kv)
	if kv.Value != "during" {
		t.Errorf("healed, the replica reads %+v, want during", kv)
	}
	var wr api.WriteResponse
	waitFor(t, "the healed replica takes writes", func() bool {
		return r2.call(http.MethodPut, "/v1/kv/app/a", []byte("after"), &wr) == nil
	})
	r1.mustCall(http.MethodGet, fmt.Sprintf("/v1/kv/app/a?min_rev=%d", wr.Rev), nil, &kv)
	if kv.Value != "after" {
		t.Errorf("r1 after the healed replica's write: %+v", kv)
	}
	sameEverywhere(t, []*daemon{r1, r2}, wr.Rev)
}

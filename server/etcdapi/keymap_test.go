package etcdapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/etcdapi"
)

// refusedNaming fails t unless err is INVALID_ARGUMENT and its message
// holds each of want.
func refusedNaming(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	s, _ := status.FromError(err)
	if err == nil || s.Code() != codes.InvalidArgument {
		t.Fatalf("%s: %v, want INVALID_ARGUMENT", what, err)
	}
	for _, w := range want {
		if !strings.Contains(s.Message(), w) {
			t.Fatalf("%s: %q, want it to name %s", what, s.Message(), w)
		}
	}
}

// httpKey reads configd's key through configd's own API.
func httpKey(t *testing.T, addr, key string) api.KeyValue {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/kv/" + key)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var kv api.KeyValue
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/kv/%s: %s", key, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&kv); err != nil {
		t.Fatal(err)
	}
	return kv
}

// With --etcd-api-prefix "/", etcd's client writes and reads "/app/..."
// keys, which are configd's app/... keys: written as ordinary revisions,
// read by configd's own API, and answered with their '/' in every range,
// transaction and delete.
func TestEtcdKeyPrefixShowsConfigdKeysWithALeadingSlash(t *testing.T) {
	e := prefixedConfigd(t, "/")
	cli := client(t, e.Addr)
	ctx := timeout(t)
	for _, kv := range [][2]string{{"/app/db/host", "db1"}, {"/app/db/port", "5432"}, {"/app/name", "shop"}, {"/other", "y"}} {
		if _, err := cli.Put(ctx, kv[0], kv[1]); err != nil {
			t.Fatalf("put %s: %v", kv[0], err)
		}
	}
	if kv := httpKey(t, e.Addr, "app/db/host"); kv.Key != "app/db/host" || string(kv.Value) != "db1" || kv.ModRev != 1 {
		t.Fatalf("GET /v1/kv/app/db/host: %+v, want db1 at revision 1", kv)
	}
	r, err := e.c.Store.Revision(ctx, 1)
	if err != nil || !strings.HasPrefix(r.Actor, "etcd-api@127.0.0.1:") || r.Origin != etcdapi.Origin ||
		len(r.Changes) != 1 || r.Changes[0].Key != "app/db/host" {
		t.Fatalf("revision 1: %+v, %v; want app/db/host by etcd-api@127.0.0.1:... from etcd-api", r, err)
	}

	get := func(what, key string, want []string, opts ...clientv3.OpOption) *clientv3.GetResponse {
		t.Helper()
		got, err := cli.Get(ctx, key, opts...)
		if err != nil || !slices.Equal(keys(got), want) {
			t.Fatalf("%s: %q, %v; want %q", what, keys(got), err, want)
		}
		return got
	}
	if got := get("get /app/db/host", "/app/db/host", []string{"/app/db/host"}); string(got.Kvs[0].Value) != "db1" {
		t.Fatalf("get /app/db/host: %q", got.Kvs[0].Value)
	}
	if got := get("get /app/ --prefix --keys-only", "/app/", []string{"/app/db/host", "/app/db/port", "/app/name"},
		clientv3.WithPrefix(), clientv3.WithKeysOnly()); len(got.Kvs[0].Value) != 0 {
		t.Fatalf("keys-only answered a value: %q", got.Kvs[0].Value)
	}
	get("get /app/db/ to /app/db/q", "/app/db/", []string{"/app/db/host", "/app/db/port"}, clientv3.WithRange("/app/db/q"))
	get("get / --prefix (every key)", "/", []string{"/app/db/host", "/app/db/port", "/app/name", "/other"}, clientv3.WithPrefix())
	get("get /app/n --from-key", "/app/n", []string{"/app/name", "/other"}, clientv3.WithFromKey())
	// Ranges that cross out of "/" answer the keys inside; one wholly
	// outside, none.
	get("get ! to /app/db/port", "!", []string{"/app/db/host"}, clientv3.WithRange("/app/db/port"))
	get("get /app/n to zzz", "/app/n", []string{"/app/name", "/other"}, clientv3.WithRange("zzz"))
	get("get ! --from-key", "!", []string{"/app/db/host", "/app/db/port", "/app/name", "/other"}, clientv3.WithFromKey())
	get("get a to b", "a", nil, clientv3.WithRange("b"))
	if got, err := cli.Get(ctx, "/app/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || got.Count != 3 {
		t.Fatalf("get /app/ --prefix --count-only: %v %v", got, err)
	}

	// A key without the prefix is refused, naming it; configd's key rules
	// apply to the key under it, naming the key sent.
	_, err = cli.Get(ctx, "app/db/host")
	refusedNaming(t, "get app/db/host", err, `"app/db/host"`, `prefix "/"`, `write "/app/db/host"`)
	_, err = cli.Put(ctx, "app/x", "1")
	refusedNaming(t, "put app/x", err, `"app/x"`, `prefix "/"`)
	_, err = cli.Put(ctx, "/app//x", "1")
	refusedNaming(t, "put /app//x", err, `"/app//x"`, "empty segment")
	_, err = cli.Put(ctx, "//app", "1")
	refusedNaming(t, "put //app", err, `"//app"`, "starts with '/'")
	_, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("app/db/host"), "=", "db1")).Commit()
	refusedNaming(t, "txn comparing app/db/host", err, `"app/db/host"`, `prefix "/"`)

	// A compare-and-swap, its range and its put answered with '/'.
	cas := func() *clientv3.TxnResponse {
		t.Helper()
		resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("/app/db/host"), "=", "db1"),
			clientv3.Compare(clientv3.Version("/app/db/"), ">", 0).WithPrefix()).
			Then(clientv3.OpPut("/app/db/host", "db2", clientv3.WithPrevKV()), clientv3.OpGet("/app/db/", clientv3.WithPrefix())).
			Else(clientv3.OpGet("/app/db/host")).Commit()
		if err != nil {
			t.Fatalf("txn: %v", err)
		}
		return resp
	}
	if resp := cas(); !resp.Succeeded || string(resp.Responses[0].GetResponsePut().PrevKv.Key) != "/app/db/host" ||
		!slices.Equal(keys((*clientv3.GetResponse)(resp.Responses[1].GetResponseRange())), []string{"/app/db/host", "/app/db/port"}) {
		t.Fatalf("txn: %+v, want success, prev_kv /app/db/host and the range /app/db/host, /app/db/port", resp)
	}
	if resp := cas(); resp.Succeeded || !slices.Equal(keys((*clientv3.GetResponse)(resp.Responses[0].GetResponseRange())), []string{"/app/db/host"}) {
		t.Fatalf("txn again: %+v, want failure reading /app/db/host", resp)
	}
	if kv := httpKey(t, e.Addr, "app/db/host"); string(kv.Value) != "db2" {
		t.Fatalf("GET /v1/kv/app/db/host after the txn: %q", kv.Value)
	}

	// A watch from the txn's revision, with prev_kv, sees its put and the
	// delete --prefix after it, with '/'.
	txnRev := e.c.Store.Rev()
	del, err := cli.Delete(ctx, "/app/db/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	if err != nil || del.Deleted != 2 || len(del.PrevKvs) != 2 || string(del.PrevKvs[0].Key) != "/app/db/host" || string(del.PrevKvs[1].Key) != "/app/db/port" {
		t.Fatalf("delete /app/db/ --prefix --prev-kv: %+v, %v", del, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := cli.Watch(wctx, "/app/", clientv3.WithPrefix(), clientv3.WithRev(txnRev), clientv3.WithPrevKV())
	var got []string
	for len(got) < 3 {
		wr, ok := <-wch
		if !ok || wr.Err() != nil {
			t.Fatalf("watch /app/ --prefix --rev %d: closed (%v) after %q", txnRev, wr.Err(), got)
		}
		for _, ev := range wr.Events {
			got = append(got, ev.Type.String()+" "+string(ev.Kv.Key)+" prev "+string(ev.PrevKv.Key)+"="+string(ev.PrevKv.Value))
		}
	}
	want := []string{"PUT /app/db/host prev /app/db/host=db1", "DELETE /app/db/host prev /app/db/host=db2", "DELETE /app/db/port prev /app/db/port=5432"}
	if !slices.Equal(got, want) {
		t.Fatalf("watch events: %q, want %q", got, want)
	}
	// A watch of a range with no key under the prefix is refused.
	wr := <-cli.Watch(wctx, "a", clientv3.WithRange("b"))
	if !wr.Canceled || wr.Err() == nil || !strings.Contains(wr.Err().Error(), `holds no key of the etcd API: its keys are "/"`) {
		t.Fatalf("watch a to b: %+v (%v), want it canceled naming the prefix", wr, wr.Err())
	}
}

// A key attached to a lease through the prefixed etcd API is listed by
// TimeToLive with its '/', and its expiry deletes configd's key.
func TestEtcdKeyPrefixLeasesListSlashKeys(t *testing.T) {
	e := prefixedConfigd(t, "/")
	cli := client(t, e.Addr)
	ctx := timeout(t)
	l, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/app/leased", "1", clientv3.WithLease(l.ID)); err != nil {
		t.Fatalf("put /app/leased with a lease: %v", err)
	}
	ttl, err := cli.TimeToLive(ctx, l.ID, clientv3.WithAttachedKeys())
	if err != nil || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "/app/leased" {
		t.Fatalf("time-to-live --keys: %+v, %v; want /app/leased", ttl, err)
	}
	if got, err := cli.Get(ctx, "/app/leased"); err != nil || len(got.Kvs) != 1 || got.Kvs[0].Lease != int64(l.ID) {
		t.Fatalf("get /app/leased: %v, %v; want it on lease %d", got, err, l.ID)
	}
	if _, err := cli.Revoke(ctx, l.ID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if _, err := e.c.Store.Get(ctx, "app/leased"); err == nil {
		t.Fatalf("app/leased outlived its revoked lease")
	}
}

// Grants are on configd's keys: a grant on app/ reads "/app/x" through
// the prefixed etcd API, not "/db/x"; a range wholly outside the prefix
// reads nothing and needs no grant.
func TestEtcdKeyPrefixGrantsAreOnConfigdKeys(t *testing.T) {
	env, addr := authConfigd(t, etcdapi.WithKeyPrefix("/"))
	reader := client(t, addr, clientv3.Config{Username: "reader-app", Password: env.Secrets["reader-app"]})
	ctx := timeout(t)
	if got, err := reader.Get(ctx, "/app/", clientv3.WithPrefix()); err != nil || !slices.Equal(keys(got), []string{"/app/x"}) {
		t.Fatalf("reader get /app/ --prefix: %v, %v", got, err)
	}
	if _, err := reader.Get(ctx, "/db/x"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("reader get /db/x: %v, want PermissionDenied", err)
	}
	if _, err := reader.Get(ctx, "/", clientv3.WithPrefix()); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("reader get / --prefix (everything): %v, want PermissionDenied", err)
	}
	if got, err := reader.Get(ctx, "a", clientv3.WithRange("b")); err != nil || len(got.Kvs) != 0 {
		t.Fatalf("reader get a to b: %v, %v; want nothing", got, err)
	}
	writer := client(t, addr, clientv3.Config{Username: "writer-app", Password: env.Secrets["writer-app"]})
	if _, err := writer.Put(ctx, "/app/x", "2"); err != nil {
		t.Fatalf("writer put /app/x: %v", err)
	}
	if kv, err := env.Store.Get(ctx, "app/x"); err != nil || string(kv.Value) != "2" {
		t.Fatalf("app/x after the put: %+v, %v", kv, err)
	}
}

// The etcd API's key prefix is one of the etcd API's: configd's keys
// written through its own API are read by etcd's clients under it.
func TestEtcdKeyPrefixOfMoreThanASlash(t *testing.T) {
	e := prefixedConfigd(t, "/micro/config/")
	if _, err := e.c.Store.Commit(context.Background(), audit.Txn{Actor: "t", Ops: []audit.Op{audit.Put("db/host", []byte("db1"), ""), audit.Put("name", []byte("shop"), "")}}); err != nil {
		t.Fatal(err)
	}
	cli := client(t, e.Addr)
	ctx := timeout(t)
	got, err := cli.Get(ctx, "/micro/config/", clientv3.WithPrefix())
	if err != nil || !slices.Equal(keys(got), []string{"/micro/config/db/host", "/micro/config/name"}) {
		t.Fatalf("get /micro/config/ --prefix: %q, %v", keys(got), err)
	}
	// "/micro/" holds "/micro/config/": the range is cut to it.
	if got, err = cli.Get(ctx, "/micro/", clientv3.WithPrefix(), clientv3.WithKeysOnly()); err != nil || !slices.Equal(keys(got), []string{"/micro/config/db/host", "/micro/config/name"}) {
		t.Fatalf("get /micro/ --prefix: %q, %v", keys(got), err)
	}
	// The prefix itself with "\x00" is configd's key "" alone: no key.
	if got, err = cli.Get(ctx, "/micro/config/", clientv3.WithRange("/micro/config/\x00")); err != nil || len(got.Kvs) != 0 {
		t.Fatalf("get [/micro/config/, /micro/config/\\x00): %q, %v", keys(got), err)
	}
	_, err = cli.Get(ctx, "/micro/config")
	refusedNaming(t, "get /micro/config", err, `prefix "/micro/config/"`)
	if _, err := cli.Put(ctx, "/micro/config/db/port", "5432"); err != nil {
		t.Fatal(err)
	}
	if kv := httpKey(t, e.Addr, "db/port"); string(kv.Value) != "5432" {
		t.Fatalf("GET /v1/kv/db/port: %+v", kv)
	}
}

// Without a prefix (the default) a key with a leading '/' is refused as
// before, and the refusal names the setting that serves it.
func TestEtcdKeyWithALeadingSlashIsToldOfThePrefixSetting(t *testing.T) {
	e := startConfigd(t)
	_, err := client(t, e.Addr).Put(timeout(t), "/app/x", "1")
	refusedNaming(t, "put /app/x", err, `starts with '/'`, `write "app/x"`, "--etcd-api-prefix /")
}

// Both etcdctls put and get "/" keys through the prefixed etcd API.
func TestEtcdctlWithTheSlashPrefix(t *testing.T) {
	eachEtcdctl(t, func(t *testing.T, ctl etcdctl) {
		e := prefixedConfigd(t, "/")
		if out := ctl.must(e.Addr, "", "put", "/app/db/host", "db1"); strings.TrimSpace(out) != "OK" {
			t.Fatalf("put: %q", out)
		}
		ctl.must(e.Addr, "", "put", "/app/db/port", "5432")
		if got := lines(ctl.must(e.Addr, "", "get", "/app/", "--prefix")); !slices.Equal(got, []string{"/app/db/host", "db1", "/app/db/port", "5432"}) {
			t.Fatalf("get /app/ --prefix: %q", got)
		}
		if kv := httpKey(t, e.Addr, "app/db/host"); string(kv.Value) != "db1" {
			t.Fatalf("GET /v1/kv/app/db/host: %+v", kv)
		}
		if out, err := ctl.run(e.Addr, "", "get", "app/db/host"); err == nil || !strings.Contains(out, `prefix "/"`) {
			t.Fatalf("get app/db/host: %q, %v; want a refusal naming the prefix", out, err)
		}
	})
}

// A prefix of 0xff bytes has no end: a range from it on holds every key,
// as etcd's namespace has it.
func TestEtcdKeyPrefixOfFFBytesHasNoEnd(t *testing.T) {
	e := prefixedConfigd(t, "\xff")
	cli := client(t, e.Addr)
	ctx := timeout(t)
	for _, k := range []string{"\xffa", "\xffb/c"} {
		if _, err := cli.Put(ctx, k, "1"); err != nil {
			t.Fatalf("put %q: %v", k, err)
		}
	}
	for _, opt := range []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithFromKey()} {
		if got, err := cli.Get(ctx, "\xff", opt); err != nil || !slices.Equal(keys(got), []string{"\xffa", "\xffb/c"}) {
			t.Fatalf("get \\xff: %v, %v", got, err)
		}
	}
	if got, err := cli.Get(ctx, "\xffb", clientv3.WithRange("\xff\xff")); err != nil || !slices.Equal(keys(got), []string{"\xffb/c"}) {
		t.Fatalf("get \\xffb .. \\xff\\xff: %v, %v", got, err)
	}
	if kv := httpKey(t, e.Addr, "b/c"); string(kv.Value) != "1" {
		t.Fatalf("GET /v1/kv/b/c: %+v", kv)
	}
}

package etcdapi_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/etcdapi"
)

func keys(resp *clientv3.GetResponse) []string {
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

func TestEtcdClientReadsWhatItPuts(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	for _, kv := range [][2]string{{"app/db/host", "db1"}, {"app/db/port", "5432"}, {"app/name", "shop"}, {"apple", "x"}, {"other", "y"}} {
		if _, err := cli.Put(ctx, kv[0], kv[1]); err != nil {
			t.Fatalf("put %s: %v", kv[0], err)
		}
	}
	got, err := cli.Get(ctx, "app/db/host")
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "db1" || got.Kvs[0].CreateRevision != 1 || got.Kvs[0].Version != 1 {
		t.Fatalf("get app/db/host: %v %v", got, err)
	}
	if h := got.Header; h.Revision != 5 || h.ClusterId == 0 || h.MemberId == 0 || h.RaftTerm != 1 {
		t.Fatalf("header %+v: want revision 5, non-zero ids, term 1", h)
	}
	if got, err = cli.Get(ctx, "app/", clientv3.WithPrefix(), clientv3.WithKeysOnly()); err != nil ||
		!slices.Equal(keys(got), []string{"app/db/host", "app/db/port", "app/name"}) || len(got.Kvs[0].Value) != 0 {
		t.Fatalf("get app/ --prefix --keys-only: %v %v", got, err)
	}
	// A prefix that is no segment prefix: configd lists the enclosing one
	// and keeps the range.
	if got, err = cli.Get(ctx, "app", clientv3.WithPrefix()); err != nil || !slices.Equal(keys(got), []string{"app/db/host", "app/db/port", "app/name", "apple"}) {
		t.Fatalf("get app --prefix: %v %v", keys(got), err)
	}
	if got, err = cli.Get(ctx, "app/db/", clientv3.WithRange("app/db/q")); err != nil || !slices.Equal(keys(got), []string{"app/db/host", "app/db/port"}) {
		t.Fatalf("get [app/db/, app/db/q): %v %v", keys(got), err)
	}
	if got, err = cli.Get(ctx, "app/name", clientv3.WithFromKey()); err != nil || !slices.Equal(keys(got), []string{"app/name", "apple", "other"}) {
		t.Fatalf("get --from-key app/name: %v %v", keys(got), err)
	}
	if got, err = cli.Get(ctx, "app/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || got.Count != 3 || len(got.Kvs) != 0 {
		t.Fatalf("count-only: %v %v", got, err)
	}
	if got, err = cli.Get(ctx, "", clientv3.WithPrefix(), clientv3.WithLimit(2)); err != nil || !got.More || got.Count != 5 ||
		!slices.Equal(keys(got), []string{"app/db/host", "app/db/port"}) {
		t.Fatalf("limit 2: %v %v", got, err)
	}
	if got, err = cli.Get(ctx, "app/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)); err != nil ||
		!slices.Equal(keys(got), []string{"app/name", "app/db/port", "app/db/host"}) {
		t.Fatalf("sort by key descending: %v %v", keys(got), err)
	}
	if _, err := cli.Put(ctx, "app/db/host", "db2"); err != nil { // rev 6
		t.Fatal(err)
	}
	if got, err = cli.Get(ctx, "app/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend), clientv3.WithLimit(1)); err != nil ||
		!slices.Equal(keys(got), []string{"app/db/host"}) || got.Kvs[0].ModRevision != 6 || got.Kvs[0].Version != 2 {
		t.Fatalf("newest by mod revision: %v %v", got, err)
	}
	if got, err = cli.Get(ctx, "app/", clientv3.WithPrefix(), clientv3.WithMinModRev(2), clientv3.WithMaxCreateRev(2)); err != nil ||
		!slices.Equal(keys(got), []string{"app/db/host", "app/db/port"}) {
		t.Fatalf("min mod 2, max create 2: %v %v", keys(got), err)
	}
	// Reads at a retained revision (its header names the store's
	// revision, as etcd's does), and beyond the current one.
	if got, err = cli.Get(ctx, "app/db/host", clientv3.WithRev(3)); err != nil || string(got.Kvs[0].Value) != "db1" || got.Header.Revision != e.c.Store.Rev() {
		t.Fatalf("get at revision 3: %v %v", got, err)
	}
	if got, err = cli.Get(ctx, "app/", clientv3.WithPrefix(), clientv3.WithRev(1)); err != nil || !slices.Equal(keys(got), []string{"app/db/host"}) {
		t.Fatalf("prefix at revision 1: %v %v", keys(got), err)
	}
	if _, err = cli.Get(ctx, "app/db/host", clientv3.WithRev(99)); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Fatalf("get at revision 99: %v, want %v", err, rpctypes.ErrFutureRev)
	}
	if _, err = cli.Get(ctx, "app/none", clientv3.WithRev(99)); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Fatalf("get of a missing key at revision 99: %v, want %v", err, rpctypes.ErrFutureRev)
	}
	if _, err = cli.Get(ctx, "b", clientv3.WithRange("a"), clientv3.WithRev(99)); !errors.Is(err, rpctypes.ErrFutureRev) {
		t.Fatalf("get of an empty range at revision 99: %v, want %v", err, rpctypes.ErrFutureRev)
	}
	// Each write is a configd revision by etcd-api@<peer> from etcd-api.
	r, err := e.c.Store.Revision(ctx, 6)
	if err != nil || !strings.HasPrefix(r.Actor, "etcd-api@127.0.0.1:") || r.Origin != etcdapi.Origin {
		t.Fatalf("revision 6: actor %q origin %q, %v", r.Actor, r.Origin, err)
	}
}

// TestEtcdClientNeverSeesConfigdsOwnKeys: configd's change requests live
// under .configd/; a listing of everything leaves them out.
func TestEtcdClientNeverSeesConfigdsOwnKeys(t *testing.T) {
	e := startConfigd(t)
	ctx := timeout(t)
	if _, err := e.c.Store.Commit(ctx, audit.Txn{Actor: "t", Ops: []audit.Op{audit.Put(".configd/requests/1", []byte("{}"), "application/json"), audit.Put("a", []byte("1"), "")}}); err != nil {
		t.Fatal(err)
	}
	cli := client(t, e.Addr)
	for _, opt := range []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithFromKey()} {
		got, err := cli.Get(ctx, "", opt)
		if err != nil || !slices.Equal(keys(got), []string{"a"}) {
			t.Fatalf("everything: %v %v", keys(got), err)
		}
	}
	if got, err := cli.Get(ctx, ".configd/requests/1"); err != nil || len(got.Kvs) != 0 {
		t.Fatalf("get .configd/requests/1: %v %v", got, err)
	}
}

func TestEtcdDeleteRangeIsOneRevisionWithPrevKVs(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	for _, k := range []string{"app/a", "app/b", "app/c", "db/a"} {
		if _, err := cli.Put(ctx, k, "v-"+k); err != nil {
			t.Fatal(err)
		}
	}
	del, err := cli.Delete(ctx, "app/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	if err != nil || del.Deleted != 3 || len(del.PrevKvs) != 3 || string(del.PrevKvs[1].Value) != "v-app/b" || del.Header.Revision != 5 {
		t.Fatalf("delete app/ --prefix --prev-kv: %+v %v", del, err)
	}
	r, err := e.c.Store.Revision(ctx, 5)
	if err != nil || len(r.Changes) != 3 {
		t.Fatalf("revision 5: %+v %v, want the 3 deletes in one revision", r, err)
	}
	if del, err = cli.Delete(ctx, "app/a"); err != nil || del.Deleted != 0 || del.Header.Revision != 5 {
		t.Fatalf("delete of a missing key: %+v %v, want nothing deleted at revision 5", del, err)
	}
	if got, _ := cli.Get(ctx, "", clientv3.WithPrefix()); !slices.Equal(keys(got), []string{"db/a"}) {
		t.Fatalf("left: %v", keys(got))
	}
}

// TestEtcdTxnCompareAndSwapHasOneWinner: writers racing the same
// compare-and-swap; exactly one succeeds each round, the others are told
// succeeded=false (not an error), and the value is the winner's.
func TestEtcdTxnCompareAndSwapHasOneWinner(t *testing.T) {
	e := startConfigd(t)
	ctx := timeout(t)
	clis := []*clientv3.Client{client(t, e.Addr), client(t, e.Addr)}
	if _, err := clis[0].Put(ctx, "lock", "free"); err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		from := "free"
		if round > 0 {
			from = fmt.Sprint("taken-", round-1)
		}
		var wins []int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i, cli := range clis {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("lock"), "=", from)).
					Then(clientv3.OpPut("lock", fmt.Sprint("taken-", round)), clientv3.OpPut("owner", fmt.Sprint(i))).
					Else(clientv3.OpGet("lock")).Commit()
				if err != nil {
					t.Errorf("writer %d: %v", i, err)
					return
				}
				if resp.Succeeded {
					mu.Lock()
					wins = append(wins, i)
					mu.Unlock()
				} else if v := string(resp.Responses[0].GetResponseRange().Kvs[0].Value); v != fmt.Sprint("taken-", round) {
					t.Errorf("writer %d lost and read %q", i, v)
				}
			}()
		}
		wg.Wait()
		if len(wins) != 1 {
			t.Fatalf("round %d: winners %v, want exactly one", round, wins)
		}
		got, err := clis[0].Get(ctx, "owner")
		if err != nil || string(got.Kvs[0].Value) != fmt.Sprint(wins[0]) {
			t.Fatalf("round %d: owner %v %v, want %d", round, got, err, wins[0])
		}
	}
	if rev := e.c.Store.Rev(); rev != 11 {
		t.Fatalf("revision %d after 10 rounds, want 11: one revision per winning txn", rev)
	}
}

func TestEtcdTxnComparesRangesAndNestedTxns(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	for _, k := range []string{"app/a", "app/b"} {
		if _, err := cli.Put(ctx, k, "1"); err != nil {
			t.Fatal(err)
		}
	}
	// Every key of a range must satisfy a compare; a missing key has
	// version 0, and a value compare on it fails.
	resp, err := cli.Txn(ctx).If(
		clientv3.Compare(clientv3.Version("app/").WithPrefix(), "=", 1),
		clientv3.Compare(clientv3.CreateRevision("app/none"), "=", 0),
		clientv3.Compare(clientv3.ModRevision("app/b"), ">", 1),
		clientv3.Compare(clientv3.Value("app/a"), "!=", "2"),
	).Then(clientv3.OpPut("app/c", "3"), clientv3.OpGet("app/", clientv3.WithPrefix()),
		clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.Value("app/none"), "=", "")}, []clientv3.Op{clientv3.OpPut("x", "wrong")},
			[]clientv3.Op{clientv3.OpDelete("app/a", clientv3.WithPrevKV())})).Commit()
	if err != nil || !resp.Succeeded {
		t.Fatalf("txn: %+v %v, want succeeded", resp, err)
	}
	if resp.Header.Revision != 3 {
		t.Fatalf("txn revision %d, want one revision: 3", resp.Header.Revision)
	}
	// As in etcd, a range sees the writes of the ops before it, not after:
	// app/a (deleted after it), app/b, app/c.
	if got := resp.Responses[1].GetResponseRange(); len(got.Kvs) != 3 || string(got.Kvs[2].Value) != "3" || got.Kvs[2].ModRevision != 3 {
		t.Fatalf("range in the txn: %v", got)
	}
	nested := resp.Responses[2].GetResponseTxn()
	if nested.Succeeded || nested.Responses[0].GetResponseDeleteRange().Deleted != 1 ||
		string(nested.Responses[0].GetResponseDeleteRange().PrevKvs[0].Value) != "1" {
		t.Fatalf("nested txn: %+v", nested)
	}
	got, _ := cli.Get(ctx, "", clientv3.WithPrefix())
	if !slices.Equal(keys(got), []string{"app/b", "app/c"}) {
		t.Fatalf("after the txn: %v", keys(got))
	}
	// A compare over the range that fails takes the else branch.
	if resp, err = cli.Txn(ctx).If(clientv3.Compare(clientv3.Version("app/").WithPrefix(), "=", 1), clientv3.Compare(clientv3.Value("app/c"), "=", "4")).
		Then(clientv3.OpPut("y", "wrong")).Else(clientv3.OpPut("app/c", "5", clientv3.WithPrevKV())).Commit(); err != nil || resp.Succeeded ||
		string(resp.Responses[0].GetResponsePut().PrevKv.Value) != "3" || resp.Header.Revision != 4 {
		t.Fatalf("else branch: %+v %v", resp, err)
	}
	// Two writes of one key in a txn are refused, nothing written.
	if _, err := cli.Txn(ctx).Then(clientv3.OpPut("k", "1"), clientv3.OpDelete("k")).Commit(); !errors.Is(err, rpctypes.ErrDuplicateKey) || e.c.Store.Rev() != 4 {
		t.Fatalf("a key twice: %v (revision %d)", err, e.c.Store.Rev())
	}
}

func TestEtcdReadOnlyTxnMakesNoRevision(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("k"), "=", "v")).Then(clientv3.OpGet("k")).Commit()
	if err != nil || !resp.Succeeded || resp.Header.Revision != 1 || string(resp.Responses[0].GetResponseRange().Kvs[0].Value) != "v" {
		t.Fatalf("read-only txn: %+v %v", resp, err)
	}
	if rev := e.c.Store.Rev(); rev != 1 {
		t.Fatalf("revision %d after a read-only txn, want 1", rev)
	}
}

func TestEtcdPutOptions(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	if _, err := cli.Put(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	put, err := cli.Put(ctx, "k", "v2", clientv3.WithPrevKV())
	if err != nil || string(put.PrevKv.Value) != "v1" || put.Header.Revision != 2 {
		t.Fatalf("put --prev-kv: %+v %v", put, err)
	}
	if _, err = cli.Put(ctx, "k", "", clientv3.WithIgnoreValue()); err != nil {
		t.Fatalf("put --ignore-value: %v", err)
	}
	if _, err = cli.Put(ctx, "new", "", clientv3.WithIgnoreValue()); !errors.Is(err, rpctypes.ErrKeyNotFound) {
		t.Fatalf("put --ignore-value of a missing key: %v, want %v", err, rpctypes.ErrKeyNotFound)
	}
	// A lease that does not exist is refused as etcd does; nothing written.
	if _, err = cli.Put(ctx, "k", "v3", clientv3.WithLease(7)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("put with an unknown lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	// A value configd refuses for the key's content type.
	if _, err := e.c.Store.Commit(ctx, audit.Txn{Actor: "t", Ops: []audit.Op{audit.Put("j", []byte(`{"a":1}`), "application/json")}}); err != nil {
		t.Fatal(err)
	}
	if _, err = cli.Put(ctx, "j", "{not json"); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("put of bad JSON over a JSON key: %v, want InvalidArgument", err)
	}
	if got, _ := cli.Get(ctx, "k"); string(got.Kvs[0].Value) != "v2" {
		t.Fatalf("k = %q, want v2", got.Kvs[0].Value)
	}
}

func TestEtcdInvalidKeysAreRefusedInConfigdsWords(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	_, err := cli.Put(ctx, "/app/x", "v")
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "no leading '/'") || !strings.Contains(err.Error(), `"app/x"`) {
		t.Fatalf("put /app/x: %v, want InvalidArgument saying to drop the leading '/'", err)
	}
	if _, err = cli.Get(ctx, "/", clientv3.WithPrefix()); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("get / --prefix: %v, want InvalidArgument", err)
	}
	if _, err = cli.Put(ctx, "app//x", "v"); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "empty segment") {
		t.Fatalf("put app//x: %v, want configd's key rule", err)
	}
	if rev := e.c.Store.Rev(); rev != 0 {
		t.Fatalf("revision %d: a refused key wrote", rev)
	}
}

func TestEtcdCompactIsRefusedPointingToRetention(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, 1); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "--history-keep-revisions") {
		t.Fatalf("compact: %v, want FailedPrecondition naming the retention", err)
	}
}

func TestEtcdUnservedRPCsNameThemselves(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	_, err := cli.Defragment(ctx, e.Addr)
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "etcdserverpb.Maintenance/Defragment") {
		t.Fatalf("defragment: %v, want Unimplemented naming etcdserverpb.Maintenance/Defragment", err)
	}
	if _, err = cli.MemberAdd(ctx, []string{"http://127.0.0.1:1"}); status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "MemberAdd") {
		t.Fatalf("member add: %v", err)
	}
}

func TestEtcdStatusAndMemberList(t *testing.T) {
	e := startConfigd(t)
	cli := client(t, e.Addr)
	ctx := timeout(t)
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	st, err := cli.Status(ctx, e.Addr)
	if err != nil || st.Version != etcdapi.APIVersion || st.Leader == 0 || st.Leader != st.Header.MemberId || st.RaftIndex != 1 || st.DbSize == 0 {
		t.Fatalf("status: %+v %v", st, err)
	}
	ml, err := cli.MemberList(ctx)
	if err != nil || len(ml.Members) != 1 || ml.Members[0].ID != st.Leader || !slices.Equal(ml.Members[0].ClientURLs, []string{"http://" + e.Addr}) {
		t.Fatalf("member list: %+v %v", ml, err)
	}
	// The IDs are the data dir's: the same after a restart.
	e.restart()
	st2, err := cli.Status(ctx, e.Addr)
	if err != nil || st2.Header.MemberId != st.Header.MemberId || st2.Header.ClusterId != st.Header.ClusterId {
		t.Fatalf("status after a restart: %+v %v, want the same IDs as %+v", st2, err, st.Header)
	}
}

func TestEtcdAuthTakesConfigdTokensAndGrants(t *testing.T) {
	env, addr := authConfigd(t)
	ctx := timeout(t)
	reader := client(t, addr, clientv3.Config{Username: "reader-app", Password: env.Secrets["reader-app"]})
	got, err := reader.Get(ctx, "app/x")
	if err != nil || string(got.Kvs[0].Value) != "1" {
		t.Fatalf("reader get app/x: %v %v", got, err)
	}
	if _, err = reader.Get(ctx, "db/x"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("reader get db/x: %v, want PermissionDenied", err)
	}
	// etcd's --prefix of app/ (app/ .. app0) needs read on app/ only.
	if got, err = reader.Get(ctx, "app/", clientv3.WithPrefix()); err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Key) != "app/x" {
		t.Fatalf("reader get app/ --prefix: %v %v", got, err)
	}
	if _, err = reader.Get(ctx, "app/", clientv3.WithRange("app1")); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("reader get app/ .. app1: %v, want PermissionDenied (the range holds app0)", err)
	}
	if _, err = reader.Put(ctx, "app/x", "2"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("reader put app/x: %v, want PermissionDenied", err)
	}
	writer := client(t, addr, clientv3.Config{Username: "writer-app", Password: env.Secrets["writer-app"]})
	if _, err = writer.Delete(ctx, "db/x"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("writer-app delete db/x: %v, want PermissionDenied", err)
	}
	if _, err = writer.Txn(ctx).If(clientv3.Compare(clientv3.Value("db/x"), "=", "1")).Then(clientv3.OpPut("app/y", "1")).Commit(); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("writer-app txn comparing db/x: %v, want PermissionDenied", err)
	}
	put, err := writer.Put(ctx, "app/x", "2")
	if err != nil {
		t.Fatalf("writer put app/x: %v", err)
	}
	if r, err := env.Store.Revision(ctx, put.Header.Revision); err != nil || r.Actor != "writer-app" || r.Origin != etcdapi.Origin {
		t.Fatalf("the write's revision: %+v %v, want actor writer-app", r, err)
	}
	// A token under another name, an unknown token, no token.
	if _, err := clientv3.New(clientv3.Config{Endpoints: []string{addr}, Logger: zap.NewNop(), Username: "alice", Password: env.Secrets["reader-app"]}); err == nil ||
		!strings.Contains(err.Error(), "reader-app") {
		t.Fatalf("reader-app's token as alice: %v, want refused naming the token", err)
	}
	if _, err := client(t, addr).Get(ctx, "app/x"); status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "--user NAME:TOKEN") {
		t.Fatalf("get without a token: %v, want Unauthenticated", err)
	}
}

// TestEtcdWritesKeepConfigdsPolicies: a prefix whose policy takes changes
// only through change requests refuses an etcd put, as every door does.
func TestEtcdWritesKeepConfigdsPolicies(t *testing.T) {
	e := startConfigd(t)
	ctx := timeout(t)
	if _, err := e.c.Store.Commit(ctx, audit.Txn{Actor: "t", Ops: []audit.Op{
		audit.Put(keyspace.PoliciesKey, []byte(`{"prod/": {"approvals": 1, "require": true}}`), "application/json")}}); err != nil {
		t.Fatal(err)
	}
	rev := e.c.Store.Rev()
	cli := client(t, e.Addr)
	if _, err := cli.Put(ctx, "prod/x", "1"); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "request") {
		t.Fatalf("put prod/x: %v, want PermissionDenied: a change request is required", err)
	}
	if _, err := cli.Txn(ctx).Then(clientv3.OpPut("dev/x", "1"), clientv3.OpPut("prod/y", "1")).Commit(); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("txn over prod/y: %v, want PermissionDenied", err)
	}
	if e.c.Store.Rev() != rev {
		t.Fatal("a refused write wrote")
	}
	if _, err := cli.Put(ctx, "dev/x", "1"); err != nil {
		t.Fatalf("put dev/x: %v", err)
	}
}

// TestEtcdClientOverTLS: with TLS on configd's port, etcd's client speaks
// to it over TLS, and the member's client URL is https.
func TestEtcdClientOverTLS(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(files.ServerCert, files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	env := configdtest.NewEnv(t)
	s := configdtest.Serve(t, &core.Core{Store: env.Store, Hub: env.Hub}, server.APIConfig{
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1", "h2"}, MinVersion: tls.VersionTLS12}})
	cli := client(t, s.Addr, clientv3.Config{TLS: files.ClientConfig(t)})
	ctx := timeout(t)
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put over TLS: %v", err)
	}
	ml, err := cli.MemberList(ctx)
	if err != nil || !slices.Equal(ml.Members[0].ClientURLs, []string{"https://" + s.Addr}) {
		t.Fatalf("member list over TLS: %v %v", ml, err)
	}
}

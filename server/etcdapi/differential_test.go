package etcdapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/internal/testserver"
)

// TestSameAnswersAsARealEtcd runs one script of etcd client calls against
// a real etcd and against configd, each fresh, and compares every answer:
// values, versions, revisions (counted from each server's first one),
// more and count, a txn's branch and responses, prev_kvs, the deleted
// counts, each call's header revision, the errors' codes and messages, and
// a watch's events. A difference configd means to have is listed in
// documented, with where docs/compat.md says so.
func TestSameAnswersAsARealEtcd(t *testing.T) {
	real := testserver.Etcd(t)
	e := startConfigd(t)
	ctx := timeout(t)
	want := runEtcdScript(ctx, real.Client(t))
	got := runEtcdScript(ctx, client(t, e.Addr))
	if len(want) != len(got) {
		t.Errorf("etcd answered %d steps, configd %d:\n  etcd:\n    %s\n  configd:\n    %s", len(want), len(got),
			strings.Join(want, "\n    "), strings.Join(got, "\n    "))
	}
	// configd records changes only: a put that leaves its key as it was
	// is no revision (etcd makes one, with version+1), so the script
	// ends with them.
	const same = "a put that changes nothing is no revision in configd"
	documented := map[string]string{
		"put of the same value":            same,
		"put ignore_value":                 same,
		"get after puts of the same value": same,
	}
	for i := range min(len(want), len(got)) {
		if want[i] == got[i] {
			continue
		}
		name, _, _ := strings.Cut(want[i], ":")
		if why, ok := documented[name]; ok {
			t.Logf("%s differs, as docs/compat.md says (%s):\n  etcd:    %s\n  configd: %s", name, why, want[i], got[i])
			continue
		}
		t.Errorf("step %d differs:\n  etcd:    %s\n  configd: %s", i, want[i], got[i])
	}
	// What configd answers instead: the keys as they were.
	before, after := answer(got, "get all at the end"), answer(got, "get after puts of the same value")
	if before == "" || before != after {
		t.Errorf("configd changed keys on puts of the same value:\n  before: %s\n  after:  %s", before, after)
	}
}

// answer is the answer of step name in lines.
func answer(lines []string, name string) string {
	for _, l := range lines {
		if a, ok := strings.CutPrefix(l, name+": "); ok {
			return a
		}
	}
	return ""
}

// runEtcdScript runs the script against cli and returns each step's
// answer as a line: "name: answer", its revisions counted from the
// server's revision before the first write.
func runEtcdScript(ctx context.Context, cli *clientv3.Client) []string {
	var out []string
	first, err := cli.Get(ctx, "any")
	if err != nil {
		return []string{"start: " + err.Error()}
	}
	base := first.Header.Revision
	rev := func(r int64) string {
		if r == 0 {
			return "0"
		}
		return fmt.Sprintf("r%+d", r-base)
	}
	kv := func(k *mvccpb.KeyValue) string {
		if k == nil {
			return "nil"
		}
		return fmt.Sprintf("%s=%q(v%d c%s m%s l%d)", k.Key, k.Value, k.Version, rev(k.CreateRevision), rev(k.ModRevision), k.Lease)
	}
	kvs := func(list []*mvccpb.KeyValue) string {
		s := make([]string, len(list))
		for i, k := range list {
			s[i] = kv(k)
		}
		return "[" + strings.Join(s, " ") + "]"
	}
	fail := func(err error) string {
		st, _ := status.FromError(err)
		return fmt.Sprintf("error %s %q", st.Code(), st.Message())
	}
	txnResp := func(r *clientv3.TxnResponse) string {
		s := fmt.Sprintf("succeeded=%v rev=%s", r.Succeeded, rev(r.Header.Revision))
		for _, rp := range r.Responses {
			s += " " + responseOp(rp, kvs, rev)
		}
		return s
	}
	opResp := func(r *clientv3.OpResponse) string {
		switch {
		case r.Get() != nil:
			g := r.Get()
			return fmt.Sprintf("kvs=%s more=%v count=%d rev=%s", kvs(g.Kvs), g.More, g.Count, rev(g.Header.Revision))
		case r.Put() != nil:
			p := r.Put()
			return fmt.Sprintf("prev=%s rev=%s", kv(p.PrevKv), rev(p.Header.Revision))
		case r.Del() != nil:
			d := r.Del()
			return fmt.Sprintf("deleted=%d prev=%s rev=%s", d.Deleted, kvs(d.PrevKvs), rev(d.Header.Revision))
		case r.Txn() != nil:
			return txnResp(r.Txn())
		}
		return "?"
	}
	do := func(name string, op clientv3.Op) {
		r, err := cli.Do(ctx, op)
		if err != nil {
			out = append(out, name+": "+fail(err))
			return
		}
		out = append(out, name+": "+opResp(&r))
	}
	txn := func(name string, cmps []clientv3.Cmp, then, els []clientv3.Op) {
		r, err := cli.Txn(ctx).If(cmps...).Then(then...).Else(els...).Commit()
		if err != nil {
			out = append(out, name+": "+fail(err))
			return
		}
		out = append(out, name+": "+txnResp(r))
	}

	// Puts, prev_kv, ignore_value.
	do("put a", clientv3.OpPut("a", "1", clientv3.WithPrevKV()))
	do("put a again", clientv3.OpPut("a", "2", clientv3.WithPrevKV()))
	for _, k := range []string{"app/x", "app/y", "app/z", "apple", "b"} {
		do("put "+k, clientv3.OpPut(k, "v-"+k))
	}
	do("put ignore_value of a missing key", clientv3.OpPut("nokey", "", clientv3.WithIgnoreValue()))
	do("put with an unknown lease", clientv3.OpPut("c", "1", clientv3.WithLease(12345)))

	// Ranges.
	do("get a", clientv3.OpGet("a"))
	do("get missing", clientv3.OpGet("nokey"))
	do("get prefix", clientv3.OpGet("app/", clientv3.WithPrefix()))
	do("get prefix keys-only", clientv3.OpGet("app/", clientv3.WithPrefix(), clientv3.WithKeysOnly()))
	do("get prefix count-only", clientv3.OpGet("app/", clientv3.WithPrefix(), clientv3.WithCountOnly()))
	do("get prefix limit", clientv3.OpGet("app/", clientv3.WithPrefix(), clientv3.WithLimit(2)))
	do("get prefix sorted desc", clientv3.OpGet("app/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)))
	do("get prefix by mod rev", clientv3.OpGet("app", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend)))
	do("get prefix by value", clientv3.OpGet("app/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortAscend)))
	do("get prefix sorted, limit", clientv3.OpGet("app/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1)))
	do("get range", clientv3.OpGet("app/x", clientv3.WithRange("app/z")))
	do("get from key", clientv3.OpGet("app/y", clientv3.WithFromKey()))
	do("get all", clientv3.OpGet("", clientv3.WithPrefix()))
	do("get min mod rev", clientv3.OpGet("", clientv3.WithPrefix(), clientv3.WithMinModRev(base+5)))
	do("get max create rev", clientv3.OpGet("", clientv3.WithPrefix(), clientv3.WithMaxCreateRev(base+3)))
	do("get a at its first revision", clientv3.OpGet("a", clientv3.WithRev(base+1)))
	do("get prefix at a revision", clientv3.OpGet("app/", clientv3.WithPrefix(), clientv3.WithRev(base+4)))
	do("get serializable", clientv3.OpGet("a", clientv3.WithSerializable()))
	do("get a future revision", clientv3.OpGet("a", clientv3.WithRev(base+1000)))

	// Deletes.
	do("delete a missing key", clientv3.OpDelete("nokey"))
	do("get after deleting nothing", clientv3.OpGet("a"))
	do("delete app/x", clientv3.OpDelete("app/x", clientv3.WithPrevKV()))
	do("delete prefix", clientv3.OpDelete("app/", clientv3.WithPrefix(), clientv3.WithPrevKV()))
	do("delete range", clientv3.OpDelete("apple", clientv3.WithRange("b\x00")))
	do("get all after the deletes", clientv3.OpGet("", clientv3.WithPrefix()))
	do("put a deleted key again", clientv3.OpPut("b", "again", clientv3.WithPrevKV()))

	// Transactions.
	txn("cas that wins", []clientv3.Cmp{clientv3.Compare(clientv3.Value("a"), "=", "2")},
		[]clientv3.Op{clientv3.OpPut("a", "3", clientv3.WithPrevKV())}, []clientv3.Op{clientv3.OpGet("a")})
	txn("cas that loses", []clientv3.Cmp{clientv3.Compare(clientv3.Value("a"), "=", "2")},
		[]clientv3.Op{clientv3.OpPut("a", "4")}, []clientv3.Op{clientv3.OpGet("a")})
	txn("compares of version, create and mod revision",
		[]clientv3.Cmp{
			clientv3.Compare(clientv3.Version("a"), "=", 3),
			clientv3.Compare(clientv3.CreateRevision("a"), "=", base+1),
			clientv3.Compare(clientv3.ModRevision("a"), ">", base+1),
			clientv3.Compare(clientv3.Version("nokey"), "=", 0),
			clientv3.Compare(clientv3.CreateRevision("nokey"), "=", 0),
		},
		[]clientv3.Op{clientv3.OpPut("t1", "x"), clientv3.OpGet("a"), clientv3.OpDelete("b", clientv3.WithPrevKV())}, nil)
	txn("compare value less", []clientv3.Cmp{clientv3.Compare(clientv3.Value("a"), "<", "4")},
		[]clientv3.Op{clientv3.OpGet("t1")}, nil)
	txn("compare over a range", []clientv3.Cmp{clientv3.Compare(clientv3.Version("t").WithPrefix(), ">", 0)},
		[]clientv3.Op{clientv3.OpPut("t2", "y")}, []clientv3.Op{clientv3.OpGet("t", clientv3.WithPrefix())})
	txn("compare over a range that fails", []clientv3.Cmp{clientv3.Compare(clientv3.Value("t").WithPrefix(), "=", "x")},
		[]clientv3.Op{clientv3.OpPut("t3", "z")}, []clientv3.Op{clientv3.OpGet("t", clientv3.WithPrefix(), clientv3.WithKeysOnly())})
	txn("nested", nil,
		[]clientv3.Op{clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.Value("t1"), "=", "x")},
			[]clientv3.Op{clientv3.OpPut("n1", "1"), clientv3.OpGet("t1")},
			[]clientv3.Op{clientv3.OpPut("n2", "2")}),
			clientv3.OpPut("n3", "3")}, nil)
	txn("read-only", []clientv3.Cmp{clientv3.Compare(clientv3.Version("n1"), ">", 0)},
		[]clientv3.Op{clientv3.OpGet("n", clientv3.WithPrefix()), clientv3.OpGet("a")}, nil)
	txn("empty", nil, nil, nil)
	txn("a put and a delete of one key", nil, []clientv3.Op{clientv3.OpPut("d", "1"), clientv3.OpDelete("d")}, nil)
	txn("two puts of one key", nil, []clientv3.Op{clientv3.OpPut("d", "1"), clientv3.OpPut("d", "2")}, nil)
	txn("a range before and after a put", nil, []clientv3.Op{clientv3.OpGet("q", clientv3.WithPrefix()), clientv3.OpPut("q1", "1"),
		clientv3.OpGet("q", clientv3.WithPrefix()), clientv3.OpDelete("n3"), clientv3.OpGet("n", clientv3.WithPrefix())}, nil)
	do("put of an empty key", clientv3.OpPut("", "1"))
	do("get of an empty key", clientv3.OpGet(""))
	do("delete of an empty key", clientv3.OpDelete(""))
	do("get all at the end", clientv3.OpGet("", clientv3.WithPrefix()))

	// A watch of every key from the first write to the last: the whole
	// history, with each event's previous value.
	now, err := cli.Get(ctx, "a")
	if err != nil {
		return append(out, "watch: "+fail(err))
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := cli.Watch(wctx, "", clientv3.WithPrefix(), clientv3.WithRev(base+1), clientv3.WithPrevKV())
	for done := false; !done; {
		resp, ok := <-wch
		if !ok {
			return append(out, "watch: closed")
		}
		if err := resp.Err(); err != nil {
			return append(out, "watch: "+fail(err))
		}
		for _, ev := range resp.Events {
			out = append(out, fmt.Sprintf("watch: %s %s prev=%s", ev.Type, kv(ev.Kv), kv(ev.PrevKv)))
			done = ev.Kv.ModRevision >= now.Header.Revision
		}
	}

	// Last, as the revisions after it differ: a put that leaves its key as
	// it was.
	do("put of the same value", clientv3.OpPut("a", "3", clientv3.WithPrevKV()))
	do("put ignore_value", clientv3.OpPut("t1", "", clientv3.WithIgnoreValue(), clientv3.WithPrevKV()))
	do("get after puts of the same value", clientv3.OpGet("", clientv3.WithPrefix()))
	return out
}

// responseOp is one response of a txn, as a line.
func responseOp(rp *pb.ResponseOp, kvs func([]*mvccpb.KeyValue) string, rev func(int64) string) string {
	switch {
	case rp.GetResponseRange() != nil:
		g := rp.GetResponseRange()
		return fmt.Sprintf("{range kvs=%s more=%v count=%d}", kvs(g.Kvs), g.More, g.Count)
	case rp.GetResponsePut() != nil:
		p := rp.GetResponsePut()
		prev := "nil"
		if p.PrevKv != nil {
			prev = kvs([]*mvccpb.KeyValue{p.PrevKv})
		}
		return fmt.Sprintf("{put prev=%s}", prev)
	case rp.GetResponseDeleteRange() != nil:
		d := rp.GetResponseDeleteRange()
		return fmt.Sprintf("{delete deleted=%d prev=%s}", d.Deleted, kvs(d.PrevKvs))
	case rp.GetResponseTxn() != nil:
		x := rp.GetResponseTxn()
		s := fmt.Sprintf("{txn succeeded=%v", x.Succeeded)
		for _, in := range x.Responses {
			s += " " + responseOp(in, kvs, rev)
		}
		return s + "}"
	}
	return "{?}"
}

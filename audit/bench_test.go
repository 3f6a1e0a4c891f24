package audit

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCommitParallel measures durable commits (fsync'd, group
// commit) from 1, 16 and 64 concurrent writers of 200-byte values.
func BenchmarkCommitParallel(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := openTest(b)
			value := []byte(strings.Repeat("v", 200))
			var n atomic.Int64
			commit := func() error {
				i := n.Add(1)
				_, err := s.Commit(context.Background(), Txn{Actor: "bench", Ops: []Op{
					Put(fmt.Sprintf("bench/%d", i), value, ""),
				}})
				return err
			}
			b.ResetTimer()
			if writers == 1 {
				for i := 0; i < b.N; i++ {
					if err := commit(); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				// RunParallel starts parallelism × GOMAXPROCS goroutines.
				procs := runtime.GOMAXPROCS(0)
				b.SetParallelism((writers + procs - 1) / procs)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := commit(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
		})
	}
}

// BenchmarkCommitManyKeys measures the writer's work per changed key: one
// revision that changes 100 existing keys (200-byte values), so that the
// fsync is shared by many keys.
func BenchmarkCommitManyKeys(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	ops := make([]Op, 100)
	commit := func(i int) {
		for k := range ops {
			ops[k] = Put(fmt.Sprintf("bench/%d", k), []byte(fmt.Sprintf("%d-%s", i, strings.Repeat("v", 190))), "")
		}
		if _, err := s.Commit(ctx, Txn{Actor: "bench", Ops: ops}); err != nil {
			b.Fatal(err)
		}
	}
	commit(-1)
	b.ResetTimer()
	for i := range b.N {
		commit(i)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(ops)), "µs/key")
}

// BenchmarkOpen measures Open of a database of 100,000 keys (100-byte
// values, one revision per 1,000): the state's check and the mirror.
func BenchmarkOpen(b *testing.B) {
	ctx := context.Background()
	s := openTest(b)
	value := []byte(strings.Repeat("v", 100))
	ops := make([]Op, 0, 1000)
	for i := range 100_000 {
		ops = append(ops, Put(fmt.Sprintf("app/%06d", i), value, ""))
		if len(ops) == cap(ops) {
			if _, err := s.Commit(ctx, Txn{Actor: "bench", Ops: ops}); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		s, err := Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}

// bulkLoad writes n revisions of key straight into the tables, in one
// transaction, to build a large history quickly.
func bulkLoad(tb testing.TB, s *Store, key string, n int) {
	tb.Helper()
	ctx := context.Background()
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	ts := time.Now().UnixNano()
	for rev := int64(1); rev <= int64(n); rev++ {
		if _, err := tx.Exec(qInsRev, rev, ts, "loader", "bulk", "api", 0, 1); err != nil {
			tb.Fatal(err)
		}
		var oldV any
		var oldT any
		var oldC, oldM, oldVer any
		if rev > 1 {
			oldV, oldT, oldC, oldM, oldVer = []byte(fmt.Sprint(rev-1)), TypeText, int64(1), rev-1, rev-1
		}
		if _, err := tx.Exec(qInsChange, rev, key, int(OpPut), oldV, oldT, oldC, oldM, oldVer,
			[]byte(fmt.Sprint(rev)), TypeText, int64(1), rev, 0); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := tx.Exec(qPutKV, key, []byte(fmt.Sprint(n)), TypeText, 1, n, n, 0); err != nil {
		tb.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	s.cur.Advance(nil, int64(n))
}

// The statements bulkLoad writes rows with.
const (
	qInsRev    = `INSERT INTO revisions (rev, ts, actor, reason, origin, rollback_to, num_changes) VALUES (?, ?, ?, ?, ?, ?, ?)`
	qInsChange = `INSERT INTO changes (rev, key, op, old_value, old_type, old_create_rev, old_mod_rev, old_version,
		new_value, new_type, new_create_rev, new_version, secret) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qPutKV = `INSERT INTO kv (key, value, content_type, create_rev, mod_rev, version, secret) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, content_type = excluded.content_type,
		create_rev = excluded.create_rev, mod_rev = excluded.mod_rev, version = excluded.version, secret = excluded.secret`
)

// BenchmarkHistoryFirstPage measures the first page (100 revisions) of the
// history of a key that has 100,000 revisions. Goal: < 5 ms.
func BenchmarkHistoryFirstPage(b *testing.B) {
	s := openTest(b)
	bulkLoad(b, s, "hot/key", 100_000)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := s.History(ctx, HistoryQuery{Scope: Scope{Key: "hot/key"}})
		if err != nil || len(p.Revisions) != 100 {
			b.Fatalf("%d revisions, %v", len(p.Revisions), err)
		}
	}
}

// BenchmarkGet measures a read of one current key.
func BenchmarkGet(b *testing.B) {
	s := openTest(b)
	put(b, s, "hot", "value")
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, "hot"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestBulkLoadedHistoryPagesCorrectly(t *testing.T) {
	s := openTest(t)
	bulkLoad(t, s, "hot/key", 1000)
	p, err := s.History(context.Background(), HistoryQuery{Scope: Scope{Key: "hot/key"}, Limit: 10, Before: 500})
	if err != nil || len(p.Revisions) != 10 || p.Revisions[0].Rev != 499 || p.Next != 490 {
		t.Fatalf("page = %d revs next %d err %v", len(p.Revisions), p.Next, err)
	}
	if v := get(t, s, "hot/key", AtRev(250)); v != "250" {
		t.Fatalf("hot/key@250 = %q", v)
	}
}

// BenchmarkCommitJournal compares the store's two durable commit paths at
// 1, 16 and 64 writers, each writing new keys spread like the compare
// harness's writers' (bench/cmd/compare): journal=on, a batch's records
// fdatasync'd to the journal and its rows settled in SQLite every 100 ms
// (the default), and journal=off, one SQLite COMMIT (synchronous=FULL) per
// batch.
func BenchmarkCommitJournal(b *testing.B) {
	for _, on := range []bool{true, false} {
		for _, writers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("journal=%s/writers=%d", map[bool]string{true: "on", false: "off"}[on], writers), func(b *testing.B) {
				s := openTest(b, WithJournal(on))
				value := []byte(strings.Repeat("v", 200))
				var n atomic.Int64
				b.SetParallelism((writers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				if writers == 1 {
					b.SetParallelism(1)
				}
				b.RunParallel(func(pb *testing.PB) {
					g := n.Add(1)
					for i := 0; pb.Next(); i++ {
						if _, err := s.Commit(context.Background(), Txn{Actor: "bench", Ops: []Op{
							Put(fmt.Sprintf("bench/w/g%d/k%d", g, i), value, ""),
						}}); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			})
		}
	}
}

// BenchmarkCommitSchema measures one writer's commits of a JSON value in a
// store of 10,000 keys: with no schema, with a schema on another prefix
// (the write is checked by lookups alone), and with a schema on the
// written key's prefix over 10 and 1,000 keys (the view under the prefix
// is built and validated).
func BenchmarkCommitSchema(b *testing.B) {
	const schemaDoc = `{"properties": {"limits": {"properties": {"rps": {"type": "integer", "minimum": 1}}}}, "additionalProperties": {"type": "string"}}`
	for _, c := range []struct {
		name        string
		schemaOn    string // "" for no schema
		keysUnderIt int
	}{
		{"none", "", 10},
		{"uncovered", "other/", 10},
		{"covered/keys=10", "app/", 10},
		{"covered/keys=1000", "app/", 1000},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := openTest(b)
			ctx := context.Background()
			var ops []Op
			for i := range 10_000 {
				key := fmt.Sprintf("bulk/%05d", i)
				if i < c.keysUnderIt {
					key = fmt.Sprintf("app/k%05d", i)
				}
				ops = append(ops, Put(key, []byte("value"), ""))
			}
			if _, err := s.Commit(ctx, Txn{Ops: ops}); err != nil {
				b.Fatal(err)
			}
			if c.schemaOn != "" {
				if _, err := s.SetSchema(ctx, c.schemaOn, []byte(schemaDoc), SchemaChange{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := s.Commit(ctx, Txn{Ops: []Op{Put("app/limits", []byte(fmt.Sprintf(`{"rps": %d}`, i+1)), TypeJSON)}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

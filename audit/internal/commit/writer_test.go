package commit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/keyring"
	"github.com/configd/configd/audit/internal/layer"
	"github.com/configd/configd/audit/internal/read"
	"github.com/configd/configd/audit/record"
)

// memLog is a Log in memory, for the writer's side of the seam: it keeps
// the records of the batches it commits, and what it saw of the store
// when it committed them. The requests these tests send (puts and
// deletes of plain keys, no layers) never read the database.
type memLog struct {
	cur *read.Current
	// failNext fails the next batch's Commit.
	failNext error

	mu        sync.Mutex
	committed []Record
	// revAtCommit is cur.Rev() when each batch committed: the writer must
	// not have advanced it yet.
	revAtCommit []int64
	hooked      *[]int64 // the revisions the commit hook has seen
	hookedAt    []int    // len(*hooked) when each batch committed
}

func (l *memLog) Begin(context.Context) (Batch, error) { return &memBatch{l: l}, nil }

type memBatch struct {
	l    *memLog
	recs []Record
}

func (b *memBatch) Append(rec Record) { b.recs = append(b.recs, rec) }

func (b *memBatch) Flush(context.Context) error { return nil }

func (b *memBatch) Commit(context.Context) error {
	l := b.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failNext; err != nil {
		l.failNext = nil
		return err
	}
	l.committed = append(l.committed, b.recs...)
	l.revAtCommit = append(l.revAtCommit, l.cur.Rev())
	l.hookedAt = append(l.hookedAt, len(*l.hooked))
	return nil
}

func (b *memBatch) Abort() {}

func (b *memBatch) KV(context.Context, string) (*record.KeyValue, error) { return nil, nil }

func (b *memBatch) LayerRow(_ context.Context, layer, key string) (*record.LayerValue, error) {
	return nil, fmt.Errorf("memLog: no row of layer %s for %q", layer, key)
}

func (b *memBatch) LayerRows(context.Context, string) (map[string]*record.LayerValue, error) {
	return map[string]*record.LayerValue{}, nil
}

func (b *memBatch) QueryContext(context.Context, string, ...any) (*sql.Rows, error) {
	return nil, errors.New("memLog: no database")
}

func (b *memBatch) QueryRowContext(context.Context, string, ...any) *sql.Row {
	panic("memLog: no database")
}

// startMem starts a writer of an empty store on a memLog.
func startMem(t *testing.T) (*Writer, *memLog, *read.Current) {
	t.Helper()
	order, err := layer.New([]string{record.StoreLayer})
	if err != nil {
		t.Fatal(err)
	}
	cur := read.NewCurrent(nil, 0)
	var hooked []int64
	log := &memLog{cur: cur, hooked: &hooked}
	w := Start(Config{
		Log: log, Current: cur, Head: chain.NewHead(nil, chain.LtHash{}), Keys: keyring.New(nil),
		Layers: order, MaxValueSize: 1 << 20, MaxBatch: 16, Now: time.Now,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnCommit: []func(record.Revision){func(r record.Revision) { hooked = append(hooked, r.Rev) }},
	})
	t.Cleanup(func() { w.Close() })
	return w, log, cur
}

func put(key, value string) record.Txn {
	return record.Txn{Actor: "t", Ops: []record.Op{record.Put(key, []byte(value), "")}}
}

// The writer advances (the in-memory state, the hooks, the caller) only
// once the Log has made the batch durable: when the Log commits, nothing
// of the batch is visible yet.
func TestTheWriterAdvancesOnlyAfterTheLogCommits(t *testing.T) {
	w, log, cur := startMem(t)
	ctx := context.Background()
	for i := range 3 {
		r, err := w.Commit(ctx, put(fmt.Sprintf("k/%d", i), "v"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Rev != int64(i+1) || cur.Rev() != r.Rev || cur.Get(fmt.Sprintf("k/%d", i)) == nil {
			t.Fatalf("commit %d: revision %d, current %d", i, r.Rev, cur.Rev())
		}
	}
	if !slices.Equal(log.revAtCommit, []int64{0, 1, 2}) || !slices.Equal(log.hookedAt, []int{0, 1, 2}) {
		t.Fatalf("when the log committed: current revisions %v, hooks called %v; want 0 1 2 both", log.revAtCommit, log.hookedAt)
	}
	if !slices.Equal(*log.hooked, []int64{1, 2, 3}) {
		t.Fatalf("hooks saw %v", *log.hooked)
	}
}

// A batch the Log fails advances nothing: not the revision, not the state,
// not the chain, not the hooks; the next revision takes its number and
// follows the chain as if it had never been.
func TestABatchTheLogFailsAdvancesNothing(t *testing.T) {
	w, log, cur := startMem(t)
	ctx := context.Background()
	if _, err := w.Commit(ctx, put("a", "1")); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("the log is unavailable")
	log.failNext = failed
	if _, err := w.Commit(ctx, put("b", "2")); !errors.Is(err, failed) {
		t.Fatalf("commit on a failing log: %v", err)
	}
	if cur.Rev() != 1 || cur.Get("b") != nil || !slices.Equal(*log.hooked, []int64{1}) {
		t.Fatalf("after the failure: current %d, b = %v, hooks %v", cur.Rev(), cur.Get("b"), *log.hooked)
	}
	r, err := w.Commit(ctx, put("c", "3"))
	if err != nil || r.Rev != 2 {
		t.Fatalf("the next commit: %+v, %v; want revision 2", r, err)
	}
	// The records chain as a store that never saw the failed batch.
	recs := log.committed
	if len(recs) != 2 || recs[0].Rev.Rev != 1 || recs[1].Rev.Rev != 2 {
		t.Fatalf("committed records %+v", recs)
	}
	head := chain.NewHead(nil, chain.LtHash{})
	head.Begin()
	for _, rec := range recs {
		hash, state := head.Add(&rec.Rev, []*record.KeyValue{nil}, []*record.LayerValue{nil})
		if !bytes.Equal(hash, rec.Hash) || !bytes.Equal(state, rec.State) {
			t.Fatalf("revision %d does not follow the chain of the revisions committed before it", rec.Rev.Rev)
		}
	}
}

// A batch that lost the log's head waits nothing after its first loss,
// then a random while under a bound that doubles from 1 ms up to 32 ms.
func TestLostRaceWaitGrowsToItsBound(t *testing.T) {
	if d := lostRaceWait(1); d != 0 {
		t.Fatalf("after the first loss: %v; want no wait", d)
	}
	for n := 2; n <= maxAttempts; n++ {
		bound := min(time.Millisecond<<min(n-2, 5), 32*time.Millisecond)
		for range 100 {
			if d := lostRaceWait(n); d < 0 || d >= bound {
				t.Fatalf("after %d losses: %v; want in [0, %v)", n, d, bound)
			}
		}
	}
}

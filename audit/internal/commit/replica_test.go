package commit

import (
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

// sharedLog is a replicated log in memory: the records every replica
// appended, in order. A replica's batch commits only if the log's head is
// still the revision the replica had applied when the batch began.
type sharedLog struct {
	mu   sync.Mutex
	recs []Record
}

// replicaLog is one replica's view of a sharedLog: its state is its
// Current (the requests of these tests never read the database).
type replicaLog struct {
	shared *sharedLog
	cur    *read.Current
	begins int // batches begun, apply batches included
}

func (l *replicaLog) Begin(context.Context) (Batch, error) {
	l.begins++
	return &replicaBatch{l: l, base: l.cur.Rev(), shared: true}, nil
}

func (l *replicaLog) BeginApply(context.Context) (Batch, error) {
	l.begins++
	return &replicaBatch{l: l}, nil
}

func (l *replicaLog) After(_ context.Context, rev int64) ([]Record, error) {
	l.shared.mu.Lock()
	defer l.shared.mu.Unlock()
	return slices.Clone(l.shared.recs[rev:]), nil
}

type replicaBatch struct {
	l      *replicaLog
	base   int64 // the revision the batch was decided on
	shared bool  // Commit appends to the shared log
	recs   []Record
}

func (b *replicaBatch) Append(rec Record) { b.recs = append(b.recs, rec) }

func (b *replicaBatch) Flush(context.Context) error { return nil }

func (b *replicaBatch) Commit(context.Context) error {
	if !b.shared {
		return nil
	}
	s := b.l.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	if int64(len(s.recs)) != b.base {
		return ErrHeadMoved
	}
	s.recs = append(s.recs, b.recs...)
	return nil
}

func (b *replicaBatch) Abort() {}

func (b *replicaBatch) KV(_ context.Context, key string) (*record.KeyValue, error) {
	for i := len(b.recs) - 1; i >= 0; i-- {
		for _, c := range b.recs[i].Rev.Changes {
			if c.Key == key {
				return c.New, nil
			}
		}
	}
	return b.l.cur.Get(key), nil
}

func (b *replicaBatch) LayerRow(_ context.Context, layer, key string) (*record.LayerValue, error) {
	if layer == record.StoreLayer {
		if kv, _ := b.KV(context.Background(), key); kv != nil {
			return &record.LayerValue{Value: kv.Value, ContentType: kv.ContentType}, nil
		}
	}
	return nil, fmt.Errorf("no row of layer %s for %q", layer, key)
}

func (b *replicaBatch) LayerRows(context.Context, string) (map[string]*record.LayerValue, error) {
	return map[string]*record.LayerValue{}, nil
}

func (b *replicaBatch) QueryContext(context.Context, string, ...any) (*sql.Rows, error) {
	return nil, errors.New("replicaLog: no database")
}

func (b *replicaBatch) QueryRowContext(context.Context, string, ...any) *sql.Row {
	panic("replicaLog: no database")
}

// startReplica starts the writer of a replica of shared, empty.
func startReplica(t *testing.T, shared *sharedLog) (*Writer, *replicaLog, *[]int64) {
	t.Helper()
	order, err := layer.New([]string{record.StoreLayer})
	if err != nil {
		t.Fatal(err)
	}
	cur := read.NewCurrent(nil, 0)
	log := &replicaLog{shared: shared, cur: cur}
	hooked := new([]int64)
	w := Start(Config{
		Log: log, Current: cur, Head: chain.NewHead(nil, chain.LtHash{}), Keys: keyring.New(nil),
		Layers: order, MaxValueSize: 1 << 20, MaxBatch: 16, Now: time.Now,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnCommit: []func(record.Revision){func(r record.Revision) { *hooked = append(*hooked, r.Rev) }},
	})
	t.Cleanup(func() { w.Close() })
	return w, log, hooked
}

// A replica whose batch loses the race for the log's head applies what it
// missed, in order, and decides the batch again on the new state: the
// revision numbers follow one another across replicas, and a
// compare-and-set decided on the stale state gets the answer of the new
// one.
func TestALostRaceCatchesUpAndDecidesAgain(t *testing.T) {
	shared := &sharedLog{}
	a, _, _ := startReplica(t, shared)
	b, bLog, bHooked := startReplica(t, shared)
	ctx := context.Background()
	if r, err := a.Commit(ctx, put("k", "a1")); err != nil || r.Rev != 1 {
		t.Fatalf("a: %+v, %v", r, err)
	}
	if r, err := a.Commit(ctx, put("j", "a2")); err != nil || r.Rev != 2 {
		t.Fatalf("a: %+v, %v", r, err)
	}
	// b has applied nothing: its first try is decided on revision 0.
	r, err := b.Commit(ctx, put("k", "b3"))
	if err != nil || r.Rev != 3 || r.Changes[0].Old == nil || string(r.Changes[0].Old.Value) != "a1" {
		t.Fatalf("b: %+v, %v; want revision 3 replacing a1", r, err)
	}
	if bLog.cur.Rev() != 3 || !slices.Equal(*bHooked, []int64{1, 2, 3}) {
		t.Fatalf("b: current %d, hooks %v; want 3 and 1 2 3", bLog.cur.Rev(), *bHooked)
	}
	// a's compare-and-set on its stale view (k at revision 1) must see b's
	// write.
	mod := int64(1)
	_, err = a.Commit(ctx, record.Txn{Actor: "t", Ops: []record.Op{{Type: record.OpPut, Key: "k", Value: []byte("a4"), IfModRev: &mod}}})
	var ce *record.ConflictError
	if !errors.As(err, &ce) || ce.Actual != 3 {
		t.Fatalf("a's stale compare-and-set: %v; want a conflict with mod_rev 3", err)
	}
	// Every replica holds the same chain: b applied a's records as they are.
	a.Close()
	b.Close()
	if got := len(shared.recs); got != 3 {
		t.Fatalf("the log holds %d records, want 3", got)
	}
}

// A record whose content was changed after it was chained is refused:
// nothing of it is applied, and the writer refuses from then on.
func TestApplyRefusesATamperedRecord(t *testing.T) {
	shared := &sharedLog{}
	a, _, _ := startReplica(t, shared)
	b, bLog, bHooked := startReplica(t, shared)
	ctx := context.Background()
	for i := range 2 {
		if _, err := a.Commit(ctx, put(fmt.Sprintf("k/%d", i), "v")); err != nil {
			t.Fatal(err)
		}
	}
	recs, _ := bLog.After(ctx, 0)
	recs[1].Rev.Changes = slices.Clone(recs[1].Rev.Changes)
	recs[1].Rev.Changes[0].New = &record.KeyValue{Key: "k/1", Value: []byte("forged"), ContentType: "text/plain",
		CreateRev: 2, ModRev: 2, Version: 1}
	if err := b.Apply(ctx, recs); !errors.Is(err, ErrDiverged) {
		t.Fatalf("apply of a tampered record: %v; want ErrDiverged", err)
	}
	if bLog.cur.Rev() != 0 || len(*bHooked) != 0 {
		t.Fatalf("after the refusal: current %d, hooks %v; want nothing applied", bLog.cur.Rev(), *bHooked)
	}
	if _, err := b.Commit(ctx, put("x", "y")); !errors.Is(err, ErrDiverged) {
		t.Fatalf("a commit on the diverged replica: %v; want ErrDiverged", err)
	}
	// The true records apply on a fresh replica.
	c, cLog, _ := startReplica(t, shared)
	good, _ := cLog.After(ctx, 0)
	if err := c.Apply(ctx, good); err != nil || cLog.cur.Rev() != 2 {
		t.Fatalf("apply of the true records: %v, current %d", err, cLog.cur.Rev())
	}
	if err := c.Apply(ctx, good[1:]); err != nil {
		t.Fatalf("records applied already are skipped: %v", err)
	}
	if err := c.Apply(ctx, []Record{{Rev: record.Revision{Rev: 4}}}); !errors.Is(err, ErrGap) {
		t.Fatalf("a record after a gap: %v; want ErrGap", err)
	}
}

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
	// epoch is the token epoch, which a batch that fences it compares;
	// commits counts the batches it took.
	epoch, commits int64
	// contended: another replica always commits first (every commit finds
	// the head moved); refused counts those refusals.
	contended bool
	refused   int
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
	epoch  *int64 // the token epoch the batch compares, if any
}

func (b *replicaBatch) Append(rec Record) { b.recs = append(b.recs, rec) }

func (b *replicaBatch) FenceTokens(epoch int64) { b.epoch = &epoch }

func (b *replicaBatch) Flush(context.Context) error { return nil }

func (b *replicaBatch) Commit(context.Context) error {
	if !b.shared {
		return nil
	}
	s := b.l.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.contended {
		s.refused++
		return ErrHeadMoved
	}
	if int64(len(s.recs)) != b.base {
		return ErrHeadMoved
	}
	if b.epoch != nil && *b.epoch != s.epoch {
		return &TokensMovedError{Epoch: s.epoch}
	}
	s.recs = append(s.recs, b.recs...)
	s.commits++
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
		RefreshTokens: func(context.Context) (int64, error) {
			shared.mu.Lock()
			defer shared.mu.Unlock()
			return shared.epoch, nil
		},
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

// A batch that loses the race for the log's head every time gives up after
// maxAttempts with ErrContended (a retryable refusal, not an internal
// error), having written nothing; the replica then commits again.
func TestABatchThatAlwaysLosesTheRaceIsContended(t *testing.T) {
	shared := &sharedLog{contended: true}
	w, wLog, hooked := startReplica(t, shared)
	ctx := context.Background()
	_, err := w.Commit(ctx, put("k", "v"))
	if !errors.Is(err, record.ErrContended) || !errors.Is(err, ErrHeadMoved) {
		t.Fatalf("a batch that always loses: %v; want ErrContended wrapping ErrHeadMoved", err)
	}
	shared.mu.Lock()
	refused := shared.refused
	shared.contended = false
	shared.mu.Unlock()
	if refused != maxAttempts || len(shared.recs) != 0 || wLog.cur.Rev() != 0 || len(*hooked) != 0 {
		t.Fatalf("after giving up: %d attempts, %d records, current %d, hooks %v; want %d attempts and nothing written",
			refused, len(shared.recs), wLog.cur.Rev(), *hooked, maxAttempts)
	}
	if r, err := w.Commit(ctx, put("k", "v2")); err != nil || r.Rev != 1 {
		t.Fatalf("once the race is won: %+v, %v; want revision 1", r, err)
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

// rights is a write's record.Authorization: allowed at epoch, and again,
// at the newest epoch now(), unless refused.
type rights struct {
	epoch   int64
	now     func() int64
	refused error
	asked   *int
}

func (r rights) TokenEpoch() int64 { return r.epoch }

func (r rights) Reauthorize([]string) (int64, error) {
	*r.asked++
	return r.now(), r.refused
}

// Writes allowed by tokens at different token epochs, in one batch: those
// allowed at an older epoch than the newest of the batch are allowed
// again before the batch is decided (one refused), and the batch compares
// the newest; when the log's epoch moved past it, the writer reads the
// tokens again, allows every write again and decides the batch again. A
// write without a token is decided with them; no revision is skipped.
func TestWritesAllowedByTokensStandOnTheNewestTokenEpoch(t *testing.T) {
	shared := &sharedLog{epoch: 2}
	w, _, _ := startReplica(t, shared)
	ctx := context.Background()
	authEpoch := int64(2) // the epoch of the tokens the server allows writes by
	now := func() int64 { return authEpoch }
	var asked int
	hold := func() chan struct{} {
		release, started := make(chan struct{}), make(chan struct{})
		go w.Alone(ctx, func(context.Context) error {
			close(started)
			<-release
			return nil
		})
		<-started
		return release
	}
	queue := func(a record.Authorization, key string) Pending {
		t.Helper()
		ctx := ctx
		if a != nil {
			ctx = record.WithAuthorization(ctx, a)
		}
		p, err := w.QueueCommit(ctx, put(key, "v"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	errRevoked := errors.New("revoked")

	release := hold()
	older := queue(rights{epoch: 1, now: now, refused: errRevoked, asked: &asked}, "a")
	newer := queue(rights{epoch: 2, now: now, asked: &asked}, "b")
	none := queue(nil, "c")
	close(release)
	if _, err := older.Wait(); !errors.Is(err, errRevoked) {
		t.Fatalf("a write allowed at an older epoch, no longer allowed: %v; want its refusal", err)
	}
	if r, err := newer.Wait(); err != nil || r.Rev != 1 {
		t.Fatalf("a write allowed at the newest epoch: rev %d, %v; want 1", r.Rev, err)
	}
	if r, err := none.Wait(); err != nil || r.Rev != 2 {
		t.Fatalf("a write without a token: rev %d, %v; want 2", r.Rev, err)
	}
	if asked != 1 || shared.commits != 1 {
		t.Fatalf("allowed again %d times, %d commits; want the older write alone allowed again, one commit", asked, shared.commits)
	}

	// A token changed on another replica: the log's epoch moved past
	// what the server allowed the writes at.
	shared.mu.Lock()
	shared.epoch = 3
	shared.mu.Unlock()
	authEpoch, asked = 3, 0
	release = hold()
	stale := queue(rights{epoch: 2, now: now, refused: errRevoked, asked: &asked}, "d")
	fine := queue(rights{epoch: 2, now: now, asked: &asked}, "e")
	close(release)
	if _, err := stale.Wait(); !errors.Is(err, errRevoked) {
		t.Fatalf("a write whose token changed elsewhere: %v; want its refusal", err)
	}
	if r, err := fine.Wait(); err != nil || r.Rev != 3 {
		t.Fatalf("a write its token still allows: rev %d, %v; want 3", r.Rev, err)
	}
	if asked != 2 || shared.commits != 2 {
		t.Fatalf("allowed again %d times, %d commits; want both writes allowed again, one more commit", asked, shared.commits)
	}
}

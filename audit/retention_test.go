package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// withCompactBatch makes compaction steps small, so that a test sees
// several of them.
func withCompactBatch(n int) Option { return func(o *options) { o.compactBatch = n } }

// noLoop turns the background compaction off: the test compacts.
var noLoop = WithCompactInterval(-1)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func compact(t *testing.T, s *Store) CompactResult {
	t.Helper()
	res, err := s.Compact(context.Background())
	if err != nil {
		t.Fatalf("Compact: %v", err)
	}
	return res
}

func wantGone(t *testing.T, what string, err error, horizon int64) {
	t.Helper()
	if !errors.Is(err, ErrRevisionGone) || !strings.Contains(err.Error(), fmt.Sprintf("history horizon %d", horizon)) {
		t.Fatalf("%s: err = %v, want ErrRevisionGone naming the horizon %d", what, err, horizon)
	}
}

// retentionHistory commits eight revisions:
//
//	1 a=1   2 c=keep   3 b=x   4 a=2   5 delete b   6 a=3   7 d=1   8 a=4
func retentionHistory(t *testing.T, s *Store) {
	t.Helper()
	put(t, s, "a", "1")
	put(t, s, "c", "keep")
	put(t, s, "b", "x")
	put(t, s, "a", "2")
	del(t, s, "b")
	put(t, s, "a", "3")
	put(t, s, "d", "1")
	put(t, s, "a", "4")
}

func TestCompactByCountKeepsTheNewestRevisionsAndTheStateFromTheHorizon(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, WithRetention(3, 0), noLoop, withCompactBatch(2))
	retentionHistory(t, s)
	if s.Horizon() != 0 {
		t.Fatalf("horizon before any compaction = %d", s.Horizon())
	}
	res := compact(t, s)
	if res.From != 0 || res.Horizon != 6 || res.Revisions != 5 || res.Rows < 10 || res.ID == 0 || s.Horizon() != 6 {
		t.Fatalf("compact = %+v, horizon %d; want revisions 1..5 removed", res, s.Horizon())
	}
	cs, err := s.Compactions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Three steps of at most two revisions, one record.
	if len(cs) != 1 || cs[0].ID != res.ID || cs[0].From != 0 || cs[0].UpTo != 5 || cs[0].Horizon != 6 ||
		cs[0].Revisions != 5 || cs[0].Rows != res.Rows || cs[0].KeepRevisions != 3 || cs[0].KeepAge != 0 || cs[0].Time.IsZero() {
		t.Fatalf("compactions = %+v, result %+v", cs, res)
	}
	if again := compact(t, s); again.Revisions != 0 || again.Horizon != 6 || again.ID != 0 {
		t.Fatalf("second compact = %+v, want nothing to do", again)
	}
	if cs, _ := s.Compactions(ctx); len(cs) != 1 {
		t.Fatalf("a compaction that removed nothing was recorded: %+v", cs)
	}

	// The current state is whole, including c, set at revision 2.
	if get(t, s, "a") != "4" || get(t, s, "c") != "keep" || get(t, s, "d") != "1" {
		t.Fatal("current values lost")
	}
	if _, err := s.Get(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b: %v", err)
	}
	// The state at the horizon and after is readable.
	kv, err := s.Get(ctx, "c", AtRev(6))
	if err != nil || string(kv.Value) != "keep" || kv.ModRev != 2 || kv.CreateRev != 2 || kv.Version != 1 {
		t.Fatalf("c at 6 = %+v, %v", kv, err)
	}
	if get(t, s, "a", AtRev(6)) != "3" || get(t, s, "a", AtRev(7)) != "3" || get(t, s, "d", AtRev(7)) != "1" {
		t.Fatal("values at retained revisions")
	}
	if _, err := s.Get(ctx, "d", AtRev(6)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("d at 6: %v", err)
	}
	kvs, at, err := s.List(ctx, "", AtRev(6))
	if err != nil || at != 6 || len(kvs) != 2 || kvs[0].Key != "a" || string(kvs[0].Value) != "3" || kvs[0].ModRev != 6 ||
		kvs[0].Version != 3 || kvs[1].Key != "c" || kvs[1].ModRev != 2 {
		t.Fatalf("list at 6 = %+v, %d, %v", kvs, at, err)
	}
	changes, err := s.Diff(ctx, Scope{}, 6, 0)
	if err != nil || len(changes) != 2 || changes[0].Key != "a" || string(changes[0].Old.Value) != "3" ||
		string(changes[0].New.Value) != "4" || changes[1].Key != "d" || changes[1].Old != nil {
		t.Fatalf("diff 6..8 = %+v, %v", changes, err)
	}
	after, err := s.RevisionsAfter(ctx, 6, 0)
	if err != nil || len(after) != 2 || after[0].Rev != 7 || after[1].Rev != 8 {
		t.Fatalf("revisions after 6 = %+v, %v", after, err)
	}
	page, err := s.History(ctx, HistoryQuery{})
	if err != nil || len(page.Revisions) != 3 || page.Revisions[2].Rev != 6 || page.Next != 0 || page.Horizon != 6 {
		t.Fatalf("history = %+v, %v", page, err)
	}
	page, err = s.History(ctx, HistoryQuery{Scope: Scope{Key: "a"}, Limit: 1})
	if err != nil || len(page.Revisions) != 1 || page.Revisions[0].Rev != 8 || page.Next != 8 {
		t.Fatalf("history of a = %+v, %v", page, err)
	}
	if page, err = s.History(ctx, HistoryQuery{Scope: Scope{Key: "a"}, Before: page.Next}); err != nil ||
		len(page.Revisions) != 1 || page.Revisions[0].Rev != 6 || page.Next != 0 {
		t.Fatalf("history of a, second page = %+v, %v", page, err)
	}
	if r, err := s.Revision(ctx, 6); err != nil || r.Rev != 6 || len(r.Changes) != 1 {
		t.Fatalf("revision 6 = %+v, %v", r, err)
	}

	// Below the horizon: gone, naming it.
	_, err = s.Get(ctx, "a", AtRev(5))
	wantGone(t, "get at 5", err, 6)
	_, _, err = s.List(ctx, "", AtRev(1))
	wantGone(t, "list at 1", err, 6)
	_, err = s.Revision(ctx, 5)
	wantGone(t, "revision 5", err, 6)
	_, err = s.Diff(ctx, Scope{}, 5, 8)
	wantGone(t, "diff from 5", err, 6)
	_, err = s.Diff(ctx, Scope{}, 0, 0)
	wantGone(t, "diff from 0", err, 6)
	_, err = s.RevisionsAfter(ctx, 5, 0)
	wantGone(t, "revisions after 5", err, 6)
	_, err = s.RevisionsAfter(ctx, 0, 0)
	wantGone(t, "revisions after 0", err, 6)
	_, err = s.History(ctx, HistoryQuery{Before: 6})
	wantGone(t, "history before 6", err, 6)
	_, err = s.Rollback(ctx, RollbackRequest{To: 5, Actor: "alice"})
	wantGone(t, "rollback to 5", err, 6)
	_, err = s.Rollback(ctx, RollbackRequest{To: 5, Actor: "alice", DryRun: true})
	wantGone(t, "rollback to 5, dry run", err, 6)

	// A rollback to the horizon works, and the store goes on.
	r, err := s.Rollback(ctx, RollbackRequest{To: 6, Actor: "alice"})
	if err != nil || r.Rev != 9 || get(t, s, "a") != "3" || get(t, s, "c") != "keep" {
		t.Fatalf("rollback to 6 = %+v, %v", r, err)
	}
	if _, err := s.Get(ctx, "d"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("d after the rollback: %v", err)
	}
	if res := verify(t, s); !res.OK || res.Horizon != 6 || res.Revisions != 4 || res.Head != 9 {
		t.Fatalf("verify = %+v", res)
	}
}

func TestCompactByAgeAndCountKeepsWhicheverIsMore(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &testClock{t: t0}
	path := filepath.Join(t.TempDir(), "configd.db")
	open := func(opts ...Option) *Store {
		t.Helper()
		s, err := Open(ctx, path, append([]Option{WithClock(clock.now), noLoop}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	put(t, s, "a", "1") // 1, at t0
	put(t, s, "b", "1") // 2
	put(t, s, "a", "2") // 3
	clock.set(t0.Add(time.Hour))
	put(t, s, "a", "3") // 4, at t0+1h
	put(t, s, "b", "2") // 5
	clock.set(t0.Add(2 * time.Hour))
	put(t, s, "c", "1") // 6, at t0+2h
	if r, _ := s.Revision(ctx, 4); !r.Time.Equal(t0.Add(time.Hour)) {
		t.Fatalf("revision 4 was committed at %v, want the clock's time", r.Time)
	}
	if res := compact(t, s); res.Revisions != 0 {
		t.Fatalf("compact without retention = %+v", res)
	}
	s.Close()

	// 90 minutes keeps 4..6, 5 revisions keeps 2..6: the count wins.
	s = open(WithRetention(5, 90*time.Minute))
	if res := compact(t, s); res.Horizon != 2 || res.Revisions != 1 {
		t.Fatalf("compact (5 revisions, 90m) = %+v", res)
	}
	s.Close()

	// The horizon survives a restart; with age alone, 4..6 stay.
	s = open(WithRetention(0, 90*time.Minute))
	if s.Horizon() != 2 {
		t.Fatalf("horizon after reopening = %d, want 2", s.Horizon())
	}
	if res := compact(t, s); res.From != 2 || res.Horizon != 4 || res.Revisions != 2 {
		t.Fatalf("compact (90m) = %+v", res)
	}
	if get(t, s, "b", AtRev(4)) != "1" || get(t, s, "a", AtRev(4)) != "3" {
		t.Fatal("state at the horizon")
	}
	_, err := s.Get(ctx, "a", AtRev(3))
	wantGone(t, "get at 3", err, 4)
	// Time passes: everything is old, but the newest revision stays.
	clock.set(t0.Add(1000 * time.Hour))
	if res := compact(t, s); res.Horizon != 6 || res.Revisions != 2 {
		t.Fatalf("compact (all old) = %+v", res)
	}
	s.Close()

	s = open()
	defer s.Close()
	if s.Rev() != 6 || s.Horizon() != 6 {
		t.Fatalf("after reopening: rev %d, horizon %d", s.Rev(), s.Horizon())
	}
	if get(t, s, "a") != "3" || get(t, s, "b") != "2" || get(t, s, "c") != "1" {
		t.Fatal("current values lost")
	}
	if r := put(t, s, "d", "1"); r.Rev != 7 {
		t.Fatalf("next revision = %d, want 7", r.Rev)
	}
	cs, err := s.Compactions(ctx)
	if err != nil || len(cs) != 3 || cs[0].Horizon != 6 || cs[1].Horizon != 4 || cs[1].KeepAge != 90*time.Minute ||
		cs[2].Horizon != 2 || cs[2].KeepRevisions != 5 || !cs[0].Time.Equal(t0.Add(1000*time.Hour)) {
		t.Fatalf("compactions = %+v, %v", cs, err)
	}
	if res := verify(t, s); !res.OK || res.Horizon != 6 || res.Revisions != 2 {
		t.Fatalf("verify = %+v", res)
	}
}

// compactedHistory is the chain tests' history (with layer changes) and
// four more revisions, compacted to keep the newest five: the horizon is 6.
func compactedHistory(t *testing.T) *Store {
	t.Helper()
	s := openTest(t, WithLayers("file", StoreLayer), WithRetention(5, 0), noLoop, withCompactBatch(2))
	history(t, s)
	put(t, s, "app/a", "7")
	put(t, s, "app/e", "8")
	applySource(t, s, "file", "app/d", "from file, again")
	put(t, s, "app/a", "10")
	if res := compact(t, s); res.Horizon != 6 {
		t.Fatalf("compact = %+v", res)
	}
	if get(t, s, "app/b", AtRev(6)) != "2" || get(t, s, "app/b") != "2" {
		t.Fatal("app/b, unchanged since revision 5, lost its value")
	}
	if res := verify(t, s); !res.OK || res.Horizon != 6 || res.Revisions != 5 || res.Head != 10 {
		t.Fatalf("verify after compaction = %+v", res)
	}
	return s
}

func TestVerifyAfterCompactionStillCatchesTampering(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stmts   []string
		broken  int64
		problem string
	}{
		{"a middle revision deleted", []string{`DELETE FROM changes WHERE rev = 8`, `DELETE FROM layer_changes WHERE rev = 8`,
			`DELETE FROM revisions WHERE rev = 8`}, 8, "revision 8 is missing"},
		{"the first kept revision deleted", []string{`DELETE FROM changes WHERE rev = 6`, `DELETE FROM layer_changes WHERE rev = 6`,
			`DELETE FROM revisions WHERE rev = 6`}, 6, "revision 6 is missing"},
		{"a kept revision edited", []string{`UPDATE revisions SET actor = 'mallory' WHERE rev = 7`}, 7, "revision 7 does not match"},
		{"the first kept revision edited", []string{`UPDATE layer_changes SET new_value = 'x' WHERE rev = 6`}, 6, "revision 6 does not match"},
		{"the anchor replaced", []string{`UPDATE compactions SET anchor = (SELECT hash FROM revisions WHERE rev = 6)`}, 6, "compaction record 1"},
		{"the anchor and the record's hash replaced", []string{`UPDATE compactions SET anchor = zeroblob(32), hash = zeroblob(32)`}, 6, "compaction record 1"},
		{"the compaction record removed", []string{`DELETE FROM compactions`}, 1, "revision 1 is missing"},
		{"the horizon moved", []string{`UPDATE compactions SET horizon = 7`}, 7, "compaction record 1"},
		{"a value before the horizon edited", []string{`UPDATE history_base SET value = 'x' WHERE key = 'app/b'`}, 6, "history base"},
		{"a value before the horizon removed", []string{`DELETE FROM history_base WHERE key = 'app/b'`}, 6, "history base"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tamper(t, compactedHistory(t), tc.stmts...)
			res := verify(t, s)
			if res.OK || res.BrokenRev != tc.broken || !strings.Contains(res.Problem, tc.problem) {
				t.Fatalf("verify = %+v, want revision %d broken (%s)", res, tc.broken, tc.problem)
			}
		})
	}
}

func TestCompactionRefusesToEraseATamperedRevision(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, WithRetention(2, 0), noLoop)
	retentionHistory(t, s)
	path := s.Path()
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE changes SET new_value = 'forged' WHERE rev = 3`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = Open(ctx, path, WithRetention(2, 0), noLoop)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Compact(ctx)
	if !errors.Is(err, ErrChainBroken) || !strings.Contains(err.Error(), "revision 3") || res.Revisions != 0 || s.Horizon() != 0 {
		t.Fatalf("compact = %+v, %v; want it refused at revision 3", res, err)
	}
	if r, err := s.Revision(ctx, 1); err != nil || r.Rev != 1 {
		t.Fatalf("revision 1 after a refused compaction: %+v, %v", r, err)
	}
	if cs, _ := s.Compactions(ctx); len(cs) != 0 {
		t.Fatalf("a refused compaction was recorded: %+v", cs)
	}
}

func TestCompactionConcurrentWithWritersLosesNothing(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, WithRetention(10, 0), noLoop, withCompactBatch(5))
	const writers, commits = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= commits; i++ {
				_, err := s.Commit(ctx, Txn{Actor: "w", Ops: []Op{Put(fmt.Sprintf("w%d/k%d", g, i%3), []byte(fmt.Sprint(i)), "")}})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	compactions := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if _, err := s.Compact(ctx); err != nil {
			t.Fatalf("Compact while writing: %v", err)
		}
		compactions++
	}
	close(errs)
	for err := range errs {
		t.Fatalf("Commit: %v", err)
	}
	final := compact(t, s)
	if s.Rev() != writers*commits || s.Horizon() != s.Rev()-9 || final.Horizon != s.Horizon() {
		t.Fatalf("rev %d, horizon %d after %d compactions (last %+v)", s.Rev(), s.Horizon(), compactions, final)
	}
	for g := 0; g < writers; g++ {
		for k := 0; k < 3; k++ {
			// The last i with i%3 == k.
			last := commits - (commits-k)%3
			if got := get(t, s, fmt.Sprintf("w%d/k%d", g, k)); got != fmt.Sprint(last) {
				t.Fatalf("w%d/k%d = %s, want %d", g, k, got, last)
			}
		}
	}
	kvs, _, err := s.List(ctx, "", AtRev(s.Horizon()))
	if err != nil || len(kvs) != writers*3 {
		t.Fatalf("list at the horizon: %d keys, %v", len(kvs), err)
	}
	after, err := s.RevisionsAfter(ctx, s.Horizon(), 0)
	if err != nil || len(after) != 9 {
		t.Fatalf("revisions after the horizon: %d, %v", len(after), err)
	}
	if res := verify(t, s); !res.OK || res.Revisions != 10 || res.Head != s.Rev() {
		t.Fatalf("verify = %+v", res)
	}
}

func TestBackupAfterCompactionRestores(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, WithRetention(3, 0), noLoop)
	retentionHistory(t, s)
	compact(t, s)
	dir := t.TempDir()
	info, err := s.Backup(ctx, filepath.Join(dir, "backup.db"))
	if err != nil || info.Rev != 8 {
		t.Fatalf("backup = %+v, %v", info, err)
	}
	dst := filepath.Join(dir, "restored.db")
	res, err := Restore(ctx, filepath.Join(dir, "backup.db"), dst, RestoreOptions{})
	if err != nil || !res.OK || res.Horizon != 6 || res.HeadHash != info.HeadHash {
		t.Fatalf("restore = %+v, %v", res, err)
	}
	r, err := Open(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Horizon() != 6 || r.Rev() != 8 || get(t, r, "c") != "keep" || get(t, r, "c", AtRev(6)) != "keep" || get(t, r, "a") != "4" {
		t.Fatalf("restored: horizon %d, rev %d", r.Horizon(), r.Rev())
	}
	_, err = r.Get(ctx, "a", AtRev(5))
	wantGone(t, "restored, get at 5", err, 6)
	if cs, err := r.Compactions(ctx); err != nil || len(cs) != 1 || cs[0].Horizon != 6 {
		t.Fatalf("restored compactions = %+v, %v", cs, err)
	}
}

func TestBackgroundCompactionRunsAtOpenAndStopsOnClose(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "configd.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	retentionHistory(t, s)
	s.Close()
	ran := make(chan CompactResult, 1)
	s, err = Open(ctx, path, WithRetention(2, 0), WithCompactInterval(time.Hour), func(o *options) {
		o.onCompact = func(res CompactResult, err error) {
			if err != nil {
				t.Errorf("background compaction: %v", err)
			}
			ran <- res
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-ran:
		if res.Horizon != 7 || res.Revisions != 6 || s.Horizon() != 7 {
			t.Fatalf("background compaction = %+v", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no background compaction at open")
	}
	// Close stops the loop (it would otherwise wait an hour) and returns.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRetentionMustNotBeNegative(t *testing.T) {
	for _, opt := range []Option{WithRetention(-1, 0), WithRetention(0, -time.Second)} {
		if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "configd.db"), opt); err == nil {
			t.Fatal("negative retention accepted")
		}
	}
}

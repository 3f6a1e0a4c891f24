package events

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/configd/configd/audit/internal/sqlitedb"
	"github.com/configd/configd/audit/record"
	"github.com/configd/configd/migrations"
)

// downCluster is a Cluster in memory that etcd's absence can be switched
// on: then every call fails with record.ErrStoreUnavailable.
type downCluster struct {
	mu   sync.Mutex
	down bool
	evs  []SourceEvent
	rev  int64
}

func (c *downCluster) RecordEvent(_ context.Context, e SourceEvent) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return 0, fmt.Errorf("%w: etcd is away", record.ErrStoreUnavailable)
	}
	c.rev++
	e.ID = c.rev
	c.evs = append(c.evs, e)
	return c.rev, nil
}

func (c *downCluster) Events(context.Context) ([]SourceEvent, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return nil, 0, fmt.Errorf("%w: etcd is away", record.ErrStoreUnavailable)
	}
	return append([]SourceEvent(nil), c.evs...), c.rev, nil
}

func eventsDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sqlitedb.OpenWriter(context.Background(), filepath.Join(t.TempDir(), "configd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := migrations.Up(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

// While etcd is away, a replica keeps at most PerSource events of a
// source waiting, listed in its copy after the shared ones, and shares the
// newest of them, in order, once etcd answers.
func TestEventsWaitingForEtcdAreBoundedAndSharedInOrder(t *testing.T) {
	ctx := context.Background()
	db, c := eventsDB(t), &downCluster{}
	s := NewShared(db, c, slog.New(slog.DiscardHandler))
	if err := s.Record(ctx, SourceEvent{Source: "files", State: "ok"}); err != nil {
		t.Fatal(err)
	}
	c.down = true
	const extra = 3
	for i := range PerSource + extra {
		if err := s.Record(ctx, SourceEvent{Source: "consul", State: "degraded", Message: fmt.Sprint(i)}); err != nil {
			t.Fatalf("event %d, etcd away: %v", i, err)
		}
	}
	select {
	case <-s.Poked():
	default:
		t.Fatal("events wait, and no Load was asked for")
	}
	listed, err := List(ctx, db, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != PerSource+1 || listed[0].Message != fmt.Sprint(PerSource+extra-1) || listed[PerSource].Source != "files" {
		t.Fatalf("etcd away: %d events listed, newest %+v; want the shared one and the newest %d waiting", len(listed), listed[0], PerSource)
	}
	if _, err := s.Load(ctx); err == nil {
		t.Fatal("Load with etcd away: no error")
	}

	c.down = false
	if _, err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if len(c.evs) != PerSource+1 {
		t.Fatalf("etcd got %d events, want %d", len(c.evs), PerSource+1)
	}
	for i, e := range c.evs[1:] {
		if want := fmt.Sprint(i + extra); e.Message != want {
			t.Fatalf("shared event %d is %q, want %q: in order, the oldest dropped", i, e.Message, want)
		}
	}
	listed, err = List(ctx, db, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range listed {
		if want := c.evs[len(c.evs)-1-i]; e != want {
			t.Fatalf("listed %d: %+v, want etcd's %+v", i, e, want)
		}
	}
	// The next one goes to etcd at once.
	if err := s.Record(ctx, SourceEvent{Source: "consul", State: "ok"}); err != nil || len(c.evs) != PerSource+2 {
		t.Fatalf("with etcd back: %v, %d events in etcd", err, len(c.evs))
	}
}

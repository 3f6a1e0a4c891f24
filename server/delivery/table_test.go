package delivery

import (
	"context"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
)

// noHistory is a store without revisions.
type noHistory struct{}

func (noHistory) History(context.Context, audit.HistoryQuery) (audit.HistoryPage, error) {
	return audit.HistoryPage{}, nil
}

type peers []api.ClientStatus

func (p peers) Clients(context.Context) ([]api.ClientStatus, error) { return p, nil }

// TestListMergesPeersByLastSeen: the other replicas' clients are listed
// with this one's; an instance listed twice (it moved) is the one seen
// last, and a peer's expired entry is left out.
func TestListMergesPeersByLastSeen(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	p := peers{
		{Instance: "moved", Replica: "r2", Prefixes: []string{"app/"}, Rev: 3, LastSeen: now.Add(-time.Second)},
		{Instance: "stale", Replica: "r2", Prefixes: []string{"app/"}, LastSeen: now.Add(-2 * time.Minute)},
		{Instance: "other", Replica: "r2", Prefixes: []string{"app/"}, LastSeen: now},
	}
	tb := New("r1", noHistory{}, WithPeers(p), WithExpiry(time.Minute), WithClock(func() time.Time { return now }))
	tb.Report("t", api.ClientReport{Instance: "moved", Prefixes: []string{"app/"}, Rev: 5})
	got, err := tb.List(context.Background(), "app/")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Instance != "moved" || got[0].Replica != "r1" || got[0].Rev != 5 || got[1].Instance != "other" {
		t.Fatalf("got %+v", got)
	}
}

// TestVersionMovesWithChangesNotHeartbeats: the Publisher republishes on a
// client's change, not on a heartbeat that only renews it.
func TestVersionMovesWithChangesNotHeartbeats(t *testing.T) {
	tb := New("r1", noHistory{})
	r := api.ClientReport{Instance: "a", Labels: map[string]string{"zone": "eu-1"}, Prefixes: []string{"app/"}, Rev: 1}
	version := func() uint64 { _, v := tb.Local(); return v }
	tb.Report("t", r)
	v1 := version()
	tb.Report("t", r)
	if v := version(); v != v1 {
		t.Fatalf("a heartbeat moved the version from %d to %d", v1, v)
	}
	r.Rev = 2
	tb.Report("t", r)
	if v := version(); v == v1 {
		t.Fatal("a new revision did not move the version")
	}
	v2 := version()
	r.Gone = true
	tb.Report("t", r)
	if v := version(); v == v2 {
		t.Fatal("a client's leaving did not move the version")
	}
}

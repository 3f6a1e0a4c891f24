// Package delivery keeps what configd knows of its SDK clients (delivery
// tracking): who each is, what it watches, the revision it applied and
// the values it rejected, as the clients report them (POST
// /v1/clients/report). A Table holds this configd's clients; on a
// replica, a Publisher shares them with the other replicas through etcd,
// so that every replica lists the clients of all (docs/delivery.md).
package delivery

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
)

// History is what a Table reads of the store to tell how far behind a
// client is: the revisions of a scope, newest first (audit.Store).
type History interface {
	History(ctx context.Context, q audit.HistoryQuery) (audit.HistoryPage, error)
}

// Peers are the clients of the other replicas of a cluster (a
// Publisher); nil in the SQLite mode.
type Peers interface {
	Clients(ctx context.Context) ([]api.ClientStatus, error)
}

// Option configures a Table.
type Option func(*Table)

// WithExpiry sets how long a client that stopped reporting is kept
// (api.DefaultClientExpiry unless set). Clients report every third of it.
func WithExpiry(d time.Duration) Option { return func(t *Table) { t.expiry = d } }

// WithPeers adds the clients of the other replicas to List.
func WithPeers(p Peers) Option { return func(t *Table) { t.peers = p } }

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(t *Table) { t.now = now } }

// Table holds the clients that report to this configd, by instance. It is
// safe for concurrent use.
type Table struct {
	replica string
	hist    History
	expiry  time.Duration
	now     func() time.Time
	peers   Peers

	mu      sync.Mutex
	clients map[string]api.ClientStatus
	swept   time.Time
	version uint64 // moves with every change but a heartbeat's, for the Publisher
}

// New returns the table of the configd named replica (its replica name,
// or its address), reading history from hist.
func New(replica string, hist History, opts ...Option) *Table {
	t := &Table{replica: replica, hist: hist, expiry: api.DefaultClientExpiry, now: time.Now,
		clients: map[string]api.ClientStatus{}}
	for _, o := range opts {
		o(t)
	}
	if t.expiry <= 0 {
		panic("delivery: WithExpiry needs a positive duration")
	}
	return t
}

// Expiry is how long a client that stopped reporting is kept.
func (t *Table) Expiry() time.Duration { return t.expiry }

// ReportEvery is how often a client should report when nothing changes:
// a third of the expiry, so that two lost reports do not make it expire.
func (t *Table) ReportEvery() time.Duration { return t.expiry / 3 }

// ReportWindow is the window at the start of each ReportEvery that
// clients send their heartbeats in (api.ClientReportResponse.WindowMS):
// api.DefaultClientReportWindowMS, or a tenth of ReportEvery when that is
// shorter.
func (t *Table) ReportWindow() time.Duration {
	return min(time.Duration(api.DefaultClientReportWindowMS)*time.Millisecond, t.ReportEvery()/10)
}

// Report records r, sent with the token named token (already checked:
// the door refuses a report whose token may not read its prefixes). A
// report with Gone removes the client.
func (t *Table) Report(token string, r api.ClientReport) {
	now := t.now().UTC()
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.swept) > t.expiry/3 {
		t.sweep(now)
	}
	old, known := t.clients[r.Instance]
	if r.Gone {
		if known {
			delete(t.clients, r.Instance)
			t.version++
		}
		return
	}
	c := api.ClientStatus{Instance: r.Instance, Labels: r.Labels, Token: token,
		Replica: t.replica, Prefixes: r.Prefixes, Rev: r.Rev, Rejections: r.Rejections, LastSeen: now}
	if !known || !same(old, c) {
		t.version++ // a heartbeat that changes nothing but LastSeen does not count
	}
	t.clients[r.Instance] = c
}

// same reports whether a and b differ at most in LastSeen.
func same(a, b api.ClientStatus) bool {
	return a.Token == b.Token && a.Rev == b.Rev && maps.Equal(a.Labels, b.Labels) &&
		slices.Equal(a.Prefixes, b.Prefixes) && slices.Equal(a.Rejections, b.Rejections)
}

// sweep forgets the clients that expired; called with mu held.
func (t *Table) sweep(now time.Time) {
	t.swept = now
	n := len(t.clients)
	maps.DeleteFunc(t.clients, func(_ string, c api.ClientStatus) bool { return now.Sub(c.LastSeen) > t.expiry })
	if len(t.clients) != n {
		t.version++
	}
}

// Local returns this configd's live clients, by instance, and the
// table's version: it moves with every report that changes a client
// (not with a heartbeat that changes only when it was last seen).
func (t *Table) Local() ([]api.ClientStatus, uint64) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]api.ClientStatus, 0, len(t.clients))
	for _, c := range t.clients {
		if now.Sub(c.LastSeen) <= t.expiry {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, byInstance)
	return out, t.version
}

func byInstance(a, b api.ClientStatus) int { return cmp.Compare(a.Instance, b.Instance) }

// all returns the live clients of this configd and of its peers; a
// client listed by two replicas (it moved) is the one seen last.
func (t *Table) all(ctx context.Context) ([]api.ClientStatus, error) {
	local, _ := t.Local()
	if t.peers == nil {
		return local, nil
	}
	others, err := t.peers.Clients(ctx)
	if err != nil {
		return nil, err
	}
	now := t.now()
	byName := make(map[string]api.ClientStatus, len(local)+len(others))
	for _, c := range slices.Concat(local, others) {
		if now.Sub(c.LastSeen) > t.expiry {
			continue
		}
		if old, ok := byName[c.Instance]; !ok || c.LastSeen.After(old.LastSeen) {
			byName[c.Instance] = c
		}
	}
	out := slices.Collect(maps.Values(byName))
	slices.SortFunc(out, byInstance)
	return out, nil
}

// List returns the clients of every replica that watch something under
// prefix (a canonical prefix, "" for all), each with how many revisions
// of what it watches under prefix it has not applied (Behind).
func (t *Table) List(ctx context.Context, prefix string) ([]api.ClientStatus, error) {
	all, err := t.all(ctx)
	if err != nil {
		return nil, err
	}
	revs := revCache{hist: t.hist, revs: map[string][]int64{}}
	out := all[:0]
	for _, c := range all {
		var scopes []string
		for _, w := range c.Prefixes {
			if keyspace.Overlaps(w, prefix) {
				scopes = append(scopes, narrower(w, prefix))
			}
		}
		if len(scopes) == 0 {
			continue
		}
		for _, s := range scopes {
			b, err := revs.behind(ctx, s, c.Rev)
			if err != nil {
				return nil, err
			}
			c.Behind = max(c.Behind, b)
		}
		out = append(out, c)
	}
	return out, nil
}

// narrower is the longer of two overlapping scopes.
func narrower(a, b string) string {
	if len(a) >= len(b) {
		return a
	}
	return b
}

// historyDepth is how many of a scope's newest revisions Behind counts.
const historyDepth = 1000

// revCache reads each scope's newest revisions once per List or scrape.
type revCache struct {
	hist History
	revs map[string][]int64 // newest first
}

func (r *revCache) newest(ctx context.Context, scope string) ([]int64, error) {
	if revs, ok := r.revs[scope]; ok {
		return revs, nil
	}
	sc := audit.Scope{Prefix: scope}
	if scope != "" && !strings.HasSuffix(scope, "/") {
		sc = audit.Scope{Key: scope}
	}
	page, err := r.hist.History(ctx, audit.HistoryQuery{Scope: sc, Limit: historyDepth})
	if err != nil {
		return nil, err
	}
	revs := make([]int64, len(page.Revisions))
	for i, rv := range page.Revisions {
		revs[i] = rv.Rev
	}
	r.revs[scope] = revs
	return revs, nil
}

// behind counts the revisions of scope after rev.
func (r *revCache) behind(ctx context.Context, scope string, rev int64) (int64, error) {
	revs, err := r.newest(ctx, scope)
	if err != nil {
		return 0, err
	}
	n := 0
	for n < len(revs) && revs[n] > rev {
		n++
	}
	return int64(n), nil
}

// held is the revision of scope a client at rev holds: the newest one at
// or before rev (0 when it is older than the history read).
func (r *revCache) held(ctx context.Context, scope string, rev int64) (int64, error) {
	revs, err := r.newest(ctx, scope)
	if err != nil {
		return 0, err
	}
	for _, v := range revs {
		if v <= rev {
			return v, nil
		}
	}
	return 0, nil
}

package web

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/configd/configd/audit"
)

func openStore(t testing.TB) *audit.Store {
	t.Helper()
	st, err := audit.Open(context.Background(), filepath.Join(t.TempDir(), "configd.db"),
		audit.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func commit(t testing.TB, st *audit.Store, actor, origin string, keys ...string) audit.Revision {
	t.Helper()
	txn := audit.Txn{Actor: actor, Origin: origin, Reason: "test"}
	for _, k := range keys {
		txn.Ops = append(txn.Ops, audit.Put(k, []byte(time.Now().String()), ""))
	}
	r, err := st.Commit(context.Background(), txn)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// timelineFixture is six revisions:
//
//	1 alice api        a/x
//	2 bob   api        b/y
//	3 sync  source:consul a/z b/z
//	4 alice api        a/x
//	5 carol rollback of a/x to 1
//	6 bob   source:file c/w
func timelineFixture(t *testing.T) (*ui, []audit.Revision) {
	st := openStore(t)
	revs := []audit.Revision{
		commit(t, st, "alice", "api", "a/x"),
		commit(t, st, "bob", "api", "b/y"),
		commit(t, st, "sync", "source:consul", "a/z", "b/z"),
		commit(t, st, "alice", "api", "a/x"),
	}
	rb, err := st.Rollback(context.Background(), audit.RollbackRequest{Scope: audit.Scope{Key: "a/x"}, To: 1, Actor: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	revs = append(revs, rb, commit(t, st, "bob", "source:file", "c/w"))
	for i := range revs {
		full, err := st.Revision(context.Background(), revs[i].Rev)
		if err != nil {
			t.Fatal(err)
		}
		revs[i] = full
	}
	return newUI(st), revs
}

func revNums(revs []audit.Revision) []int64 {
	out := []int64{}
	for _, r := range revs {
		out = append(out, r.Rev)
	}
	return out
}

func query(t *testing.T, raw string) timelineQuery {
	t.Helper()
	v, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	q, err := parseTimelineQuery(v)
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return q
}

func TestTimelineFilters(t *testing.T) {
	u, revs := timelineFixture(t)
	ctx := context.Background()
	utc := func(i int) string { return revs[i].Time.UTC().Format(time.RFC3339Nano) }
	for _, tc := range []struct {
		query string
		want  []int64
	}{
		{"", []int64{6, 5, 4, 3, 2, 1}},
		{"prefix=a", []int64{5, 4, 3, 1}},
		{"prefix=a/", []int64{5, 4, 3, 1}},
		{"actor=alice", []int64{4, 1}},
		{"prefix=b&actor=bob", []int64{2}},
		{"origin=rollback", []int64{5}},
		{"origin=api", []int64{4, 2, 1}}, // a rollback shows as one, not as api
		{"origin=consul", []int64{3}},
		{"origin=source:file", []int64{6}},
		{"origin=FILE", []int64{6}},
		{"origin=nobody", []int64{}},
		{"from=" + url.QueryEscape(utc(1)), []int64{6, 5, 4, 3, 2}},
		{"to=" + url.QueryEscape(utc(2)), []int64{3, 2, 1}},
		{"from=" + url.QueryEscape(utc(1)) + "&to=" + url.QueryEscape(utc(3)), []int64{4, 3, 2}},
		{"from=" + url.QueryEscape(utc(1)) + "&to=" + url.QueryEscape(utc(3)) + "&origin=api", []int64{4, 2}},
		{"to=2000-01-01T00:00", []int64{}},
		{"from=2100-01-01", []int64{}},
		{"before=4", []int64{3, 2, 1}},
		{"before=4&prefix=a", []int64{3, 1}},
	} {
		page, err := u.loadTimeline(ctx, query(t, tc.query), 0)
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		if got := revNums(page.Revs); !slices.Equal(got, tc.want) {
			t.Errorf("%q: revisions %v, want %v", tc.query, got, tc.want)
		}
		if page.Next != 0 {
			t.Errorf("%q: next %d on the only page", tc.query, page.Next)
		}
	}
	// Changes within the prefix are counted apart from all the keys.
	page, _ := u.loadTimeline(ctx, query(t, "prefix=a"), 0)
	if r := rows(page.Revs)[2]; r.Rev != 3 || r.NumChanges != 2 || r.Scoped != 1 || !slices.Equal(r.Keys, []string{"a/z"}) {
		t.Errorf("row of r3 under a/: %+v", r)
	}
}

func TestTimelinePagesWithACursor(t *testing.T) {
	u, _ := timelineFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		query string
		pages [][]int64
	}{
		{"limit=2", [][]int64{{6, 5}, {4, 3}, {2, 1}}},
		{"limit=4", [][]int64{{6, 5, 4, 3}, {2, 1}}},
		{"limit=2&origin=api", [][]int64{{4, 2}, {1}}},
		{"limit=1&actor=bob", [][]int64{{6}, {2}}},
	} {
		q := query(t, tc.query)
		for i, want := range tc.pages {
			page, err := u.loadTimeline(ctx, q, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := revNums(page.Revs); !slices.Equal(got, want) {
				t.Fatalf("%q page %d: %v, want %v", tc.query, i+1, got, want)
			}
			last := i == len(tc.pages)-1
			if last != (page.Next == 0) {
				t.Fatalf("%q page %d: next %d", tc.query, i+1, page.Next)
			}
			q.before = page.Next
		}
	}
}

func TestTimelineScanBudgetAnswersWithACursor(t *testing.T) {
	u, _ := timelineFixture(t)
	defer func(p, b int) { scanPage, scanBudget = p, b }(scanPage, scanBudget)
	scanPage, scanBudget = 2, 2
	q := query(t, "origin=consul")
	page, err := u.loadTimeline(context.Background(), q, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Revs) != 0 || !page.Partial || page.Next != 5 || page.Scanned != 2 {
		t.Fatalf("first scan: %+v", page)
	}
	q.before = page.Next
	page, _ = u.loadTimeline(context.Background(), q, 0)
	if got := revNums(page.Revs); !slices.Equal(got, []int64{3}) || page.Next != 3 {
		t.Fatalf("second scan: %v next %d", got, page.Next)
	}
}

func TestTimelineStopsAtStopAt(t *testing.T) {
	u, _ := timelineFixture(t)
	for _, raw := range []string{"", "origin=api"} {
		page, err := u.loadTimeline(context.Background(), query(t, raw), 3)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]int64{"": {6, 5, 4}, "origin=api": {4}}[raw]
		if got := revNums(page.Revs); !slices.Equal(got, want) || page.Next != 0 {
			t.Errorf("%q after 3: %v next %d, want %v", raw, got, page.Next, want)
		}
	}
}

func TestFirstRevAfter(t *testing.T) {
	u, revs := timelineFixture(t)
	ctx := context.Background()
	for i, r := range revs {
		got, err := u.firstRevAfter(ctx, r.Time)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(i + 2); got != want {
			t.Errorf("first revision after r%d's time: %d, want %d", r.Rev, got, want)
		}
	}
	if got, _ := u.firstRevAfter(ctx, revs[0].Time.Add(-time.Hour)); got != 1 {
		t.Errorf("before everything: %d", got)
	}
}

func TestParseTimelineQuery(t *testing.T) {
	q := query(t, "from=2026-03-01T10:00&to=2026-03-01T12:30:15&tz=120")
	if want := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC); !q.from.Equal(want) {
		t.Errorf("from = %v, want %v (local time at UTC+2)", q.from, want)
	}
	if want := time.Date(2026, 3, 1, 10, 30, 15, 0, time.UTC); !q.to.Equal(want) {
		t.Errorf("to = %v, want %v", q.to, want)
	}
	if q := query(t, "from=2026-03-01"); !q.from.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("a date alone, no tz: %v", q.from)
	}
	for _, bad := range []string{"prefix=/a//b", "from=yesterday", "tz=abc", "tz=5000", "before=0", "before=x", "limit=0", "limit=501"} {
		v, _ := url.ParseQuery(bad)
		if _, err := parseTimelineQuery(v); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if got := query(t, "prefix=a&actor=b&origin=api&limit=50").params().Encode(); got != "actor=b&origin=api&prefix=a" {
		t.Errorf("params = %q", got)
	}
}

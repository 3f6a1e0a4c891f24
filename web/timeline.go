package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
)

// Timeline paging. The store filters by prefix and actor itself; origin
// and the start of a time range are applied here, on pages of scanPage
// revisions, and one request scans at most scanBudget revisions before it
// answers with what it found and a cursor to go on from.
const (
	defaultPageSize = 50
	maxPageSize     = 500
	rowKeys         = 3 // keys listed per timeline row
)

// Variables, so that tests can make them small.
var (
	scanPage   = 250
	scanBudget = 5000
)

// timelineQuery is the timeline's filter and cursor.
type timelineQuery struct {
	// Raw values, echoed into the filter form.
	Prefix, Actor, Origin, FromRaw, ToRaw, TZ string

	prefix   string // canonical
	from, to time.Time
	before   int64
	limit    int
	// may, when not nil, says which keys the user may read: the
	// timeline shows only their changes, and no revision without one.
	may func(key string) bool
}

func (q timelineQuery) filtered() bool {
	return q.Prefix != "" || q.Actor != "" || q.Origin != "" || q.FromRaw != "" || q.ToRaw != ""
}

// params returns the query's filters as URL parameters (without cursor).
func (q timelineQuery) params() url.Values {
	v := url.Values{}
	for _, p := range [][2]string{{"prefix", q.Prefix}, {"actor", q.Actor}, {"origin", q.Origin},
		{"from", q.FromRaw}, {"to", q.ToRaw}, {"tz", q.TZ}} {
		if p[1] != "" {
			v.Set(p[0], p[1])
		}
	}
	if q.limit != defaultPageSize && q.limit != 0 {
		v.Set("limit", strconv.Itoa(q.limit))
	}
	return v
}

func parseTimelineQuery(v url.Values) (timelineQuery, error) {
	q := timelineQuery{
		Prefix: strings.TrimSpace(v.Get("prefix")), Actor: v.Get("actor"),
		Origin: strings.TrimSpace(v.Get("origin")), FromRaw: strings.TrimSpace(v.Get("from")),
		ToRaw: strings.TrimSpace(v.Get("to")), TZ: v.Get("tz"), limit: defaultPageSize,
	}
	var err error
	if q.prefix, err = keyspace.Prefix(q.Prefix); err != nil {
		return q, err
	}
	loc := time.UTC
	if q.TZ != "" {
		// Minutes east of UTC, as the page's script sends them; without
		// the script, times in the form are UTC.
		m, err := strconv.Atoi(q.TZ)
		if err != nil || m < -18*60 || m > 18*60 {
			return q, badInput("tz=%q is not a UTC offset in minutes", q.TZ)
		}
		loc = time.FixedZone("", m*60)
	}
	if q.from, err = parseTime(q.FromRaw, loc); err != nil {
		return q, badInput("from: %v", err)
	}
	if q.to, err = parseTime(q.ToRaw, loc); err != nil {
		return q, badInput("to: %v", err)
	}
	if s := v.Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return q, badInput("before=%q is not a revision", s)
		}
		q.before = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			return q, badInput("limit=%q: want a whole number from 1 to %d", s, maxPageSize)
		}
		q.limit = n
	}
	return q, nil
}

// parseTime reads a time as RFC 3339, or as the browser's datetime-local
// value (minutes or seconds) or a date in loc. "" is the zero time.
func parseTime(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, badInput("%q is not a time (use 2006-01-02T15:04 or RFC 3339)", s)
}

// matchOrigin reports whether r comes from origin as the timeline names
// origins: "rollback", "api", a source's name, or the raw origin.
func matchOrigin(r audit.Revision, origin string) bool {
	if origin == "" {
		return true
	}
	return strings.EqualFold(displayOrigin(r), origin) || r.RollbackTo == 0 && r.Origin == origin
}

// timelinePage is one page of the timeline.
type timelinePage struct {
	Revs []audit.Revision
	// Next is the cursor of the next page (0: none).
	Next int64
	// Scanned counts the revisions read to find Revs when filtering here;
	// Partial says the scan budget ran out before the page was full.
	Scanned int
	Partial bool
}

// loadTimeline reads one page of q, newest first, stopping at revisions
// at or below stopAt (0: no stop). The store filters by prefix and actor;
// origin, the start of a time range and what the user may read are
// filtered here, within the scan budget.
func (u *ui) loadTimeline(ctx context.Context, q timelineQuery, stopAt int64) (timelinePage, error) {
	var out timelinePage
	before := q.before
	if !q.to.IsZero() {
		b, err := u.firstRevAfter(ctx, q.to)
		if err != nil {
			return out, err
		}
		if before == 0 || b < before {
			before = b
		}
		if before <= 1 {
			return out, nil // nothing is that old
		}
	}
	hq := audit.HistoryQuery{Scope: audit.Scope{Prefix: q.prefix}, Actor: q.Actor, Before: before}
	if q.Origin == "" && q.from.IsZero() && q.may == nil {
		hq.Limit = q.limit
		page, err := u.st.History(ctx, hq)
		if err != nil {
			return out, err
		}
		for _, r := range page.Revisions {
			if r.Rev <= stopAt {
				return out, nil
			}
			out.Revs = append(out.Revs, r)
		}
		out.Next = page.Next
		return out, nil
	}
	hq.Limit = scanPage
	for {
		page, err := u.st.History(ctx, hq)
		if err != nil {
			return out, err
		}
		for i, r := range page.Revisions {
			out.Scanned++
			if r.Rev <= stopAt || !q.from.IsZero() && r.Time.Before(q.from) {
				return out, nil
			}
			if !matchOrigin(r, q.Origin) {
				continue
			}
			if q.may != nil {
				if r = visibleOnly(r, q.may); len(r.Changes) == 0 {
					continue
				}
			}
			out.Revs = append(out.Revs, r)
			if len(out.Revs) == q.limit {
				if i < len(page.Revisions)-1 || page.Next != 0 {
					out.Next = r.Rev
				}
				return out, nil
			}
		}
		if page.Next == 0 {
			return out, nil
		}
		hq.Before = page.Next
		if out.Scanned >= scanBudget {
			out.Next, out.Partial = page.Next, true
			return out, nil
		}
	}
}

// firstRevAfter returns the oldest revision committed after t (the store's
// revision + 1 when there is none), by binary search over revisions: commit
// times grow with revisions, as one writer stamps them in order.
func (u *ui) firstRevAfter(ctx context.Context, t time.Time) (int64, error) {
	lo, hi := int64(1), u.st.Rev()+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		// The newest revision at or below mid (revisions may be missing
		// once history is pruned).
		page, err := u.st.History(ctx, audit.HistoryQuery{Limit: 1, Before: mid + 1})
		if err != nil {
			return 0, err
		}
		if len(page.Revisions) > 0 && page.Revisions[0].Time.After(t) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// rowView is one timeline row.
type rowView struct {
	audit.Revision
	Keys   []string // the first few keys it changed (within the prefix filter)
	More   int      // how many more
	Scoped int      // keys it changed within the prefix filter
}

func rows(revs []audit.Revision) []rowView {
	out := make([]rowView, len(revs))
	for i, r := range revs {
		v := rowView{Revision: r, Scoped: len(r.Changes)}
		for _, c := range r.Changes {
			if len(v.Keys) == rowKeys {
				break
			}
			v.Keys = append(v.Keys, c.Key)
		}
		v.More = len(r.Changes) - len(v.Keys)
		v.Changes = nil // rows never carry values
		out[i] = v
	}
	return out
}

// timelineView is the Data of the timeline page.
type timelineView struct {
	Q         timelineQuery
	Rows      []rowView
	NextURL   string
	NewestURL string // the first page with the same filters
	FirstPage bool
	Filtered  bool
	Scanned   int
	Partial   bool
	Error     string
	// Watch is the prefix the live timeline watches.
	Watch string
}

// GET {base}/?prefix=&actor=&origin=&from=&to=&tz=&before=&limit=
func (u *ui) timeline(w http.ResponseWriter, r *http.Request) {
	rev := u.st.Rev()
	q, err := parseTimelineQuery(r.URL.Query())
	q.may = u.readFilter(r, q.prefix)
	view := timelineView{Q: q, FirstPage: q.before == 0, Filtered: q.filtered(), Watch: q.prefix}
	status := http.StatusOK
	if err != nil {
		status, view.Error = http.StatusBadRequest, err.Error()
	} else {
		page, err := u.loadTimeline(r.Context(), q, 0)
		if err != nil {
			u.fail(w, r, err)
			return
		}
		view.Rows, view.Scanned, view.Partial = rows(page.Revs), page.Scanned, page.Partial
		view.NewestURL = u.opts.base + "/"
		if p := q.params().Encode(); p != "" {
			view.NewestURL += "?" + p
		}
		if page.Next > 0 {
			p := q.params()
			p.Set("before", strconv.FormatInt(page.Next, 10))
			view.NextURL = u.opts.base + "/?" + p.Encode()
		}
	}
	u.render(w, r, status, "timeline", page{Title: "Timeline", Rev: rev, Data: view})
}

// rowJSON is a timeline row for the live timeline's script.
type rowJSON struct {
	Rev         int64     `json:"rev"`
	URL         string    `json:"url"`
	Time        string    `json:"time"` // RFC 3339, UTC
	UTC         string    `json:"utc"`  // for the title
	Actor       string    `json:"actor"`
	Origin      string    `json:"origin"`
	OriginRaw   string    `json:"origin_raw"`
	OriginClass string    `json:"origin_class"`
	Reason      string    `json:"reason"`
	RollbackTo  int64     `json:"rollback_to,omitempty"`
	NumChanges  int       `json:"num_changes"`
	Scoped      int       `json:"scoped"`
	Keys        []keyLink `json:"keys"`
	More        int       `json:"more"`
}

type keyLink struct {
	Key string `json:"key"`
	URL string `json:"url"`
}

// timelineJSON is the answer of GET {base}/timeline.json.
type timelineJSON struct {
	// Rev is the store's revision when the query began: ask next with
	// after=Rev.
	Rev  int64     `json:"rev"`
	Rows []rowJSON `json:"rows"`
	// Gap says there are more new revisions than Rows holds: reload.
	Gap bool `json:"gap"`
}

// GET {base}/timeline.json?after=N&<timeline filters>: the revisions newer
// than N that the timeline with these filters shows, newest first. The
// live timeline asks it whenever the watch says something changed.
func (u *ui) timelineJSON(w http.ResponseWriter, r *http.Request) {
	rev := u.st.Rev()
	v := r.URL.Query()
	q, err := parseTimelineQuery(v)
	var after int64
	if err == nil {
		after, err = strconv.ParseInt(v.Get("after"), 10, 64)
		if err != nil || after < 0 {
			err = badInput("after=%q is not a revision", v.Get("after"))
		}
	}
	if err != nil {
		writeJSON(w, r, http.StatusBadRequest, map[string]jsonError{"error": {Code: "bad_request", Message: err.Error()}})
		return
	}
	q.before = 0
	q.may = u.readFilter(r, q.prefix)
	page, err := u.loadTimeline(r.Context(), q, after)
	if err != nil {
		c := u.classify(r, err)
		writeJSON(w, r, c.Status, map[string]jsonError{"error": {Code: c.Code, Message: c.Message}})
		return
	}
	out := timelineJSON{Rev: rev, Rows: []rowJSON{}, Gap: page.Next != 0 || page.Partial}
	for _, rv := range rows(page.Revs) {
		row := rowJSON{
			Rev: rv.Rev, URL: u.opts.base + "/rev/" + strconv.FormatInt(rv.Rev, 10),
			Time: rv.Time.UTC().Format(time.RFC3339Nano), UTC: rv.Time.UTC().Format("2006-01-02 15:04:05 UTC"),
			Actor: rv.Actor, Origin: displayOrigin(rv.Revision), OriginRaw: rv.Origin, OriginClass: originClass(rv.Revision),
			Reason: rv.Reason, RollbackTo: rv.RollbackTo, NumChanges: rv.NumChanges, Scoped: rv.Scoped, More: rv.More,
			Keys: []keyLink{},
		}
		for _, k := range rv.Keys {
			row.Keys = append(row.Keys, keyLink{Key: k, URL: keyURL(u.opts.base, k)})
		}
		out.Rows = append(out.Rows, row)
	}
	writeJSON(w, r, http.StatusOK, out)
}

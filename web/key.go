package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/textdiff"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
)

const keyHistoryPage = 50

// keyRow is one revision in a key's history.
type keyRow struct {
	audit.Revision
	Op      string // create, update, delete
	Version int64
	Size    int
	// Latest is the key's newest revision: rolling back to it changes
	// nothing.
	Latest bool
}

// layerView is one layer that defines a key. Values are not shown here:
// the current value above is the effective one.
type layerView struct {
	Name      string
	Effective bool
	Tombstone bool
}

// keyView is the Data of a key page.
type keyView struct {
	Key    string
	Parent string
	// Current is the key's value now; nil when it does not exist now.
	Current *audit.KeyValue
	Text    string // the value to show, pretty-printed
	Binary  bool
	Secret  bool
	// Notes say how Text differs from the value: not pretty-printed, or
	// cut at textdiff.MaxShowBytes.
	Notes []string
	// Layers are the layers that define the key, highest precedence
	// first; the effective one is marked.
	Layers []layerView

	History []keyRow
	NextURL string

	// The comparison of the value at A and at B (A < B).
	A, B       int64
	Compare    *ChangeView
	CompareErr string
}

// keyParam returns the key of a {base}/key/{key...} route.
func keyParam(r *http.Request) (string, error) {
	key := chi.URLParam(r, "*")
	// chi routes on the escaped path when the URL has one (a key with %2F,
	// '?' or '#' in it), so the parameter is then still escaped.
	if r.URL.RawPath != "" {
		k, err := url.PathUnescape(key)
		if err != nil {
			return "", fmt.Errorf("%w: %q is not a valid URL path", keyspace.ErrInvalidKey, key)
		}
		key = k
	}
	return key, keyspace.Validate(key)
}

// GET {base}/key?key=K: the search box; goes to K's page.
func (u *ui) keySearch(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimSpace(r.URL.Query().Get("key"))
	if key == "" {
		http.Redirect(w, r, u.opts.base+"/", http.StatusSeeOther)
		return
	}
	key = strings.Trim(key, "/")
	if err := keyspace.Validate(key); err != nil {
		u.errorPage(w, r, http.StatusBadRequest, "Not a key", err.Error())
		return
	}
	http.Redirect(w, r, keyURL(u.opts.base, key), http.StatusSeeOther)
}

// GET {base}/key/{key...}?a=A&b=B&before=C
func (u *ui) key(w http.ResponseWriter, r *http.Request) {
	key, err := keyParam(r)
	if err != nil {
		u.errorPage(w, r, http.StatusBadRequest, "Not a key", err.Error())
		return
	}
	if !u.allows(r, api.PermissionRead, key) {
		u.errorPage(w, r, http.StatusForbidden, "Forbidden", fmt.Sprintf("Token %q may not read key %q.", principal(r).Name(), key))
		return
	}
	ctx := r.Context()
	cur := u.st.Rev()
	q := r.URL.Query()
	var before int64
	if s := q.Get("before"); s != "" {
		if before, err = strconv.ParseInt(s, 10, 64); err != nil || before < 1 {
			u.errorPage(w, r, http.StatusBadRequest, "Bad request", fmt.Sprintf("before=%q is not a revision", s))
			return
		}
	}
	v := keyView{Key: key, Parent: parentPrefix(key), Secret: u.opts.secret != nil && u.opts.secret(key)}
	kv, err := u.st.Get(ctx, key)
	switch {
	case err == nil:
		v.Current = &kv
		if kv.Secret {
			// The page never carries a secret's value, not even hidden.
			v.Secret = true
			kv.Value = nil
		} else {
			shown := displayText(kv.Value, kv.ContentType)
			v.Text, v.Binary = shown.Text, shown.Binary
			if shown.Note != "" {
				v.Notes = append(v.Notes, shown.Note)
			}
			if len(v.Text) > textdiff.MaxShowBytes {
				v.Notes = append(v.Notes, fmt.Sprintf("showing the first %d of %d bytes: configctl get prints the whole value", textdiff.MaxShowBytes, len(v.Text)))
				v.Text = textdiff.Clip(v.Text, textdiff.MaxShowBytes)
			}
		}
	case !errors.Is(err, audit.ErrNotFound):
		u.fail(w, r, err)
		return
	}
	stack, err := u.st.Stack(ctx, key)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	for _, e := range stack {
		v.Layers = append(v.Layers, layerView{Name: e.Layer, Effective: e.Effective, Tombstone: e.Value.Tombstone})
	}
	hist, err := u.st.History(ctx, audit.HistoryQuery{Scope: audit.Scope{Key: key}, Limit: keyHistoryPage, Before: before})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if v.Current == nil && len(hist.Revisions) == 0 && before == 0 {
		u.notFound(w, r, fmt.Sprintf("There is no key %q, and no key of that name ever existed.", key))
		return
	}
	latest := int64(0)
	if v.Current != nil {
		latest = v.Current.ModRev
	} else if before == 0 && len(hist.Revisions) > 0 {
		latest = hist.Revisions[0].Rev
	}
	for _, rev := range hist.Revisions {
		row := keyRow{Revision: rev, Latest: rev.Rev == latest}
		if len(rev.Changes) > 0 {
			c := rev.Changes[0]
			switch {
			case c.Old == nil:
				row.Op = "create"
			case c.New == nil:
				row.Op = "delete"
			default:
				row.Op = "update"
			}
			if c.New != nil {
				row.Version, row.Size = c.New.Version, len(c.New.Value)
				if c.New.Withheld() {
					row.Size = c.New.Length
				}
			}
		}
		row.Changes = nil
		v.History = append(v.History, row)
	}
	if hist.Next > 0 {
		v.NextURL = keyURL(u.opts.base, key) + "?before=" + strconv.FormatInt(hist.Next, 10)
	}
	u.compare(r, &v, hist.Revisions, cur)
	u.render(w, r, http.StatusOK, "key", page{Title: key, Rev: cur, Data: v})
}

// compare fills in the diff of the key between revisions a and b: those of
// the query, or by default the key's last change.
func (u *ui) compare(r *http.Request, v *keyView, hist []audit.Revision, cur int64) {
	q := r.URL.Query()
	sa, sb := q.Get("a"), q.Get("b")
	var a, b int64
	if sa == "" && sb == "" {
		if len(hist) == 0 || len(hist[0].Changes) == 0 {
			return
		}
		b = hist[0].Rev
		if old := hist[0].Changes[0].Old; old != nil {
			a = old.ModRev
		}
	} else {
		var errA, errB error
		a, errA = strconv.ParseInt(sa, 10, 64)
		b, errB = strconv.ParseInt(sb, 10, 64)
		if sb == "" {
			b, errB = cur, nil
		}
		if errA != nil || errB != nil || a < 0 || b < 0 {
			v.CompareErr = "pick two revisions to compare"
			return
		}
		if a > b {
			a, b = b, a
		}
	}
	v.A, v.B = a, b
	changes, err := u.st.Diff(r.Context(), audit.Scope{Key: v.Key}, a, b)
	if err != nil {
		v.CompareErr = apierror.Classify(err).Message
		return
	}
	if len(changes) == 1 {
		cv := viewChange(changes[0], u.opts.secret)
		v.Compare = &cv
	}
}

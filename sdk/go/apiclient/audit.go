package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/configd/configd/api"
)

// HistoryQuery selects revisions for History. At most one of Key and
// Prefix is set; neither means the whole keyspace.
type HistoryQuery struct {
	// Key limits the history to revisions that touched this key.
	Key string
	// Prefix limits it to revisions that touched a key under this prefix.
	Prefix string
	// Actor keeps only the revisions this actor made.
	Actor string
	// Limit is the page size; 0 leaves it to configd.
	Limit int
	// Cursor is the NextCursor of the previous page; "" is the first page.
	Cursor string
}

// History returns one page of the revisions that match q, newest first.
// Pass the answer's NextCursor as q.Cursor for the next page; it is empty
// on the last one.
func (c *Client) History(ctx context.Context, q HistoryQuery) (api.HistoryResponse, error) {
	v := url.Values{}
	if q.Key != "" {
		v.Set("key", q.Key)
	}
	if q.Prefix != "" {
		v.Set("prefix", q.Prefix)
	}
	if q.Actor != "" {
		v.Set("actor", q.Actor)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var hr api.HistoryResponse
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/history", query: v}, &hr)
	return hr, err
}

// Revision returns revision rev with all its changes. A revision that does
// not exist or is no longer retained is an error matching ErrRevisionGone.
func (c *Client) Revision(ctx context.Context, rev int64) (api.Revision, error) {
	var r api.Revision
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/revisions/" + strconv.FormatInt(rev, 10)}, &r)
	return r, err
}

// ScopeOption narrows Diff to one key or one prefix.
type ScopeOption func(*scope)

type scope struct{ key, prefix string }

// Key narrows a Diff to one key.
func Key(key string) ScopeOption { return func(s *scope) { s.key = key } }

// Prefix narrows a Diff to the keys under prefix.
func Prefix(prefix string) ScopeOption { return func(s *scope) { s.prefix = prefix } }

// Diff returns how the keys in scope (all keys by default) changed from
// the state at revision from to the state at revision to; to 0 means the
// current revision. There is one api.Change per key that differs.
func (c *Client) Diff(ctx context.Context, from, to int64, opts ...ScopeOption) (api.DiffResponse, error) {
	var s scope
	for _, opt := range opts {
		opt(&s)
	}
	v := url.Values{"from": {strconv.FormatInt(from, 10)}}
	if to > 0 {
		v.Set("to", strconv.FormatInt(to, 10))
	}
	if s.key != "" {
		v.Set("key", s.key)
	}
	if s.prefix != "" {
		v.Set("prefix", s.prefix)
	}
	var dr api.DiffResponse
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/diff", query: v}, &dr)
	return dr, err
}

// Rollback commits one revision that makes req's scope what it was at
// revision req.To (or, with req.DryRun, only computes its changes). When
// the scope is already so, nothing is committed and the answer has Changed
// false.
func (c *Client) Rollback(ctx context.Context, req api.RollbackRequest) (api.RollbackResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return api.RollbackResponse{}, fmt.Errorf("client: encoding rollback: %w", err)
	}
	var rr api.RollbackResponse
	err = c.do(ctx, request{method: http.MethodPost, path: "/v1/rollback", body: body, jsonBody: true}, &rr)
	return rr, err
}

// Status returns configd's current revision and version.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var s api.Status
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/status"}, &s)
	return s, err
}

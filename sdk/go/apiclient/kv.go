package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/configd/configd/api"
)

// ReadOption modifies a read (Get, List, Tree).
type ReadOption func(*readOptions)

type readOptions struct {
	rev, minRev int64
	consistent  bool
}

// AtRev reads the state as of revision rev instead of the current one.
func AtRev(rev int64) ReadOption { return func(o *readOptions) { o.rev = rev } }

// MinRev reads a state at least as new as revision rev: a replica of a
// configd cluster that has not applied it yet waits for it (docs/api.md,
// "Reading from a replica"). Pass the revision a write answered to read it
// on another replica.
func MinRev(rev int64) ReadOption { return func(o *readOptions) { o.minRev = rev } }

// Consistent makes the read linearizable: at least as new as every write
// acknowledged, by any replica of the cluster, before it.
func Consistent() ReadOption { return func(o *readOptions) { o.consistent = true } }

func (o readOptions) query(q url.Values) url.Values {
	if o.rev > 0 {
		q.Set("rev", strconv.FormatInt(o.rev, 10))
	}
	if o.minRev > 0 {
		q.Set(api.ParamMinRev, strconv.FormatInt(o.minRev, 10))
	}
	if o.consistent {
		q.Set(api.ParamConsistent, "true")
	}
	return q
}

// WriteOption modifies a write (Put, Delete).
type WriteOption func(*writeOptions)

type writeOptions struct {
	contentType string
	reason      string
	ifModRev    *int64
}

// WithContentType sets the content type of a Put: api.TypeText (the
// default), api.TypeJSON, api.TypeYAML, api.TypeBinary or another MIME type
// configd accepts. Delete ignores it.
func WithContentType(ct string) WriteOption { return func(o *writeOptions) { o.contentType = ct } }

// WithReason records why the write is made, in the revision it creates.
func WithReason(reason string) WriteOption { return func(o *writeOptions) { o.reason = reason } }

// IfModRev makes the write conditional on the key's mod_rev being exactly
// rev (0: the key must not exist). When it is not, nothing is written and
// the error matches ErrConflict.
func IfModRev(rev int64) WriteOption { return func(o *writeOptions) { o.ifModRev = &rev } }

func applyWrite(opts []WriteOption) writeOptions {
	var o writeOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

func applyRead(opts []ReadOption) readOptions {
	var o readOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Get returns key's current value, or its value as of AtRev(rev). A key
// that does not exist is an error matching ErrNotFound. Use the returned
// KeyValue's Bytes method for the value's bytes.
func (c *Client) Get(ctx context.Context, key string, opts ...ReadOption) (api.KeyValue, error) {
	o := applyRead(opts)
	var kv api.KeyValue
	err := c.do(ctx, request{method: http.MethodGet, path: kvPath(key), query: o.query(url.Values{})}, &kv)
	return kv, err
}

// Put sets key to value as one new revision. When the value and content
// type equal the current ones, nothing is recorded and the answer has
// Changed false and the current Rev.
func (c *Client) Put(ctx context.Context, key string, value []byte, opts ...WriteOption) (api.WriteResponse, error) {
	o := applyWrite(opts)
	if !headerSafe(o.reason) {
		// A reason with a line break cannot travel in a header; a
		// transaction of one op carries it in its body instead.
		op := api.TxnOp{Op: "put", Key: key, ContentType: o.contentType, IfModRev: o.ifModRev}
		op.Value, op.Encoding = api.EncodeValue(value)
		return c.Txn(ctx, api.TxnRequest{Reason: o.reason, Ops: []api.TxnOp{op}})
	}
	h := http.Header{}
	if o.contentType != "" {
		h.Set("Content-Type", o.contentType)
	}
	if o.reason != "" {
		h.Set(api.HeaderReason, o.reason)
	}
	q := url.Values{}
	if o.ifModRev != nil {
		q.Set("if_mod_rev", strconv.FormatInt(*o.ifModRev, 10))
	}
	if value == nil {
		value = []byte{}
	}
	var wr api.WriteResponse
	err := c.do(ctx, request{method: http.MethodPut, path: kvPath(key), query: q, header: h, body: value}, &wr)
	return wr, err
}

// Delete deletes key as one new revision. A key that does not exist is an
// error matching ErrNotFound, except under IfModRev, where it is a conflict
// unless IfModRev(0) was asked for (then nothing changes).
func (c *Client) Delete(ctx context.Context, key string, opts ...WriteOption) (api.WriteResponse, error) {
	o := applyWrite(opts)
	if o.ifModRev != nil || !headerSafe(o.reason) {
		// The transaction route is the one that states compare-and-set
		// semantics for a delete.
		op := api.TxnOp{Op: "delete", Key: key, IfModRev: o.ifModRev}
		return c.Txn(ctx, api.TxnRequest{Reason: o.reason, Ops: []api.TxnOp{op}})
	}
	h := http.Header{}
	if o.reason != "" {
		h.Set(api.HeaderReason, o.reason)
	}
	var wr api.WriteResponse
	err := c.do(ctx, request{method: http.MethodDelete, path: kvPath(key), header: h}, &wr)
	return wr, err
}

// List returns the keys under prefix, sorted, with their values ("" is the
// whole keyspace; "app" and "app/" both mean every key under app/).
func (c *Client) List(ctx context.Context, prefix string, opts ...ReadOption) (api.ListResponse, error) {
	o := applyRead(opts)
	q := o.query(url.Values{"prefix": {prefix}})
	var lr api.ListResponse
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/kv", query: q}, &lr)
	return lr, err
}

// Tree returns the keys under prefix as nested JSON objects (see
// api.TreeResponse).
func (c *Client) Tree(ctx context.Context, prefix string, opts ...ReadOption) (api.TreeResponse, error) {
	o := applyRead(opts)
	q := o.query(url.Values{"prefix": {prefix}, "format": {"tree"}})
	var tr api.TreeResponse
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/kv", query: q}, &tr)
	return tr, err
}

// Txn commits all of txn's operations as one revision, or none of them
// when one of their IfModRev conditions fails (an error matching
// ErrConflict).
func (c *Client) Txn(ctx context.Context, txn api.TxnRequest) (api.WriteResponse, error) {
	body, err := json.Marshal(txn)
	if err != nil {
		return api.WriteResponse{}, fmt.Errorf("client: encoding transaction: %w", err)
	}
	var wr api.WriteResponse
	err = c.do(ctx, request{method: http.MethodPost, path: "/v1/txn", body: body, jsonBody: true}, &wr)
	return wr, err
}

// headerSafe reports whether s can be sent as an HTTP header value as it is.
func headerSafe(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f })
}

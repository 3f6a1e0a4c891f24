package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/configd/configd/api"
)

// The JSON Schemas per prefix (docs/schemas.md). prefix is in any form a
// prefix takes: "app" and "app/" are app/'s, "" the whole keyspace's.

// SchemaOption configures SetSchema.
type SchemaOption func(*schemaOptions)

type schemaOptions struct {
	reason string
	force  bool
}

// SchemaReason records why the schema is set or deleted.
func SchemaReason(reason string) SchemaOption { return func(o *schemaOptions) { o.reason = reason } }

// Force sets a schema that the current state breaks (the revision's reason
// says it was forced).
func Force() SchemaOption { return func(o *schemaOptions) { o.force = true } }

func schemaPath(prefix string) string { return pathUnder("/v1/schemas/", prefix) }

func (o schemaOptions) header() http.Header {
	h := http.Header{}
	if o.reason != "" {
		h.Set(api.HeaderReason, o.reason)
	}
	return h
}

// SetSchema sets the JSON Schema of prefix to schema (its JSON) as one new
// revision. An invalid schema matches ErrBadRequest; one the current state
// breaks matches ErrSchema (unless Force).
func (c *Client) SetSchema(ctx context.Context, prefix string, schema []byte, opts ...SchemaOption) (api.WriteResponse, error) {
	var o schemaOptions
	for _, opt := range opts {
		opt(&o)
	}
	q := url.Values{}
	if o.force {
		q.Set(api.QueryForce, "true")
	}
	var wr api.WriteResponse
	err := c.do(ctx, request{method: http.MethodPut, path: schemaPath(prefix), query: q, header: o.header(), body: schema, jsonBody: true}, &wr)
	return wr, err
}

// DeleteSchema deletes the JSON Schema of prefix as one new revision
// (Changed false when it had none).
func (c *Client) DeleteSchema(ctx context.Context, prefix string, opts ...SchemaOption) (api.WriteResponse, error) {
	var o schemaOptions
	for _, opt := range opts {
		opt(&o)
	}
	var wr api.WriteResponse
	err := c.do(ctx, request{method: http.MethodDelete, path: schemaPath(prefix), header: o.header()}, &wr)
	return wr, err
}

// Schema returns the JSON Schema of prefix; ErrNotFound when it has none.
func (c *Client) Schema(ctx context.Context, prefix string) (api.Schema, error) {
	var s api.Schema
	err := c.do(ctx, request{method: http.MethodGet, path: schemaPath(prefix)}, &s)
	return s, err
}

// Schemas returns every schema the token may read, sorted by prefix.
func (c *Client) Schemas(ctx context.Context) (api.SchemasResponse, error) {
	var sr api.SchemasResponse
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/schemas"}, &sr)
	return sr, err
}

// SchemaHistory returns the revisions that set or deleted prefix's schema,
// newest first, limit at a time (0: configd's default) before cursor (""
// for the newest; then the previous page's NextCursor).
func (c *Client) SchemaHistory(ctx context.Context, prefix string, limit int, cursor string) (api.HistoryResponse, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var hr api.HistoryResponse
	err := c.do(ctx, request{method: http.MethodGet, path: pathUnder("/v1/schema-history/", prefix), query: q}, &hr)
	return hr, err
}

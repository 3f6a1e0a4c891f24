// Package api holds the JSON types of configd's HTTP API, version 1. The
// server encodes them and the Go client decodes them; docs/api.md describes
// the routes that carry them.
package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Headers that carry who made a change and why.
const (
	// HeaderActor names the actor of a write. Until authentication exists
	// configctl sets it from --as; later an authenticated identity replaces it.
	HeaderActor = "X-Configd-Actor"
	// HeaderReason carries the reason of a PUT or DELETE.
	HeaderReason = "X-Configd-Reason"
	// HeaderRev carries the store's revision on every response that reads or
	// writes the store. On a read of GET /v1/kv or /v1/kv/{key} it may also
	// be sent: the revision the answer must be at least as new as (like
	// ParamMinRev), for reading a write taken by another replica.
	HeaderRev = "X-Configd-Rev"
)

// A read that must be at least this new (configd replicas, docs/ha.md):
// on GET /v1/kv and GET /v1/kv/{key} as query parameters, on the gRPC
// API's Get and List as metadata. The replica waits until it has applied
// the revision asked (at most configd's --read-wait), else answers 503
// unavailable.
const (
	// ParamMinRev=N: at least as new as revision N.
	ParamMinRev = "min_rev"
	// ParamConsistent=true: a linearizable read, at least as new as every
	// write acknowledged by any replica before it.
	ParamConsistent = "consistent"
	// MetadataMinRev and MetadataConsistent are the gRPC metadata of the
	// same meaning (a decimal revision; "true").
	MetadataMinRev     = "x-configd-rev"
	MetadataConsistent = "x-configd-consistent"
)

// Content types a value may have.
const (
	TypeText   = "text/plain"
	TypeJSON   = "application/json"
	TypeYAML   = "application/yaml"
	TypeBinary = "application/octet-stream"
)

// Encodings of Value.Value in JSON.
const (
	// EncodingBase64 marks a value that is not valid UTF-8 and is sent as
	// standard base64. An empty encoding means the value is the string itself.
	EncodingBase64 = "base64"
)

// KeyValue is a key with its value and its revisions.
type KeyValue struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	Encoding    string `json:"encoding,omitempty"`
	ContentType string `json:"content_type"`
	CreateRev   int64  `json:"create_rev"`
	ModRev      int64  `json:"mod_rev"`
	Version     int64  `json:"version"`
	// Secret marks a secret key's value (PUT ?secret=true): encrypted at
	// rest, and shown only to readers of the key (GET, list, watch).
	Secret bool `json:"secret,omitempty"`
	// Hash is set when the value is withheld (history, revisions, diffs,
	// rollbacks; a list over a connection that is neither TLS nor
	// loopback): Value is then empty, and Hash, a keyed digest
	// ("hmac-sha256:" and 16 hex digits), and Length, the value's size in
	// bytes, stand for it. Equal digests of one key mean equal values.
	Hash   string `json:"hash,omitempty"`
	Length int    `json:"length,omitempty"`
}

// Withheld reports whether the value is withheld (see Hash).
func (kv KeyValue) Withheld() bool { return kv.Hash != "" }

// EncodeValue returns v as a JSON-safe string and its encoding.
func EncodeValue(v []byte) (value, encoding string) {
	if utf8.Valid(v) {
		return string(v), ""
	}
	return base64.StdEncoding.EncodeToString(v), EncodingBase64
}

// ErrEncoding reports a value encoding other than "" and EncodingBase64.
var ErrEncoding = errors.New("unknown value encoding")

// DecodeValue reverses EncodeValue. An encoding it does not know (from a newer
// server, or a hand-written request) is an ErrEncoding, never read as text.
func DecodeValue(value, encoding string) ([]byte, error) {
	switch encoding {
	case "":
		return []byte(value), nil
	case EncodingBase64:
		return base64.StdEncoding.DecodeString(value)
	}
	return nil, fmt.Errorf("%w %q: want empty or %q", ErrEncoding, encoding, EncodingBase64)
}

// Bytes returns the value's bytes, decoding base64 when needed.
func (kv KeyValue) Bytes() ([]byte, error) { return DecodeValue(kv.Value, kv.Encoding) }

// WriteResponse answers a PUT, a DELETE or a transaction.
type WriteResponse struct {
	// Rev is the revision the write created, or the current revision when
	// Changed is false (the write changed nothing and recorded nothing).
	Rev     int64 `json:"rev"`
	Changed bool  `json:"changed"`
}

// ListResponse answers GET /v1/kv?prefix=P.
type ListResponse struct {
	Rev    int64      `json:"rev"`
	Prefix string     `json:"prefix"`
	KVs    []KeyValue `json:"kvs"`
}

// TreeResponse answers GET /v1/kv?prefix=P&format=tree: the keys under P as
// nested JSON objects. JSON values are embedded as JSON; YAML values are
// converted to JSON; other values are strings.
type TreeResponse struct {
	Rev    int64          `json:"rev"`
	Prefix string         `json:"prefix"`
	Tree   map[string]any `json:"tree"`
}

// TxnOp is one operation of a transaction.
type TxnOp struct {
	// Op is "put" or "delete".
	Op          string `json:"op"`
	Key         string `json:"key"`
	Value       string `json:"value,omitempty"`
	Encoding    string `json:"encoding,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	// IfModRev, when set, makes the whole transaction conditional on this
	// key's mod_rev being exactly this value; 0 means the key must not exist.
	IfModRev *int64 `json:"if_mod_rev,omitempty"`
	// Secret, on a put, marks the key secret (as PUT ?secret=true).
	Secret bool `json:"secret,omitempty"`
}

// TxnRequest is the body of POST /v1/txn.
type TxnRequest struct {
	Reason string  `json:"reason,omitempty"`
	Ops    []TxnOp `json:"ops"`
}

// Change is what one revision (or a diff) did to one key. Old is absent when
// the key did not exist before, New when it does not exist after.
type Change struct {
	Key string `json:"key"`
	// Op is "put" or "delete".
	Op  string    `json:"op"`
	Old *KeyValue `json:"old,omitempty"`
	New *KeyValue `json:"new,omitempty"`
}

// Revision is one committed revision.
type Revision struct {
	Rev    int64     `json:"rev"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Reason string    `json:"reason,omitempty"`
	Origin string    `json:"origin"`
	// RollbackTo is the revision this one rolled back to, or 0.
	RollbackTo int64 `json:"rollback_to,omitempty"`
	// NumChanges counts every key the revision changed, even when Changes
	// is limited to the scope of a query.
	NumChanges int      `json:"num_changes"`
	Changes    []Change `json:"changes"`
}

// HistoryResponse answers GET /v1/history. Pass NextCursor back as cursor
// for the next page; it is empty on the last page.
type HistoryResponse struct {
	Revisions  []Revision `json:"revisions"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// DiffResponse answers GET /v1/diff: how the scope changed from revision From
// to revision To.
type DiffResponse struct {
	From    int64    `json:"from"`
	To      int64    `json:"to"`
	Changes []Change `json:"changes"`
}

// RollbackRequest is the body of POST /v1/rollback. Exactly one of Key and
// Prefix is set; Prefix "" with All set means the whole keyspace.
type RollbackRequest struct {
	Key    string `json:"key,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	All    bool   `json:"all,omitempty"`
	To     int64  `json:"to"`
	Reason string `json:"reason,omitempty"`
	// DryRun computes the changes without committing them.
	DryRun bool `json:"dry_run,omitempty"`
	// ExpectRev, when > 0, refuses the rollback with 409 if any key in the
	// scope changed after this revision (the diff the user saw is stale).
	ExpectRev int64 `json:"expect_rev,omitempty"`
}

// RollbackResponse answers POST /v1/rollback.
type RollbackResponse struct {
	Rev     int64    `json:"rev"`
	Changed bool     `json:"changed"`
	DryRun  bool     `json:"dry_run,omitempty"`
	Changes []Change `json:"changes"`
}

// Status answers GET /v1/status.
type Status struct {
	Rev     int64  `json:"rev"`
	Version string `json:"version"`
}

// Error codes, each with the HTTP status that carries it.
const (
	CodeBadKey          = "bad_key"          // 400
	CodeBadRequest      = "bad_request"      // 400
	CodeBadRevision     = "bad_revision"     // 400: a future revision, reversed range
	CodeUnauthenticated = "unauthenticated"  // 401: no bearer token, or one configd does not know (or revoked)
	CodeForbidden       = "forbidden"        // 403: the token lacks the right, or a cross-origin write from a browser
	CodeNotFound        = "not_found"        // 404
	CodeRevisionGone    = "revision_gone"    // 404: revision does not exist or is no longer retained
	CodeConflict        = "conflict"         // 409
	CodeTooLarge        = "too_large"        // 413
	CodeBadContentType  = "bad_content_type" // 415
	CodeInvalidValue    = "invalid_value"    // 422
	CodeNoMasterKey     = "no_master_key"    // 400: a secret written to a configd without --master-key-file
	CodeRateLimited     = "rate_limited"     // 429: the identity sent more requests than --rate-limit allows; see Retry-After
	CodeTooManyWatches  = "too_many_watches" // 429: the identity has --max-watches-per-identity watches open
	CodeUnavailable     = "unavailable"      // 503
	CodeDiskFull        = "disk_full"        // 507: the disk holding configd's database is full; nothing was written
	CodeRequestTimeout  = "request_timeout"  // 408: the request body did not arrive within --body-read-timeout
	CodeInternal        = "internal"         // 500
)

// ErrorBody is the payload of an error.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Rev is the current revision, on conflicts.
	Rev int64 `json:"rev,omitempty"`
	// Key names the key at fault, when there is one.
	Key string `json:"key,omitempty"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// CodeStoreUnavailable: a replica of a configd cluster (configd --store
// etcd) cannot reach its cluster's etcd, or etcd has no quorum (503): a
// write was not acknowledged (it may still have been committed, see
// docs/ha.md); reads and watches go on from what the replica has.
const CodeStoreUnavailable = "store_unavailable"

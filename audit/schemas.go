package audit

import (
	"context"
	"fmt"
	"sort"

	"github.com/configd/configd/audit/record"
	"github.com/configd/configd/keyspace"
)

// A prefix's JSON Schema is a record of the store: the value of the
// reserved key keyspace.SchemaKey(prefix), which no key's read, write or
// watch reaches. Setting, changing or deleting it is a revision, audited,
// chained, replicated and backed up as a key's change is; every write,
// rollback and source snapshot is checked against the schemas it leaves
// (docs/schemas.md).

// SchemaChange says who sets or deletes a schema, and why.
type SchemaChange struct {
	Actor, Reason, Origin string
	// Force sets a schema that the current state breaks; the revision's
	// reason says it was forced.
	Force bool
}

// Schema is a prefix's JSON Schema as stored.
type Schema struct {
	Prefix string // canonical; "" is the whole keyspace
	// Schema is the schema's JSON, as it was set.
	Schema []byte
	// CreateRev, ModRev and Version are its record's, as a key's.
	CreateRev, ModRev, Version int64
}

// CheckSchemas reports whether ops, made on top of the current state,
// would keep to the JSON Schemas: nil, or the first violation (a
// *SchemaError). It writes nothing; it is for what clients see before the
// store holds it (a rollout's new values). Every revision is checked
// again when it is written.
func (s *Store) CheckSchemas(ops []Op) error { return s.w.CheckSchemas(ops) }

// SetSchema sets the JSON Schema of prefix (any form keyspace.Prefix
// takes) to doc and returns the revision once it is durable. An invalid
// schema wraps ErrBadRequest with the compiler's message; one that the
// current state under the prefix breaks is a *SchemaError (Existing),
// unless ch.Force. Setting the schema it has records nothing.
func (s *Store) SetSchema(ctx context.Context, prefix string, doc []byte, ch SchemaChange) (Revision, error) {
	p, err := keyspace.Prefix(prefix)
	if err != nil {
		return Revision{}, err
	}
	reason := ch.Reason
	if ch.Force {
		reason = "forced (the current state may break the schema)"
		if ch.Reason != "" {
			reason += ": " + ch.Reason
		}
	}
	txn := Txn{Actor: ch.Actor, Reason: reason, Origin: ch.Origin,
		Ops: []Op{{Type: OpPut, Key: keyspace.SchemaKey(p), Value: doc}}}
	return s.w.CommitSchema(ctx, txn, ch.Force)
}

// DeleteSchema deletes the JSON Schema of prefix and returns the revision
// once it is durable; deleting a schema that does not exist records
// nothing.
func (s *Store) DeleteSchema(ctx context.Context, prefix string, ch SchemaChange) (Revision, error) {
	p, err := keyspace.Prefix(prefix)
	if err != nil {
		return Revision{}, err
	}
	txn := Txn{Actor: ch.Actor, Reason: ch.Reason, Origin: ch.Origin,
		Ops: []Op{{Type: OpDelete, Key: keyspace.SchemaKey(p)}}}
	return s.w.CommitSchema(ctx, txn, false)
}

// GetSchema returns the current JSON Schema of prefix; ErrNotFound when
// it has none.
func (s *Store) GetSchema(ctx context.Context, prefix string) (Schema, error) {
	p, err := keyspace.Prefix(prefix)
	if err != nil {
		return Schema{}, err
	}
	kv := s.cur.Get(keyspace.SchemaKey(p))
	if kv == nil {
		return Schema{}, fmt.Errorf("%w: no schema for prefix %q", ErrNotFound, p)
	}
	return schemaOf(p, kv), nil
}

// Schemas returns every current schema, sorted by prefix.
func (s *Store) Schemas(ctx context.Context) ([]Schema, error) {
	var out []Schema
	s.cur.Range(keyspace.SchemaKey(""), func(kv *record.KeyValue) {
		if p, ok := keyspace.SchemaPrefix(kv.Key); ok {
			out = append(out, schemaOf(p, kv))
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix < out[j].Prefix })
	return out, nil
}

func schemaOf(p string, kv *record.KeyValue) Schema {
	return Schema{Prefix: p, Schema: kv.Value, CreateRev: kv.CreateRev, ModRev: kv.ModRev, Version: kv.Version}
}

// SchemaHistory returns the revisions that set or deleted prefix's
// schema, newest first, paged as History (q's Scope is ignored).
func (s *Store) SchemaHistory(ctx context.Context, prefix string, q HistoryQuery) (HistoryPage, error) {
	p, err := keyspace.Prefix(prefix)
	if err != nil {
		return HistoryPage{}, err
	}
	return s.r.SchemaHistory(ctx, p, q)
}

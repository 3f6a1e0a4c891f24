package commit

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/configd/configd/audit/internal/schema"
	"github.com/configd/configd/audit/record"
	"github.com/configd/configd/keyspace"
)

// The schemas: a prefix's JSON Schema is a record of the store, the value
// of key keyspace.SchemaKey(prefix), so it is versioned, audited, chained,
// replicated and backed up as every key is. The decider checks each
// revision against the schemas it leaves (docs/schemas.md).

// CommitSchema commits txn, whose one op sets (a put of the schema's
// JSON) or deletes the schema record of a prefix (keyspace.SchemaKey),
// and returns the revision once it is durable. A put's schema must
// compile; unless force, the state under the prefix must keep to it (a
// *record.SchemaError otherwise).
func (w *Writer) CommitSchema(ctx context.Context, txn record.Txn, force bool) (record.Revision, error) {
	p, err := w.QueueSchema(ctx, txn, force)
	if err != nil {
		return record.Revision{}, err
	}
	return p.Wait()
}

// QueueSchema is CommitSchema without the wait (see QueueCommit).
func (w *Writer) QueueSchema(ctx context.Context, txn record.Txn, force bool) (Pending, error) {
	if err := w.validateSchemaTxn(&txn); err != nil {
		return Pending{}, err
	}
	return w.enqueue(ctx, &txnRequest{txn: txn, force: force})
}

// validateSchemaTxn validates a schema's transaction (see CommitSchema).
func (w *Writer) validateSchemaTxn(txn *record.Txn) error {
	if len(txn.Ops) != 1 {
		return fmt.Errorf("%w: a schema's change is one operation", record.ErrBadRequest)
	}
	defaultOrigin(txn)
	txn.Ops = []record.Op{txn.Ops[0]} // the caller's stays as it is
	op := &txn.Ops[0]
	prefix, ok := keyspace.SchemaPrefix(op.Key)
	if !ok {
		return fmt.Errorf("%w: %q is not a schema's record", record.ErrBadRequest, op.Key)
	}
	if p, err := keyspace.Prefix(prefix); err != nil || p != prefix {
		return fmt.Errorf("%w: schema of %q: not a canonical key prefix", keyspace.ErrInvalidKey, prefix)
	}
	if op.Secret || op.IfModRev != nil {
		return fmt.Errorf("%w: a schema is neither secret nor conditional", record.ErrBadRequest)
	}
	switch op.Type {
	case record.OpPut:
		if len(op.Value) > w.maxValueSize {
			return fmt.Errorf("%w: schema %s: %d bytes, the limit is %d", record.ErrTooLarge, schema.Display(prefix), len(op.Value), w.maxValueSize)
		}
		if _, err := w.d.schemas.Get(prefix, op.Value); err != nil {
			return err
		}
		op.ContentType = record.TypeJSON
	case record.OpDelete:
		op.Value, op.ContentType = nil, ""
	default:
		return fmt.Errorf("%w: unknown operation %d", record.ErrBadRequest, op.Type)
	}
	return nil
}

// CheckSchemas reports whether ops, made on top of the current state,
// would keep to the schemas: nil, or the first violation (a
// *record.SchemaError). It is a check made ahead, outside the writer's
// batches (the revisions being decided are not seen), for what is not
// written yet: a rollout's new values, which its clients see before the
// store holds them. Each revision is still checked when it is decided.
func (w *Writer) CheckSchemas(ops []record.Op) error {
	changes := make([]record.Change, len(ops))
	for i, op := range ops {
		changes[i] = record.Change{Key: op.Key, Type: op.Type}
		if op.Type == record.OpPut {
			changes[i].New = &record.KeyValue{Key: op.Key, Value: op.Value, ContentType: op.ContentType, Secret: op.Secret}
		}
	}
	d := decider{schemas: w.d.schemas, cur: w.d.cur} // read-only: no overlay, no batch
	return d.checkSchemas(changes, false)
}

// checkSchemas refuses a revision whose effective changes leave the view
// under a prefix breaking that prefix's schema, as the revision leaves
// both: the first violation, a *record.SchemaError. A schema the revision
// sets is checked against the state unless force. With no schema it costs
// a lookup; a key no schema covers, a lookup per segment of its key.
func (d *decider) checkSchemas(changes []record.Change, force bool) error {
	schemas := d.schemasAfter(changes)
	if len(schemas) == 0 {
		return nil
	}
	check := map[string]bool{} // the prefixes to check; true: the revision sets its schema
	for _, c := range changes {
		if p, ok := keyspace.SchemaPrefix(c.Key); ok {
			if c.New != nil && !force {
				check[p] = true
			}
			continue
		}
		// The prefixes that hold c.Key: "", then each of its parents.
		for i := -1; i < len(c.Key); i++ {
			if i >= 0 && c.Key[i] != '/' {
				continue
			}
			p := c.Key[:i+1]
			if _, ok := schemas[p]; ok {
				if _, seen := check[p]; !seen {
					check[p] = false
				}
			}
		}
	}
	prefixes := make([]string, 0, len(check))
	for p := range check {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	for _, p := range prefixes {
		sv := schemas[p]
		if sv == nil {
			continue // deleted
		}
		s, err := d.schemas.Get(p, sv.Value)
		if err != nil {
			return err
		}
		if err := s.Check(d.view(p, changes)); err != nil {
			var se *record.SchemaError
			if errors.As(err, &se) {
				se.Existing = check[p]
			}
			return err
		}
	}
	return nil
}

// schemasAfter returns the schema records, by prefix, once changes are
// made on top of the batch's state (nil: deleted); nil when there is none.
func (d *decider) schemasAfter(changes []record.Change) map[string]*record.KeyValue {
	var m map[string]*record.KeyValue
	add := func(key string, kv *record.KeyValue) {
		if p, ok := keyspace.SchemaPrefix(key); ok {
			if m == nil {
				m = map[string]*record.KeyValue{}
			}
			m[p] = kv
		}
	}
	d.cur.Range(keyspace.SchemaKey(""), func(kv *record.KeyValue) { add(kv.Key, kv) })
	for k, kv := range d.batchSchemas {
		add(k, kv)
	}
	for _, c := range changes {
		add(c.Key, c.New)
	}
	return m
}

// noteSchemas keeps the schema records that the batch's revisions change
// (the overlay's), so that schemasAfter need not walk the overlay.
func (d *decider) noteSchemas(changes []record.Change) {
	for _, c := range changes {
		if keyspace.Reserved(c.Key) {
			d.batchSchemas[c.Key] = c.New
		}
	}
}

// view is every key under prefix p once changes are made on top of the
// batch's state, as a reader of p would see it.
func (d *decider) view(p string, changes []record.Change) []schema.Entry {
	m := map[string]*record.KeyValue{}
	d.cur.Range(p, func(kv *record.KeyValue) { m[kv.Key] = kv })
	for k, kv := range d.overlay {
		if keyspace.InPrefix(k, p) {
			m[k] = kv
		}
	}
	for _, c := range changes {
		if keyspace.InPrefix(c.Key, p) {
			m[c.Key] = c.New
		}
	}
	out := make([]schema.Entry, 0, len(m))
	for k, kv := range m {
		if kv != nil {
			out = append(out, schema.Entry{Key: k, Value: kv.Value, ContentType: kv.ContentType, Secret: kv.Secret})
		}
	}
	return out
}

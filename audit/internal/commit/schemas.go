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
	if err := w.validateSchemaTxn(&txn); err != nil {
		return record.Revision{}, err
	}
	p, err := w.enqueue(ctx, &txnRequest{txn: txn, force: force})
	if err != nil {
		return record.Revision{}, err
	}
	return p.Wait()
}

// validateSchemaTxn validates a schema's transaction (see CommitSchema).
func (w *Writer) validateSchemaTxn(txn *record.Txn) error {
	if len(txn.Ops) != 1 {
		return fmt.Errorf("%w: a schema's change is one operation", record.ErrBadRequest)
	}
	if txn.Origin == "" {
		txn.Origin = "api"
	}
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

// checkSchemas refuses a revision whose effective changes leave the view
// under a prefix breaking that prefix's schema, as the revision leaves
// both: the first violation, a *record.SchemaError. A schema the revision
// sets is checked against the state unless force. A key no schema covers
// costs a lookup per segment of its key.
func (d *decider) checkSchemas(changes []record.Change, force bool) error {
	after := d.afterFunc(changes)
	check := map[string]bool{} // the prefixes to check; true: the revision sets its schema
	for _, c := range changes {
		if p, ok := keyspace.SchemaPrefix(c.Key); ok {
			if c.New != nil && !force {
				check[p] = true
			}
			continue
		}
		for i := -1; i < len(c.Key); i++ {
			if i >= 0 && c.Key[i] != '/' {
				continue
			}
			// The prefixes that hold c.Key: "", then each of its parents.
			if p := c.Key[:i+1]; !hasKey(check, p) && after(keyspace.SchemaKey(p)) != nil {
				check[p] = false
			}
		}
	}
	if len(check) == 0 {
		return nil
	}
	prefixes := make([]string, 0, len(check))
	for p := range check {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	for _, p := range prefixes {
		sv := after(keyspace.SchemaKey(p))
		if sv == nil {
			continue
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

func hasKey(m map[string]bool, k string) bool {
	_, ok := m[k]
	return ok
}

// afterFunc returns the value of a key once changes are made on top of
// the batch's state.
func (d *decider) afterFunc(changes []record.Change) func(key string) *record.KeyValue {
	byKey := make(map[string]*record.KeyValue, len(changes))
	for _, c := range changes {
		byKey[c.Key] = c.New
	}
	return func(key string) *record.KeyValue {
		if kv, ok := byKey[key]; ok {
			return kv
		}
		if kv, ok := d.overlay[key]; ok {
			return kv
		}
		return d.cur.Get(key)
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

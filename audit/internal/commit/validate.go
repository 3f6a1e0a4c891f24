package commit

import (
	"fmt"

	"github.com/configd/configd/audit/record"
	"github.com/configd/configd/keyspace"
)

// The checks of what a caller asks for, made before a request is queued,
// so that the writer spends its time on deciding and writing only.

// validateTxn validates and normalises a transaction: its keys, values,
// content types (made canonical) and conditions.
func (w *Writer) validateTxn(txn *record.Txn) error {
	if len(txn.Ops) == 0 {
		return fmt.Errorf("%w: transaction has no operations", record.ErrBadRequest)
	}
	defaultOrigin(txn)
	if txn.IfRev != nil && *txn.IfRev < 0 {
		return fmt.Errorf("%w: if_rev %d is negative", record.ErrBadRequest, *txn.IfRev)
	}
	seen := make(map[string]struct{}, len(txn.Ops))
	ops := make([]record.Op, len(txn.Ops))
	for i, op := range txn.Ops {
		// A put writes a key, which must look like what it is; a delete
		// takes any key, one stored before that rule included.
		check := keyspace.Validate
		if op.Type == record.OpPut {
			check = keyspace.ValidateNew
		}
		if err := check(op.Key); err != nil {
			return err
		}
		if _, dup := seen[op.Key]; dup {
			return fmt.Errorf("%w: key %q appears more than once in one transaction", record.ErrBadRequest, op.Key)
		}
		seen[op.Key] = struct{}{}
		switch op.Type {
		case record.OpPut:
			ct, err := record.NormalizeContentType(op.ContentType)
			if err != nil {
				return fmt.Errorf("key %q: %w", op.Key, err)
			}
			op.ContentType = ct
			if len(op.Value) > w.maxValueSize {
				return fmt.Errorf("%w: key %q: value is %d bytes, the limit is %d", record.ErrTooLarge, op.Key, len(op.Value), w.maxValueSize)
			}
			if err := record.CheckValue(op.Key, op.Value, ct); err != nil {
				if op.Secret || w.d.cur.IsSecret(op.Key) {
					// The parser's message may quote the value.
					return fmt.Errorf("%w: key %q: the value does not parse as %s (details withheld: the key is secret)", record.ErrInvalidValue, op.Key, ct)
				}
				return err
			}
			if op.Value == nil {
				op.Value = []byte{}
			}
		case record.OpDelete:
			if op.Secret {
				return fmt.Errorf("%w: key %q: a delete cannot mark a key secret", record.ErrBadRequest, op.Key)
			}
			op.Value, op.ContentType = nil, ""
		default:
			return fmt.Errorf("%w: key %q: unknown operation %d", record.ErrBadRequest, op.Key, op.Type)
		}
		if op.IfModRev != nil && *op.IfModRev < 0 {
			return fmt.Errorf("%w: key %q: if_mod_rev must be >= 0", record.ErrBadRequest, op.Key)
		}
		ops[i] = op
	}
	txn.Ops = ops
	return nil
}

// defaultOrigin records a write that names no origin as the API's.
func defaultOrigin(txn *record.Txn) {
	if txn.Origin == "" {
		txn.Origin = "api"
	}
}

// validateSnapshot checks a source's snapshot of its layer and returns it
// normalised (canonical content types, no nil values).
func (w *Writer) validateSnapshot(layer string, snapshot map[string]record.LayerValue) (map[string]record.LayerValue, error) {
	if !w.d.layers.IsSource(layer) {
		return nil, fmt.Errorf("%w: %q is not a configured source layer", record.ErrBadRequest, layer)
	}
	snap := make(map[string]record.LayerValue, len(snapshot))
	for k, v := range snapshot {
		if err := keyspace.Validate(k); err != nil {
			return nil, fmt.Errorf("source %s: %w", layer, err)
		}
		if v.Tombstone {
			return nil, fmt.Errorf("%w: source %s: key %q: only the store layer holds tombstones", record.ErrBadRequest, layer, k)
		}
		ct, err := record.NormalizeContentType(v.ContentType)
		if err != nil {
			return nil, fmt.Errorf("source %s: key %q: %w", layer, k, err)
		}
		if len(v.Value) > w.maxValueSize {
			return nil, fmt.Errorf("%w: source %s: key %q: value is %d bytes, the limit is %d", record.ErrTooLarge, layer, k, len(v.Value), w.maxValueSize)
		}
		if err := record.CheckValue(k, v.Value, ct); err != nil {
			return nil, fmt.Errorf("source %s: %w", layer, err)
		}
		if v.Value == nil {
			v.Value = []byte{}
		}
		snap[k] = record.LayerValue{Value: v.Value, ContentType: ct}
	}
	return snap, nil
}

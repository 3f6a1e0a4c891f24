package requests

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
)

// Direct checks the writes and rollbacks that do not come through a
// change request (every door's, the web UI's rollbacks) against the
// policies that require requests. Sources are not checked: their changes
// are reviewed where they live.
type Direct struct {
	st Getter
	// checks are the policies' (policyChecks), then the others given to
	// NewDirect.
	checks []Check
	// parsed is the policies as last read: a write costs a read of the
	// record, not its parse.
	parsed *Parsed[policies]
}

// Check is a further rule of the direct writes and rollbacks, that
// Direct applies after its own (rollouts.Guard: the keys of running
// rollouts).
type Check interface {
	CheckTxn(ctx context.Context, txn audit.Txn) error
	CheckRollback(ctx context.Context, req audit.RollbackRequest) error
}

// NewDirect returns the checks of direct writes to st, and also's.
func NewDirect(st Getter, also ...Check) *Direct {
	d := &Direct{st: st, parsed: NewParsed(keyspace.PoliciesKey, parsePolicies)}
	d.checks = append([]Check{policyChecks{d}}, also...)
	return d
}

// policies returns the current policies.
func (d *Direct) policies(ctx context.Context) (policies, error) {
	ps, _, err := d.parsed.Get(ctx, d.st)
	return ps, err
}

// Parsed keeps the parse of one key's record by its mod_rev, for checks
// that read the record on every write: they parse it only when it
// changed. It is safe for concurrent use; T must be read-only once
// parsed.
type Parsed[T any] struct {
	key   string
	parse func([]byte) (T, error)
	last  atomic.Pointer[parsedRecord[T]]
}

type parsedRecord[T any] struct {
	modRev int64
	v      T
}

// NewParsed returns the keeper of key's record, read with parse.
func NewParsed[T any](key string, parse func([]byte) (T, error)) *Parsed[T] {
	return &Parsed[T]{key: key, parse: parse}
}

// Get returns the parse of the record in st now, and false (and T's zero
// value) when the key does not exist.
func (p *Parsed[T]) Get(ctx context.Context, st Getter) (T, bool, error) {
	var zero T
	kv, err := st.Get(ctx, p.key)
	if errors.Is(err, audit.ErrNotFound) {
		return zero, false, nil
	}
	if err != nil {
		return zero, false, err
	}
	if last := p.last.Load(); last != nil && last.modRev == kv.ModRev {
		return last.v, true, nil
	}
	v, err := p.parse(kv.Value)
	if err != nil {
		return zero, false, err
	}
	p.last.Store(&parsedRecord[T]{modRev: kv.ModRev, v: v})
	return v, true, nil
}

// policyChecks are the checks of the policies, Direct's first.
type policyChecks struct{ d *Direct }

func (c policyChecks) CheckTxn(ctx context.Context, txn audit.Txn) error {
	return c.d.checkTxn(ctx, txn)
}
func (c policyChecks) CheckRollback(ctx context.Context, req audit.RollbackRequest) error {
	return c.d.checkRollback(ctx, req)
}

// CheckTxn refuses (ErrRequestRequired) txn when it changes a key whose
// nearest policy requires requests, or configd's own keys of requests
// (keyspace.RequestsNS). An op that changes nothing (a put of the value
// the key holds, a delete of a key that does not exist) passes, so that
// configctl apply of a whole keyspace exported as it is still works.
func (d *Direct) CheckTxn(ctx context.Context, txn audit.Txn) error {
	for _, c := range d.checks {
		if err := c.CheckTxn(ctx, txn); err != nil {
			return err
		}
	}
	return nil
}

func (d *Direct) checkTxn(ctx context.Context, txn audit.Txn) error {
	var (
		ps     policies
		loaded bool
	)
	for _, op := range txn.Ops {
		own := keyspace.InPrefix(op.Key, keyspace.RequestsNS)
		var pol Policy
		if !own {
			if !loaded {
				var err error
				if ps, err = d.policies(ctx); err != nil {
					return err
				}
				loaded = true
			}
			if pol = ps.nearest(op.Key); !pol.Require {
				continue
			}
		}
		if same, err := Unchanged(ctx, d.st, op); err != nil || same {
			if err != nil {
				return err
			}
			continue
		}
		if own {
			return Refuse(ErrRequestRequired, "key %q: configd's own keys under %s change only through configctl request and configctl policy",
				op.Key, keyspace.RequestsNS)
		}
		return requiredError(op.Key, pol)
	}
	return nil
}

// Unchanged reports whether op would leave its key of st as it is: the
// doors' checks let such an op through, so that configctl apply of a
// whole keyspace exported as it is still works.
func Unchanged(ctx context.Context, st Getter, op audit.Op) (bool, error) {
	cur, err := st.Get(ctx, op.Key)
	if errors.Is(err, audit.ErrNotFound) {
		return op.Type == audit.OpDelete, nil
	}
	if err != nil || op.Type != audit.OpPut {
		return false, err
	}
	ct, err := audit.NormalizeContentType(op.ContentType)
	if err != nil {
		return false, nil // the store refuses it
	}
	return bytes.Equal(cur.Value, op.Value) && cur.ContentType == ct && (cur.Secret || !op.Secret), nil
}

// Committer commits a transaction: audit.Store.
type Committer interface {
	Commit(ctx context.Context, txn audit.Txn) (audit.Revision, error)
}

// Commit commits txn to st once CheckTxn allows it: a door's write. own
// are writes of configd's own keys that the door keeps with txn's in the
// same revision (its records of them: an etcd lease's, a Consul key's
// flags); CheckTxn does not see them, as no client writes them.
func (d *Direct) Commit(ctx context.Context, st Committer, txn audit.Txn, own ...audit.Op) (audit.Revision, error) {
	if err := d.CheckTxn(ctx, txn); err != nil {
		return audit.Revision{}, err
	}
	if len(own) > 0 {
		txn.Ops = append(txn.Ops[:len(txn.Ops):len(txn.Ops)], own...)
	}
	return st.Commit(ctx, txn)
}

// CheckRollback refuses (ErrRequestRequired) a rollback whose scope
// reaches a prefix whose policy requires requests.
func (d *Direct) CheckRollback(ctx context.Context, req audit.RollbackRequest) error {
	for _, c := range d.checks {
		if err := c.CheckRollback(ctx, req); err != nil {
			return err
		}
	}
	return nil
}

func (d *Direct) checkRollback(ctx context.Context, req audit.RollbackRequest) error {
	sc, err := req.Scope.Canonical()
	if req.DryRun || err != nil {
		return nil // the store refuses a bad scope
	}
	ps, err := d.policies(ctx)
	if err != nil || len(ps) == 0 {
		return err
	}
	scope := sc.Key
	if scope == "" {
		scope = sc.Prefix
	}
	if pol := ps.nearest(scope); pol.Require {
		return requiredError(scope, pol)
	}
	if sc.Key != "" {
		return nil
	}
	for _, pol := range ps {
		if pol.Require && keyspace.InPrefix(pol.Prefix, scope) {
			return requiredError(pol.Prefix, pol)
		}
	}
	return nil
}

func requiredError(target string, pol Policy) error {
	return Refuse(ErrRequestRequired, "%s: the policy of %s takes changes only through change requests: "+
		"propose it (configctl propose %s -f change.yaml), have it approved and publish it", target, display(pol.Prefix), scopeArg(pol.Prefix))
}

func scopeArg(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

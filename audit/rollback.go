package audit

import (
	"context"
	"database/sql"
	"fmt"
	"sort"

	"github.com/configd/configd/audit/internal/chain"
	"github.com/configd/configd/audit/internal/sqlitedb"
)

// Rollback commits one revision that makes req's scope equal to what it was
// at req.To: keys created since are deleted, keys deleted since come back.
// The zero Scope is the whole keyspace. Its reason is "rollback to R"
// (followed by ": " and req.Reason, if any) and its RollbackTo is R. When the
// scope already equals revision To, nothing is committed and the returned
// Revision has the current Rev and no Changes. With DryRun the changes are
// computed and returned (Rev 0) but not committed.
func (s *Store) Rollback(ctx context.Context, req RollbackRequest) (Revision, error) {
	if err := req.Validate(); err != nil {
		return Revision{}, err
	}
	if req.Origin == "" {
		req.Origin = "api"
	}
	if req.DryRun {
		var out Revision
		err := s.readTx(ctx, func(tx *sql.Tx, current int64) error {
			txn, err := s.planRollbackTxn(ctx, tx, &req, current)
			if err != nil {
				return err
			}
			out = Revision{Actor: txn.Actor, Reason: txn.Reason, Origin: txn.Origin, RollbackTo: req.To}
			for _, op := range txn.Ops {
				out.Changes = append(out.Changes, op.change)
			}
			out.NumChanges = len(out.Changes)
			out.Changes, err = s.keys.WithholdChanges(out.Changes)
			return err
		})
		return out, err
	}
	return s.submit(ctx, &request{rollback: &req})
}

// plannedTxn is a rollback's transaction with the change each op makes.
type plannedTxn struct {
	Actor, Reason, Origin string
	Ops                   []plannedOp
}

type plannedOp struct {
	Op
	change Change
}

// planRollbackTxn computes the transaction that rolls req's scope back to
// req.To, given the current state visible through q at revision current.
func (s *Store) planRollbackTxn(ctx context.Context, q sqlitedb.Querier, req *RollbackRequest, current int64) (plannedTxn, error) {
	if req.To > current {
		return plannedTxn{}, fmt.Errorf("%w: revision %d (current revision is %d)", ErrFutureRevision, req.To, current)
	}
	cond, args, err := scopeCond("key", req.Scope)
	if err != nil {
		return plannedTxn{}, err
	}
	h, err := chain.LoadHorizon(ctx, q)
	if err != nil {
		return plannedTxn{}, err
	}
	if req.To < h.Horizon {
		return plannedTxn{}, goneBelow(req.To, h.Horizon)
	}
	if req.ExpectRev > 0 {
		var n int
		err := q.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM changes WHERE `+cond+` AND rev > ? LIMIT 1)`,
			append(append([]any{}, args...), req.ExpectRev)...).Scan(&n)
		if err != nil {
			return plannedTxn{}, fmt.Errorf("audit: rollback: %w", err)
		}
		if n > 0 {
			return plannedTxn{}, &ConflictError{Expected: req.ExpectRev, Rev: current}
		}
	}
	changes, err := diffRange(ctx, q, s.keys, cond, args, req.To, current)
	if err != nil {
		return plannedTxn{}, err
	}
	reason := fmt.Sprintf("rollback to %d", req.To)
	if req.Reason != "" {
		reason += ": " + req.Reason
	}
	t := plannedTxn{Actor: req.Actor, Reason: reason, Origin: req.Origin}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Key < changes[j].Key })
	for _, c := range changes {
		// c turns the state at To into the current one; the rollback is its
		// inverse, conditional on the key still being as we saw it.
		inv := Change{Key: c.Key, Old: c.New, New: c.Old}
		var op Op
		if c.Old == nil {
			inv.Type = OpDelete
			op = Delete(c.Key)
		} else {
			inv.Type = OpPut
			op = Put(c.Key, c.Old.Value, c.Old.ContentType)
			// A secret value comes back as a secret. (A key marked secret
			// since keeps its mark too: the writer sees it in kv.)
			op.Secret = c.Old.Secret
		}
		var modRev int64
		if c.New != nil {
			modRev = c.New.ModRev
		}
		op = op.WithModRev(modRev)
		t.Ops = append(t.Ops, plannedOp{Op: op, change: inv})
	}
	return t, nil
}

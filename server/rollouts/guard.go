package rollouts

import (
	"context"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/requests"
)

// Guard refuses (ErrRolloutActive) the direct writes, transactions and
// rollbacks (every door's, the web UI's) that change a key of a running
// rollout: while it runs, the store holds the old values its clients
// outside the step see, and its record the new ones. A source's changes
// are not checked: completing the rollout refuses to overwrite them.
type Guard struct {
	st  requests.Getter
	idx *requests.Parsed[map[string]int64]
}

// NewGuard returns the guard of st's running rollouts.
func NewGuard(st requests.Getter) *Guard {
	return &Guard{st: st, idx: requests.NewParsed(keyspace.RolloutsActiveKey, parseIndex)}
}

func (g *Guard) index(ctx context.Context) (map[string]int64, error) {
	idx, _, err := g.idx.Get(ctx, g.st)
	return idx, err
}

// CheckTxn refuses txn when it changes a key of a running rollout (an op
// that leaves its key as it is passes, as requests.Direct lets it).
func (g *Guard) CheckTxn(ctx context.Context, txn audit.Txn) error {
	idx, err := g.index(ctx)
	if err != nil || len(idx) == 0 {
		return err
	}
	for _, op := range txn.Ops {
		id, ok := idx[op.Key]
		if !ok {
			continue
		}
		if same, err := requests.Unchanged(ctx, g.st, op); err != nil || same {
			if err != nil {
				return err
			}
			continue
		}
		return activeError(op.Key, id)
	}
	return nil
}

// CheckRollback refuses a rollback whose scope holds a key of a running
// rollout.
func (g *Guard) CheckRollback(ctx context.Context, req audit.RollbackRequest) error {
	sc, err := req.Scope.Canonical()
	if req.DryRun || err != nil {
		return nil // the store refuses a bad scope
	}
	idx, err := g.index(ctx)
	if err != nil || len(idx) == 0 {
		return err
	}
	for key, id := range idx {
		if sc.Key == key || sc.Key == "" && keyspace.InPrefix(key, sc.Prefix) {
			return activeError(key, id)
		}
	}
	return nil
}

func activeError(key string, id int64) error {
	return requests.Refuse(ErrRolloutActive, "%s is in rollout %d: configctl rollout abort %d or complete it first", key, id, id)
}

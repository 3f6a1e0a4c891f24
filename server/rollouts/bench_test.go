package rollouts_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/requests"
	"github.com/configd/configd/server/rollouts"
	"github.com/configd/configd/server/writeops"
)

// BenchmarkGuardCheckTxn is what the rollouts' guard adds to a direct
// write of one key outside any rollout: with no rollout running, and with
// one running over 100 other keys.
func BenchmarkGuardCheckTxn(b *testing.B) {
	st := configdtest.Core(b).Store
	ctx := context.Background()
	txn := audit.Txn{Ops: []audit.Op{audit.Put("app/x", []byte("1"), "")}}
	g := rollouts.NewGuard(st)
	d := writeops.Direct(st)
	run := func(check func(context.Context, audit.Txn) error) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				if err := check(ctx, txn); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("guard/none", run(g.CheckTxn))
	b.Run("direct/none", run(d.CheckTxn))
	reqs := requests.New(st)
	var ops []audit.Op
	for i := range 100 {
		ops = append(ops, audit.Put(fmt.Sprintf("app/k%d", i), []byte("2"), ""))
	}
	rq, err := reqs.Propose(ctx, requests.Draft{Scope: "app/", Author: "alice", Ops: ops})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := rollouts.New(st, reqs).Start(ctx, rollouts.Plan{Request: rq.ID, Steps: steps(b, "10%"), Actor: "alice", AllowEmpty: true}); err != nil {
		b.Fatal(err)
	}
	b.Run("guard/running-100-keys", run(g.CheckTxn))
	b.Run("direct/running-100-keys", run(d.CheckTxn))
}

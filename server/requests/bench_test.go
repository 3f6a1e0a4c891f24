package requests_test

import (
	"context"
	"testing"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/requests"
)

// BenchmarkCheckTxn is what the doors' check adds to a direct write of one
// key: with no policy, and with policies none of which covers the key.
func BenchmarkCheckTxn(b *testing.B) {
	st := configdtest.Core(b).Store
	ctx := context.Background()
	txn := audit.Txn{Ops: []audit.Op{audit.Put("app/x", []byte("1"), "")}}
	d := requests.NewDirect(st)
	run := func(b *testing.B) {
		for b.Loop() {
			if err := d.CheckTxn(ctx, txn); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("no-policy", run)
	book := requests.New(st)
	for _, p := range []string{"db/", "prod/", "billing/", "app/db/"} {
		if _, err := book.SetPolicy(ctx, requests.Policy{Prefix: p, Approvals: 1, Require: true}, "root", ""); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("4-policies", run)
}

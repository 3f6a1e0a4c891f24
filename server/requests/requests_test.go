package requests_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/requests"
)

// TestRacingActionsOnOneRequestAreAllKept: actions that race on one
// request's record each land (the compare-and-set retries on the newer
// record), and racing proposals get distinct ids.
func TestRacingActionsOnOneRequestAreAllKept(t *testing.T) {
	st := configdtest.Core(t).Store
	b := requests.New(st)
	ctx := context.Background()
	draft := requests.Draft{Scope: "app/", Author: "alice", Ops: []audit.Op{audit.Put("app/x", []byte("1"), "")}}
	const n = 6
	var wg sync.WaitGroup
	ids := make(chan int64, n)
	errs := make(chan error, 2*n)
	for range n {
		wg.Go(func() {
			rq, err := b.Propose(ctx, draft)
			errs <- err
			ids <- rq.ID
		})
	}
	wg.Wait()
	close(ids)
	seen := map[int64]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("two proposals got id %d", id)
		}
		seen[id] = true
	}
	for i := range n {
		wg.Go(func() {
			_, err := b.Comment(ctx, 1, fmt.Sprintf("reviewer%d", i), "ok")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rq, _, err := b.Get(ctx, 1)
	if err != nil || len(rq.Comments) != n {
		t.Fatalf("request 1 has %d comments (%v), want %d", len(rq.Comments), err, n)
	}
}

func TestTheNearestPolicyApplies(t *testing.T) {
	st := configdtest.Core(t).Store
	b := requests.New(st)
	ctx := context.Background()
	for _, p := range []requests.Policy{{Prefix: "", Approvals: 1}, {Prefix: "app/", Approvals: 2}, {Prefix: "app/db/", Approvals: 0, Require: true}} {
		if _, err := b.SetPolicy(ctx, p, "root", ""); err != nil {
			t.Fatal(err)
		}
	}
	for scope, want := range map[string]requests.Policy{
		"db/":        {Prefix: "", Approvals: 1},
		"app/":       {Prefix: "app/", Approvals: 2},
		"app/cache/": {Prefix: "app/", Approvals: 2},
		"app/db/":    {Prefix: "app/db/", Require: true},
		"app/dbx/":   {Prefix: "app/", Approvals: 2},
	} {
		if got, err := b.Policy(ctx, scope); err != nil || got != want {
			t.Errorf("policy of %s: %+v (%v), want %+v", scope, got, err, want)
		}
	}
	// Zero approvals without require removes a policy: the shorter one applies.
	if _, err := b.SetPolicy(ctx, requests.Policy{Prefix: "app/"}, "root", ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Policy(ctx, "app/"); got != (requests.Policy{Prefix: "", Approvals: 1}) {
		t.Errorf("after removing app/'s policy: %+v", got)
	}
	d := requests.NewDirect(st)
	err := d.CheckTxn(ctx, audit.Txn{Ops: []audit.Op{audit.Put("app/x", nil, ""), audit.Put("app/db/host", nil, "")}})
	if !errors.Is(err, requests.ErrRequestRequired) {
		t.Errorf("a write to app/db/host: %v, want ErrRequestRequired", err)
	}
	if err := d.CheckRollback(ctx, audit.RollbackRequest{Scope: audit.Scope{Prefix: "app/"}, To: 1}); !errors.Is(err, requests.ErrRequestRequired) {
		t.Errorf("a rollback of app/ (which holds app/db/): %v, want ErrRequestRequired", err)
	}
	if err := d.CheckRollback(ctx, audit.RollbackRequest{Scope: audit.Scope{Prefix: "app/cache/"}, To: 1}); err != nil {
		t.Errorf("a rollback of app/cache/: %v", err)
	}
}

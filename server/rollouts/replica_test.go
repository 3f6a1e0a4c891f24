package rollouts_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/rollout"
	"github.com/configd/configd/server/rollouts"
	"github.com/configd/configd/server/writeops"
)

// TestRolloutsOnReplicas: two replicas of a cluster on etcd. A rollout
// started through one is seen, guarded and acted on through the other;
// their drivers, deciding on the same version, promote it once; complete
// through either writes the new value for the cluster.
func TestRolloutsOnReplicas(t *testing.T) {
	etcd := testserver.Etcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	var ws [2]*world
	for i := range ws {
		e := configdtest.NewEnv(t, configdtest.WithReplicaOf(cli, "/"+t.Name()))
		ws[i] = newWorld(t, e.Store)
	}
	ctx := context.Background()
	ws[0].put("app/limits", "1")
	rec := ws[0].start(func() rollouts.Plan {
		p := ws[0].plan(ws[0].propose("app/limits", "2"), "10%", "100%")
		p.Bake = time.Minute
		return p
	}())
	if err := ws[1].st.WaitRev(ctx, rec.Rev); err != nil {
		t.Fatal(err)
	}
	err = writeops.Direct(ws[1].st).CheckTxn(ctx, audit.Txn{Ops: []audit.Op{audit.Put("app/limits", []byte("9"), "")}})
	if !errors.Is(err, rollouts.ErrRolloutActive) {
		t.Fatalf("a direct write through the other replica: %v", err)
	}

	fleet := &barrier{n: 2, all: make(chan struct{})}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, w := range ws {
		if err := w.st.WaitRev(ctx, ws[0].st.Rev()); err != nil {
			t.Fatal(err)
		}
		w.advance(time.Hour)
		d := rollouts.NewDriver(w.b, fleet, rollouts.WithLogger(configdtest.Discard()))
		wg.Go(func() { errs[i] = d.Pass(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if _, err := ws[1].st.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := ws[1].b.Get(ctx, rec.ID); err != nil || r.Phase != (rollout.Phase{State: rollout.StateActive, Step: 1}) || len(r.Log) != 2 {
		t.Fatalf("two replicas' drivers on one version: %+v, %d notes (%v); want one promote", r.Phase, len(r.Log), err)
	}
	done, err := ws[1].b.Complete(ctx, rec.ID, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range ws {
		if err := w.st.WaitRev(ctx, done.Rev); err != nil {
			t.Fatal(err)
		}
		if got := w.value("app/limits"); got != "2" {
			t.Errorf("replica %d after complete: app/limits=%s", i+1, got)
		}
	}
}

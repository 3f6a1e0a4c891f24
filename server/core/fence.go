package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/apierror"
)

// DefaultReadWait bounds how long a read waits for its store to catch up
// with the revision it names (ReadFence).
const DefaultReadWait = 5 * time.Second

// Fenced is what a ReadFence waits on: audit.Store.
type Fenced interface {
	// Rev is the newest revision applied here.
	Rev() int64
	// WaitRev waits until rev is applied here.
	WaitRev(ctx context.Context, rev int64) error
	// Sync waits until every revision acknowledged before the call, on any
	// replica, is applied here.
	Sync(ctx context.Context) (int64, error)
}

// ReadFence is what a read asks of the revision it reads at, on a replica
// of a configd cluster, whose store may lag behind the replica that took a
// write: the HTTP API's min_rev= (or the X-Configd-Rev request header) and
// consistent=true, and the gRPC API's metadata of the same names. Both
// doors apply it with Await before they read.
type ReadFence struct {
	// MinRev is a revision the read must be at least as new as (0: any).
	MinRev int64
	// Consistent asks for a linearizable read: at least as new as every
	// write acknowledged, by any replica, before the read arrived.
	Consistent bool
}

// Await waits until st is as new as f asks, for at most wait (default
// DefaultReadWait). A store that does not catch up in time gives an error
// the API answers 503 unavailable; one whose shared log does not answer a
// consistent read's question gives audit.ErrStoreUnavailable (503
// store_unavailable). A read that asks nothing returns at once.
func (f ReadFence) Await(ctx context.Context, st Fenced, wait time.Duration) error {
	if !f.Consistent && st.Rev() >= f.MinRev {
		return nil
	}
	if wait <= 0 {
		wait = DefaultReadWait
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	target := f.MinRev
	var err error
	if f.Consistent {
		var head int64
		if head, err = st.Sync(wctx); err == nil && head > target {
			target = head
		}
	}
	if err == nil {
		err = st.WaitRev(wctx, target)
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		want := fmt.Sprintf("revision %d", target)
		if target == 0 {
			want = "the cluster's newest revision"
		}
		return &apierror.Error{Code: api.CodeUnavailable, Message: fmt.Sprintf(
			"this configd is at revision %d and did not reach %s within %s: it is catching up with its cluster; retry, or read from another replica",
			st.Rev(), want, wait)}
	}
	return err
}

// Revisioned is what has a revision: the watch hub.
type Revisioned interface{ Rev() int64 }

// Replica is a store that may be a replica of a cluster: audit.Store.
type Replica interface {
	Fenced
	Replication() audit.Replication
}

// AwaitWatch waits until a watch from revision since can open on hub, fed
// by st, when st is a replica: one that lags behind the replica a client
// watched before may not have applied since yet. It waits for at most wait
// (default DefaultReadWait), as Await. A store that runs alone has every
// revision there is: a newer since stays the client's error
// (audit.ErrFutureRevision, from the hub).
func AwaitWatch(ctx context.Context, st Replica, hub Revisioned, since int64, wait time.Duration) error {
	if hub.Rev() >= since || !st.Replication().Replica {
		return nil
	}
	return ReadFence{MinRev: since}.Await(ctx, hubFenced{st, hub}, wait)
}

// hubFenced is st seen through its hub's revision: the store advances,
// then runs its commit hooks, the hub's among them, in the same goroutine,
// so the hub follows within moments.
type hubFenced struct {
	Fenced
	hub Revisioned
}

func (h hubFenced) Rev() int64 { return h.hub.Rev() }

func (h hubFenced) WaitRev(ctx context.Context, rev int64) error {
	if err := h.Fenced.WaitRev(ctx, rev); err != nil {
		return err
	}
	for h.hub.Rev() < rev {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// Package leasedkey keeps keys of a cluster's etcd alive under a lease of
// their own, so that the other replicas see them while this one lives and
// lose them one lease after it dies or loses etcd: a replica's
// registration (P/replicas/), its SDK clients (P/clients/).
package leasedkey

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Config is what a Keeper needs.
type Config struct {
	Client *clientv3.Client
	// TTL is the lease's, in seconds; Timeout bounds each etcd call.
	TTL     int64
	Timeout time.Duration
	// Tick is how often Publish is called besides a session's start.
	Tick time.Duration
	// What names the keys in the logs ("the replica's registration").
	What   string
	Logger *slog.Logger
	// Publish writes the keys with lease, when they changed since its
	// last call; fresh: a new lease, so it writes them whatever. An error
	// ends the session.
	Publish func(ctx context.Context, lease clientv3.LeaseID, fresh bool) error
}

// Keeper runs sessions until Close: each grants a lease, keeps it alive,
// and calls Publish at once and every Tick, until Publish fails or the
// lease ends; then, after a pause that doubles up to the TTL, a new one.
// A session revokes its lease when it ends, so that a clean stop takes the
// keys away at once.
type Keeper struct {
	c    Config
	stop context.CancelFunc
	done chan struct{}
}

// Start starts keeping c's keys.
func Start(c Config) *Keeper {
	ctx, stop := context.WithCancel(context.Background())
	k := &Keeper{c: c, stop: stop, done: make(chan struct{})}
	go k.run(ctx)
	return k
}

// Close stops the keeper; the lease is revoked before it returns.
func (k *Keeper) Close() {
	k.stop()
	<-k.done
}

func (k *Keeper) run(ctx context.Context) {
	defer close(k.done)
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := k.session(ctx)
		if ctx.Err() != nil {
			return
		}
		k.c.Logger.Debug("waiting for etcd to keep "+k.c.What, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Duration(k.c.TTL)*time.Second)
	}
}

func (k *Keeper) session(ctx context.Context) error {
	gctx, cancel := context.WithTimeout(ctx, k.c.Timeout)
	lease, err := k.c.Client.Grant(gctx, k.c.TTL)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_, _ = k.c.Client.Revoke(rctx, lease.ID)
	}()
	kctx, stopKeep := context.WithCancel(ctx)
	defer stopKeep()
	ka, err := k.c.Client.KeepAlive(kctx, lease.ID)
	if err != nil {
		return err
	}
	tick := time.NewTicker(k.c.Tick)
	defer tick.Stop()
	for fresh := true; ; fresh = false {
		if err := k.c.Publish(ctx, lease.ID, fresh); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-ka:
			if !ok {
				return fmt.Errorf("the lease of %s ended", k.c.What)
			}
		case <-tick.C:
		}
	}
}

package server

import (
	"context"
	"log/slog"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/alarm"
	"github.com/configd/configd/server/requests"
	"github.com/configd/configd/server/rollouts"
)

// rolloutDriver is the daemon's driver of the rollouts (docs/rollouts.md),
// run on every replica: its actions are compare-and-sets of the records,
// so a duplicate of another replica's loses harmlessly.
type rolloutDriver struct {
	*rollouts.Driver
	cancel context.CancelFunc
	done   chan struct{}
}

// startRollouts drives st's rollouts with the clients of every replica
// that clients lists, until stop (or ctx's end). A rollout's abort query
// is asked of its Prometheus (server/alarm).
func startRollouts(ctx context.Context, st *audit.Store, clients *deliveryTracking, logger *slog.Logger) *rolloutDriver {
	d := rollouts.NewDriver(rollouts.New(st, requests.New(st)), clients, rollouts.WithLogger(logger), rollouts.WithAlarm(alarm.New()))
	ctx, cancel := context.WithCancel(ctx)
	rd := &rolloutDriver{Driver: d, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rd.done)
		d.Run(ctx)
	}()
	return rd
}

// stop stops the driver and waits for its pass under way, if any.
func (rd *rolloutDriver) stop() error {
	rd.cancel()
	<-rd.done
	return nil
}

// Clients lists the clients of every replica, for the driver.
func (d *deliveryTracking) Clients(ctx context.Context) ([]api.ClientStatus, error) {
	return d.table.List(ctx, "")
}

package etcdlog

import (
	"context"
	"time"
)

// probeEvery is how often a replica that watches etcd checks that etcd
// still answers it. A watch whose connection is gone (a network cut
// between the replica and every member) waits without an error while the
// client tries to reconnect: without the probe, a replica cut off would
// go on serving an ever older state and report that it follows the log.
const probeEvery = time.Second

// watching returns a context for a watch of etcd, derived from ctx, that
// ends, with an unavailable error as its cause, when etcd does not answer
// a read of the log's head within the Log's timeout; and the function
// that releases it.
func (l *Log) watching(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancelCause(ctx)
	go func() {
		t := time.NewTicker(probeEvery)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
			if _, err := l.Head(wctx); err != nil && wctx.Err() == nil {
				cancel(err) // Head's: record.ErrStoreUnavailable
				return
			}
		}
	}()
	return wctx, func() { cancel(nil) }
}

// watchEnded is what a watch of etcd under wctx (see watching) returns
// when its channel closed: ctx's error, or the probe's, or nil (the watch
// ended: read again).
func watchEnded(ctx, wctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return context.Cause(wctx)
}

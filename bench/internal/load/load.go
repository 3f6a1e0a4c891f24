// Package load drives a closed-loop load for the benchmark commands:
// goroutines that each call an operation again as soon as it returns, for
// a while, and the throughput and latencies that come of it.
package load

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one closed-loop run.
type Result struct {
	// Rate is the operations that succeeded per second.
	Rate float64
	// P50 and P99 are their latencies.
	P50, P99 time.Duration
	// Errors counts the operations that failed; FirstErr is the first.
	Errors   int64
	FirstErr error
}

// ClosedLoop runs conc goroutines calling op (with the goroutine's number
// and its call's) until d passes. Each call gets a deadline of its own, so
// the last call of each goroutine completes instead of being cut.
func ClosedLoop(conc int, d time.Duration, op func(ctx context.Context, g, i int) error) Result {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	lat := make([][]time.Duration, conc)
	var errs atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for g := range conc {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := op(rctx, g, i)
				rcancel()
				if err != nil {
					errs.Add(1)
					first.CompareAndSwap(nil, &err)
					continue
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := Result{Rate: float64(len(all)) / elapsed.Seconds(), P50: Pct(all, .5), P99: Pct(all, .99), Errors: errs.Load()}
	if e := first.Load(); e != nil {
		r.FirstErr = *e
	}
	return r
}

// Pct is the p-quantile (0 to 1) of sorted latencies; 0 when there are
// none.
func Pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(float64(len(sorted)-1)*p)]
}

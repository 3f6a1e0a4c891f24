package load

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestClosedLoopCountsSuccessesAndErrors(t *testing.T) {
	boom := errors.New("boom")
	r := ClosedLoop(4, 200*time.Millisecond, func(ctx context.Context, g, i int) error {
		if g == 0 {
			return boom
		}
		<-time.After(time.Millisecond)
		return nil
	})
	if r.Rate <= 0 || r.P50 < time.Millisecond || r.P99 < r.P50 {
		t.Fatalf("rate %.0f/s, p50 %s, p99 %s: want successes of at least 1 ms", r.Rate, r.P50, r.P99)
	}
	if r.Errors == 0 || !errors.Is(r.FirstErr, boom) {
		t.Fatalf("errors %d, first %v; want goroutine 0's", r.Errors, r.FirstErr)
	}
	if Pct(nil, .5) != 0 {
		t.Fatal("Pct of nothing")
	}
}

// Package backoff is the jittered exponential backoff that the network
// sources use between retries, and the source pump between campaigns for
// a source's role.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff yields delays from Min doubling up to Max, each drawn uniformly
// from [d/2, d] so that many clients that failed together do not retry
// together. The zero value is not usable; set Min and Max.
type Backoff struct {
	Min, Max time.Duration
	n        int
}

// Next returns the next delay and advances.
func (b *Backoff) Next() time.Duration {
	d := b.Min
	for i := 0; i < b.n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	b.n++
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Reset starts again from Min, after a success.
func (b *Backoff) Reset() { b.n = 0 }

// Attempts is the number of delays handed out since the last Reset.
func (b *Backoff) Attempts() int { return b.n }

// Sleep waits for d or until ctx is done, and returns ctx.Err() in the
// latter case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

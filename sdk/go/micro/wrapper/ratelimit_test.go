package wrapper_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/configd/configd/sdk/go/micro/client"
	"github.com/configd/configd/sdk/go/micro/server"
	"github.com/configd/configd/sdk/go/micro/status"
	"github.com/configd/configd/sdk/go/micro/wrapper"
)

func TestRateLimitFailFast(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(0, 0)
	l, err := wrapper.NewLimiter(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	l.WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	calls := 0
	call := l.CallWrapper(false)(func(context.Context, *client.Request, any) error { calls++; return nil })
	req := &client.Request{Service: "s", Endpoint: "e"}
	var errs []error
	for range 3 {
		errs = append(errs, call(context.Background(), req, nil))
	}
	if errs[0] != nil || errs[1] != nil || status.CodeOf(errs[2]) != status.TooMany || status.IsRetryable(errs[2]) || calls != 2 {
		t.Fatalf("burst 2: errs %v after %d calls; want the third refused, not retryable", errs, calls)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if err := call(context.Background(), req, nil); err != nil {
		t.Fatalf("a second later: %v", err)
	}
}

func TestRateLimitWaitsWithinTheDeadline(t *testing.T) {
	l, err := wrapper.NewLimiter(20, 1) // one token every 50ms
	if err != nil {
		t.Fatal(err)
	}
	call := l.CallWrapper(true)(func(context.Context, *client.Request, any) error { return nil })
	req := &client.Request{Service: "s", Endpoint: "e"}
	start := time.Now()
	for range 3 {
		if err := call(context.Background(), req, nil); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 90*time.Millisecond {
		t.Fatalf("3 calls at 20/s with burst 1 took %v, want >= 100ms", el)
	}
	// A wait longer than the call's deadline fails at once instead of sleeping past it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	call(context.Background(), req, nil) // empty the bucket again
	if err := call(ctx, req, nil); status.CodeOf(err) != status.TooMany {
		t.Fatalf("err = %v, want TooMany", err)
	}
}

func TestServerRateLimitIsRetryableElsewhere(t *testing.T) {
	l, err := wrapper.NewLimiter(0.001, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, []server.HandlerWrapper{l.HandlerWrapper(false)}, "ok")
	cl := c.client(t)
	var rsp Rsp
	if err := cl.Call(context.Background(), "greeter", "Greeter.Hello", &Req{}, &rsp); err != nil {
		t.Fatal(err)
	}
	err = cl.Call(context.Background(), "greeter", "Greeter.Hello", &Req{}, &rsp)
	if status.CodeOf(err) != status.TooMany || !status.IsRetryable(err) {
		t.Fatalf("err = %v, want a retryable TooMany", err)
	}
	if _, err := wrapper.NewLimiter(0, 1); err == nil {
		t.Fatal("a zero rate was accepted")
	}
}

// TestRateLimitConcurrentTakesExactlyTheBurst races many callers on a stopped clock: exactly
// burst of them pass, however the compare-and-swap interleaves.
func TestRateLimitConcurrentTakesExactlyTheBurst(t *testing.T) {
	const burst, callers = 50, 400
	now := time.Unix(0, 0)
	l, err := wrapper.NewLimiter(10, burst)
	if err != nil {
		t.Fatal(err)
	}
	l.WithClock(func() time.Time { return now })
	call := l.CallWrapper(false)(func(context.Context, *client.Request, any) error { return nil })
	var passed atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			if call(context.Background(), &client.Request{Service: "s", Endpoint: "e"}, nil) == nil {
				passed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := passed.Load(); n != burst {
		t.Fatalf("%d of %d concurrent calls passed a full bucket of %d on a stopped clock, want exactly %d", n, callers, burst, burst)
	}
}

// TestRateLimitNeverRefusesBelowTheRate runs more callers than cores through a limit far above
// what they can reach, on the real clock: none is refused, also when the scheduler preempts a
// caller in the middle of taking its token (a caller that judged the bucket by a clock read
// before it was preempted would be).
func TestRateLimitNeverRefusesBelowTheRate(t *testing.T) {
	l, err := wrapper.NewLimiter(1e9, 1000) // a microsecond of burst
	if err != nil {
		t.Fatal(err)
	}
	call := l.CallWrapper(false)(func(context.Context, *client.Request, any) error { return nil })
	var refused atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			req := &client.Request{Service: "s", Endpoint: "e"}
			for range 50_000 {
				if call(context.Background(), req, nil) != nil {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := refused.Load(); n != 0 {
		t.Fatalf("%d of 400,000 calls refused by a limit of 10⁹ calls/s", n)
	}
}

// TestLimiterWaitSaysWhenATokenIsFree: a refused Wait tells how long until the bucket holds a
// token again, which a gateway sends as Retry-After.
func TestLimiterWaitSaysWhenATokenIsFree(t *testing.T) {
	now := time.Unix(0, 0)
	l, err := wrapper.NewLimiter(2, 1) // a token every 500ms
	if err != nil {
		t.Fatal(err)
	}
	l.WithClock(func() time.Time { return now })
	if d, err := l.Wait(context.Background(), false); err != nil || d != 0 {
		t.Fatalf("first Wait: %v, %v", d, err)
	}
	now = now.Add(100 * time.Millisecond)
	d, err := l.Wait(context.Background(), false)
	if !errors.Is(err, wrapper.ErrLimited) || d != 400*time.Millisecond {
		t.Fatalf("second Wait 100ms later: %v, %v; want ErrLimited and 400ms", d, err)
	}
	// Waiting is refused when the token comes after the deadline, with the same answer.
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(300*time.Millisecond))
	defer cancel()
	if d, err := l.Wait(ctx, true); !errors.Is(err, wrapper.ErrLimited) || d != 400*time.Millisecond {
		t.Fatalf("waiting past the deadline: %v, %v", d, err)
	}
}

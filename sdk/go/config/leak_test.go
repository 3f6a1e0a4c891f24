package config

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/configd/configd/api"
)

func TestWatchStopCyclesLeaveNothingBehind(t *testing.T) {
	d := startConfigd(t)
	c := connect(t, []string{d.addr})
	// Let the client's own goroutines (stream, gRPC, the report's
	// connection) settle first.
	rev := d.put("k", "0")
	waitRev(t, c, rev)
	d.awaitListed(t, "", c.opts.instance, "the client's report", func(s api.ClientStatus) bool { return s.Rev == rev })
	before := runtime.NumGoroutine()

	for i := range 10_000 {
		w, err := c.Watch("k")
		if err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			// Now and then a watcher blocked in Next, with or without an
			// update on its way, when it stops.
			errc := make(chan error, 1)
			go func() { _, err := w.Next(); errc <- err }()
			if i%200 == 0 {
				waitRev(t, c, d.put("k", "x"))
			}
			w.Stop()
			if err := <-errc; err != nil && !errors.Is(err, ErrStopped) {
				t.Fatalf("Next = %v, want an update or ErrStopped", err)
			}
			continue
		}
		w.Stop()
	}

	c.mu.Lock()
	n := len(c.watchers)
	c.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d watchers still registered", n)
	}
	// Goroutines that returned may take a moment to be gone from the count.
	deadline := time.Now().Add(waitLimit)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
	// The client still works.
	w, _ := c.Watch("k")
	defer w.Stop()
	r := d.put("k", "last")
	if u := next(t, w); u.Rev != r {
		t.Fatalf("update at %d, want %d", u.Rev, r)
	}
}

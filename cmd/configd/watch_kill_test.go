package main_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/sdk/go/config"
)

// TestWatchersSeeEveryChangeOnceAcrossAKill9 kills configd with SIGKILL
// while 100 SDK clients watch a key and a writer changes it, restarts it on
// the same port and data, and checks that every client saw exactly the
// revisions that touched the key, each once, in order.
func TestWatchersSeeEveryChangeOnceAcrossAKill9(t *testing.T) {
	const clients, before, after = 100, 40, 40
	dir := t.TempDir()
	d := start(t, dir)
	addr := d.Addr
	d.mustCall(http.MethodPut, "/v1/kv/app/flag", []byte("v0"), nil)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// seen is what one client's watcher delivered; done is closed once it
	// has delivered revision target.
	type seen struct {
		mu     sync.Mutex
		revs   []int64
		values []string
		target int64
		done   chan struct{}
	}
	results := make([]*seen, clients)
	watchers := make([]*config.Watcher, clients)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := range clients {
		results[i] = &seen{done: make(chan struct{}), target: -1}
		c, err := config.New(ctx, config.WithAddress(addr), config.WithTimeout(30*time.Second), config.WithLogger(quiet))
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		w, err := c.Watch("app/flag")
		if err != nil {
			t.Fatal(err)
		}
		watchers[i] = w
	}
	var wg sync.WaitGroup
	for i, w := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := results[i]
			for {
				u, err := w.NextUpdate()
				if err != nil {
					return // stopped at the end
				}
				r.mu.Lock()
				r.revs = append(r.revs, u.Rev)
				r.values = append(r.values, u.Value.String("<deleted>"))
				if u.Rev == r.target {
					close(r.done)
				}
				r.mu.Unlock()
			}
		}()
	}

	put := func(d *daemon, n int) error {
		return d.call(http.MethodPut, "/v1/kv/app/flag", []byte(fmt.Sprint("v", n)), nil)
	}
	for n := 1; n <= before; n++ {
		if err := put(d, n); err != nil {
			t.Fatal(err)
		}
	}
	d.Signal(syscall.SIGKILL)
	d.Wait()
	d2 := launch(t, "--data-dir", dir, "--http-addr", addr)
	d2.Listening()
	for n := before + 1; n <= before+after; n++ {
		if err := put(d2, n); err != nil {
			t.Fatal(err)
		}
	}
	var hist api.HistoryResponse
	d2.mustCall(http.MethodGet, "/v1/history?key=app/flag&limit=1000", nil, &hist)
	var want []int64 // the revisions after the first, oldest first
	for i := len(hist.Revisions) - 2; i >= 0; i-- {
		want = append(want, hist.Revisions[i].Rev)
	}
	if len(want) != before+after {
		t.Fatalf("store has %d revisions of app/flag after the first, want %d", len(want), before+after)
	}
	// Every client gets to the last revision (or the test times out).
	last := want[len(want)-1]
	for _, r := range results {
		r.mu.Lock()
		r.target = last
		if n := len(r.revs); n > 0 && r.revs[n-1] >= last {
			close(r.done)
		}
		r.mu.Unlock()
	}
	timeout := time.After(time.Minute)
	for i, r := range results {
		select {
		case <-r.done:
		case <-timeout:
			r.mu.Lock()
			t.Fatalf("client %d did not reach revision %d; it saw %v", i, last, r.revs)
		}
	}
	for _, w := range watchers {
		w.Stop()
	}
	wg.Wait()
	for i, r := range results {
		if fmt.Sprint(r.revs) != fmt.Sprint(want) {
			t.Fatalf("client %d saw revisions %v\nwant %v", i, r.revs, want)
		}
		for j, v := range r.values {
			if v != fmt.Sprint("v", j+1) {
				t.Fatalf("client %d: update %d has value %q, want v%d", i, j, v, j+1)
			}
		}
	}
}

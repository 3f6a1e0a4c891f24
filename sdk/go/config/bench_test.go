package config

import (
	"testing"
	"time"
)

// benchClient is a client whose copy holds a few hundred keys, without a
// server: reads never touch the network.
func benchClient(tb testing.TB) *Client {
	tb.Helper()
	o, err := buildOptions([]Option{WithLogger(discard())})
	if err != nil {
		tb.Fatal(err)
	}
	c := newClient(o)
	kvs := []string{"app/db/timeout", "3s", "app/db/host", "db1", "app/name", "shop"}
	for _, svc := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		for _, k := range []string{"x", "y", "z", "w", "v", "u", "t", "s"} {
			for _, l := range []string{"1", "2", "3", "4"} {
				kvs = append(kvs, svc+"/"+k+"/"+l, "value")
			}
		}
	}
	c.state.Store(newState(1, trieOf(kvs...)))
	return c
}

var sinkString string
var sinkDuration time.Duration

func BenchmarkGet(b *testing.B) {
	c := benchClient(b)
	b.Run("segments/String", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkString = c.Get("app", "db", "timeout").String("")
		}
	})
	b.Run("one-string/String", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkString = c.Get("app/db/timeout").String("")
		}
	})
	b.Run("segments/Duration", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkDuration = c.Get("app", "db", "timeout").Duration(time.Second)
		}
	})
	b.Run("one-string/Duration", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkDuration = c.Get("app/db/timeout").Duration(time.Second)
		}
	})
	b.Run("package/segments/Duration", func(b *testing.B) {
		restore := setDefault(c)
		defer restore()
		b.ReportAllocs()
		for b.Loop() {
			sinkDuration = Get("app", "db", "timeout").Duration(time.Second)
		}
	})
	b.Run("parallel/segments/Duration", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var d time.Duration
			for pb.Next() {
				d = c.Get("app", "db", "timeout").Duration(time.Second)
			}
			sinkDuration = d
		})
	})
}

// setDefault makes c the default client for a test.
func setDefault(c *Client) (restore func()) {
	std.mu.Lock()
	old := std.c.Swap(c)
	std.mu.Unlock()
	return func() {
		std.mu.Lock()
		std.c.Store(old)
		std.mu.Unlock()
	}
}

func TestGetOfAScalarDoesNotAllocate(t *testing.T) {
	c := benchClient(t)
	restore := setDefault(c)
	defer restore()
	for name, fn := range map[string]func(){
		"segments/String":             func() { sinkString = c.Get("app", "db", "timeout").String("") },
		"one-string/String":           func() { sinkString = c.Get("app/db/timeout").String("") },
		"segments/Duration":           func() { sinkDuration = c.Get("app", "db", "timeout").Duration(time.Second) },
		"one-string/Duration":         func() { sinkDuration = c.Get("app/db/timeout").Duration(time.Second) },
		"package/segments/String":     func() { sinkString = Get("app", "db", "timeout").String("") },
		"package/one-string/Duration": func() { sinkDuration = Get("app/db/timeout").Duration(time.Second) },
		"missing":                     func() { sinkString = c.Get("app", "nope", "timeout").String("d") },
	} {
		if n := testing.AllocsPerRun(1000, fn); n != 0 {
			t.Errorf("%s: %v allocations per Get, want 0", name, n)
		}
	}
	if sinkString != "d" && sinkString != "3s" {
		t.Fatalf("read %q", sinkString)
	}
	if got := c.Get("app", "db", "timeout").Duration(0); got != 3*time.Second {
		t.Fatalf("Duration = %v", got)
	}
}

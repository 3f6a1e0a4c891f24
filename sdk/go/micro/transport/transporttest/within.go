package transporttest

import (
	"testing"
	"time"
)

// Within returns what ch yields, or fails the test naming what it waited for when nothing
// comes within 10 s (a bound for a stuck test, not a timing).
func Within[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("not within 10s: %s", what)
		panic("unreachable")
	}
}

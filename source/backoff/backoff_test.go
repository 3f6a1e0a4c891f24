package backoff

import (
	"testing"
	"time"
)

func TestBackoffGrowsWithinBoundsAndResets(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	want := []time.Duration{10, 20, 40, 80, 80, 80}
	for i, w := range want {
		w *= time.Millisecond
		d := b.Next()
		if d < w/2 || d > w {
			t.Fatalf("delay %d = %v, want within [%v, %v]", i, d, w/2, w)
		}
	}
	if b.Attempts() != len(want) {
		t.Fatalf("Attempts = %d, want %d", b.Attempts(), len(want))
	}
	b.Reset()
	if d := b.Next(); d > 10*time.Millisecond {
		t.Fatalf("after Reset, delay = %v, want <= 10ms", d)
	}
}

package main

import (
	"testing"
)

func TestNumbers(t *testing.T) {
	for x, want := range map[float64]string{1234567: "1,234,567", 999: "999", 0: "0"} {
		if got := num(x); got != want {
			t.Errorf("num(%v) = %q, want %q", x, got, want)
		}
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median = %v", got)
	}
	if plural(1, "writer") != "1 writer" || plural(10000, "watcher") != "10,000 watchers" {
		t.Error("plural")
	}
}

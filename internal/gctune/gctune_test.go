package gctune

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, budget uint64
		want         int
	}{
		{0, 1024 * mib, MaxPercent},          // nothing live yet
		{10 * mib, 1024 * mib, MaxPercent},   // small heap: as high as allowed
		{200 * mib, 1000 * mib, 400},         // grows to the budget
		{400 * mib, 1000 * mib, 150},         // ...
		{600 * mib, 1000 * mib, MinPercent},  // past half the budget: Go's default
		{2000 * mib, 1000 * mib, MinPercent}, // past the budget: never below the default
	} {
		if got := Percent(c.live, c.budget); got != c.want {
			t.Errorf("Percent(%d MiB, %d MiB) = %d, want %d", c.live/mib, c.budget/mib, got, c.want)
		}
	}
}

func TestBudget(t *testing.T) {
	old := debug.SetMemoryLimit(math.MaxInt64) // none, whatever GOMEMLIMIT the test runs under
	defer debug.SetMemoryLimit(old)
	if got := Budget(); got != DefaultBudget {
		t.Fatalf("no memory limit: budget %d, want %d", got, DefaultBudget)
	}
	debug.SetMemoryLimit(800 << 20)
	if got, want := Budget(), uint64(600<<20); got != want {
		t.Fatalf("GOMEMLIMIT=800MiB: budget %d, want %d", got, want)
	}
}

// gogc is the GOGC in force, as the runtime reports it.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// After each collection the tuner sets GOGC from the live heap; stop puts
// back the GOGC there was before.
func TestStartTunesAfterEachCollection(t *testing.T) {
	before := debug.SetGCPercent(77)
	defer debug.SetGCPercent(before)

	tuned := make(chan int, 16)
	const budget = 64 << 20
	stop := Start(WithBudget(budget), WithTuned(func(p int) {
		select {
		case tuned <- p:
		default:
		}
	}))
	// awaitTuned collects until the tuner sets a GOGC that want accepts.
	awaitTuned := func(want func(int) bool) int {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			runtime.GC()
			select {
			case p := <-tuned:
				if want(p) {
					return p
				}
			case <-deadline:
				t.Fatalf("no tuning after a collection within 10s (GOGC now %d)", gogc())
			}
		}
	}

	// A small live heap: the highest GOGC.
	if p := awaitTuned(func(p int) bool { return p == MaxPercent }); gogc() != p {
		t.Fatalf("tuned %d, runtime has GOGC=%d", p, gogc())
	}
	// 24 MiB held live of a 64 MiB budget: 100 × 64/24 − 100 ≈ 166, less
	// what else is live.
	held := make([][]byte, 24)
	for i := range held {
		held[i] = make([]byte, 1<<20)
	}
	// Collections that ran while it was being allocated saw less of it.
	// A collection may run between the tuner's answer and the read of
	// the runtime's GOGC, and other live bytes move by a few KiB: both
	// must be in the band, not equal.
	p := awaitTuned(func(p int) bool { return p <= 170 })
	if g := gogc(); p < MinPercent || g < MinPercent || g > 170 {
		t.Fatalf("24 MiB live under a 64 MiB budget: tuned GOGC=%d (runtime %d), want 100–170", p, g)
	}
	runtime.KeepAlive(held)

	stop()
	if got := gogc(); got != 77 {
		t.Fatalf("after stop: GOGC=%d, want the 77 there was before", got)
	}
	stop() // twice is harmless
	// A collection after stop changes nothing.
	runtime.GC()
	runtime.GC()
	if got := gogc(); got != 77 {
		t.Fatalf("a collection after stop: GOGC=%d, want 77", got)
	}
}

func TestAutoLeavesAnOperatorsGOGC(t *testing.T) {
	before := debug.SetGCPercent(88)
	defer debug.SetGCPercent(before)
	stop := Auto(func(k string) string {
		if k == "GOGC" {
			return "88"
		}
		return ""
	})
	runtime.GC()
	if got := gogc(); got != 88 {
		t.Fatalf("GOGC=88 set: the tuner changed it to %d", got)
	}
	stop()
}

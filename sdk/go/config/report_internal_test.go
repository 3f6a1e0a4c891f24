package config

import (
	"fmt"
	"testing"
	"time"
)

// TestHeartbeatsGoInTheirSlotOfConfigdsWindow: with a window, each
// heartbeat goes at the instance's own offset within the window at the
// start of a period, half a period to a period and a half after the last
// report, whenever that was; without one, a period after it.
func TestHeartbeatsGoInTheirSlotOfConfigdsWindow(t *testing.T) {
	s := schedule{every: time.Minute, window: 2 * time.Second}
	base := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	offsets := map[time.Duration]bool{}
	for i := range 200 {
		instance := fmt.Sprintf("pod-%d/orders", i)
		var slot time.Duration = -1
		for _, after := range []time.Duration{0, 700 * time.Millisecond, 29 * time.Second, 31 * time.Second, 59 * time.Second} {
			now := base.Add(after)
			d := s.next(now, instance)
			if d < s.every/2 || d > s.every*3/2 {
				t.Fatalf("%s: a report at :%v, the heartbeat %v later", instance, after, d)
			}
			at := now.Add(d)
			off := at.Sub(at.Truncate(s.every))
			if off >= s.window || slot >= 0 && off != slot {
				t.Fatalf("%s: heartbeat at offset %v (before: %v), want one offset within %v", instance, off, slot, s.window)
			}
			slot = off
		}
		offsets[slot.Truncate(100*time.Millisecond)] = true
	}
	if len(offsets) < 15 {
		t.Fatalf("200 instances fell in %d of the window's 20 tenths of a second", len(offsets))
	}
	if d := (schedule{every: time.Minute}).next(base.Add(7*time.Second), "x"); d != time.Minute {
		t.Fatalf("without a window: %v, want a period", d)
	}
	if d := (schedule{every: time.Second, window: 2 * time.Second}).next(base, "x"); d != time.Second {
		t.Fatalf("a window past the period: %v, want a period", d)
	}
}

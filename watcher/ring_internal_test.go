package watcher

import (
	"slices"
	"testing"

	"github.com/configd/configd/audit"
)

// TestRingKeepsTheNewestInOrder: the ring holds the newest revisions up to
// its size, oldest first, through many turns.
func TestRingKeepsTheNewestInOrder(t *testing.T) {
	var g ring
	if g.oldest() != nil {
		t.Fatal("an empty ring has an oldest revision")
	}
	const size = 4
	for rev := int64(1); rev <= 11; rev++ {
		g.push(audit.Revision{Rev: rev}, size)
		var got []int64
		for r := range g.all() {
			got = append(got, r.Rev)
		}
		var want []int64
		for r := max(1, rev-size+1); r <= rev; r++ {
			want = append(want, r)
		}
		if !slices.Equal(got, want) || g.oldest().Rev != want[0] {
			t.Fatalf("after %d: %v (oldest %d), want %v", rev, got, g.oldest().Rev, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { g.push(audit.Revision{Rev: 12}, size) }); n != 0 {
		t.Errorf("a push into a full ring allocates %v times", n)
	}
}

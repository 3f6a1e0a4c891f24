package watcher

import (
	"iter"

	"github.com/configd/configd/audit"
)

// ring is the newest revisions the hub keeps, at most a window of them: a
// slice that grows to the window, then a ring whose oldest revision is at
// start, each new one taking the oldest's place. (A slice whose start
// moved, and that append copied to a new array each time it filled, cost
// about a kilobyte a revision.)
type ring struct {
	revs  []audit.Revision
	start int
}

// push adds r, the newest, dropping the oldest when the ring holds size.
func (g *ring) push(r audit.Revision, size int) {
	if len(g.revs) < size {
		g.revs = append(g.revs, r)
		return
	}
	g.revs[g.start] = r
	g.start = (g.start + 1) % len(g.revs)
}

// oldest returns the oldest revision held, or nil.
func (g *ring) oldest() *audit.Revision {
	if len(g.revs) == 0 {
		return nil
	}
	return &g.revs[g.start]
}

// all yields the revisions held, oldest first.
func (g *ring) all() iter.Seq[*audit.Revision] {
	return func(yield func(*audit.Revision) bool) {
		for i := range g.revs {
			if !yield(&g.revs[(g.start+i)%len(g.revs)]) {
				return
			}
		}
	}
}

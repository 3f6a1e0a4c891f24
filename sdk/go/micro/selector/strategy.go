package selector

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/configd/configd/sdk/go/micro/registry"
)

// Random picks uniformly among the nodes not yet tried.
func Random(_ string, nodes []*registry.Node, _ Load) Next {
	t := newTried(nodes)
	return func() (*registry.Node, error) {
		c := t.candidates()
		return t.take(c[rand.IntN(len(c))]), nil
	}
}

// RoundRobin returns a strategy that rotates through each service's nodes, one counter per
// service shared by all Selects of that service.
func RoundRobin() Strategy {
	var counters sync.Map // service → *atomic.Uint64
	return func(service string, nodes []*registry.Node, _ Load) Next {
		v, _ := counters.LoadOrStore(service, new(atomic.Uint64))
		ctr := v.(*atomic.Uint64)
		t := newTried(nodes)
		return func() (*registry.Node, error) {
			c := t.candidates()
			return t.take(c[int(ctr.Add(1)-1)%len(c)]), nil
		}
	}
}

// PowerOfTwo picks two random untried nodes and takes the one with fewer outstanding calls:
// nearly as good as least-outstanding, without a herd on the single least loaded node.
func PowerOfTwo(service string, nodes []*registry.Node, load Load) Next {
	t := newTried(nodes)
	return func() (*registry.Node, error) {
		c := t.candidates()
		if len(c) == 1 {
			return t.take(c[0]), nil
		}
		i := rand.IntN(len(c))
		j := rand.IntN(len(c) - 1)
		if j >= i {
			j++
		}
		a, b := c[i], c[j]
		if load.Outstanding(service, b.Id) < load.Outstanding(service, a.Id) {
			a = b
		}
		return t.take(a), nil
	}
}

// tried tracks which nodes one Next has returned, so retries go elsewhere first.
type tried struct {
	mu    sync.Mutex
	nodes []*registry.Node
	used  map[string]bool
}

func newTried(nodes []*registry.Node) *tried {
	return &tried{nodes: nodes, used: make(map[string]bool, len(nodes))}
}

// candidates returns the nodes not yet returned, or all of them once each has been.
func (t *tried) candidates() []*registry.Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.used) >= len(t.nodes) {
		clear(t.used)
	}
	out := make([]*registry.Node, 0, len(t.nodes)-len(t.used))
	for _, n := range t.nodes {
		if !t.used[n.Id] {
			out = append(out, n)
		}
	}
	return out
}

func (t *tried) take(n *registry.Node) *registry.Node {
	t.mu.Lock()
	t.used[n.Id] = true
	t.mu.Unlock()
	return n
}

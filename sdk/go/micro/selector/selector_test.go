package selector_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/memory"
	"github.com/configd/configd/sdk/go/micro/selector"
)

// flakyRegistry wraps a memory registry; GetService fails while down is set and counts calls.
type flakyRegistry struct {
	*memory.Registry
	down  atomic.Bool
	lists atomic.Int64
}

func (f *flakyRegistry) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	f.lists.Add(1)
	if f.down.Load() {
		return nil, errors.New("connection refused")
	}
	return f.Registry.GetService(name, opts...)
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func register(t *testing.T, r registry.Registry, name, version string, nodes ...*registry.Node) {
	t.Helper()
	err := r.Register(&registry.Service{Name: name, Version: version, Nodes: nodes,
		Endpoints: []*registry.Endpoint{{Name: "Greeter.Hello"}}})
	if err != nil {
		t.Fatal(err)
	}
}

func node(id string, md ...string) *registry.Node {
	n := &registry.Node{Id: id, Address: id + ":1", Metadata: map[string]string{}}
	for i := 0; i+1 < len(md); i += 2 {
		n.Metadata[md[i]] = md[i+1]
	}
	return n
}

func newSelector(t *testing.T, r registry.Registry, opts ...selector.Option) *selector.Cache {
	t.Helper()
	s, err := selector.New(append([]selector.Option{selector.Registry(r)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// ids drains n picks from next.
func ids(t *testing.T, next selector.Next, n int) []string {
	t.Helper()
	var out []string
	for range n {
		nd, err := next()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, nd.Id)
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(time.Millisecond) // re-check cond; the watch applies events asynchronously
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("not within 5s: %s", what)
		case <-tick.C:
		}
	}
}

func TestFilters(t *testing.T) {
	r := memory.New()
	register(t, r, "greeter", "v1", node("a"))
	register(t, r, "greeter", "v1", node("b", "zone", "eu"))
	register(t, r, "greeter", "v2", node("c", "zone", "eu"))
	s := newSelector(t, r)
	for _, tc := range []struct {
		name    string
		filters []selector.Filter
		want    map[string]bool
		err     error
	}{
		{"none", nil, map[string]bool{"a": true, "b": true, "c": true}, nil},
		{"version", []selector.Filter{selector.FilterVersion("v1")}, map[string]bool{"a": true, "b": true}, nil},
		{"label", []selector.Filter{selector.FilterLabel("zone", "eu")}, map[string]bool{"b": true, "c": true}, nil},
		{"version and label", []selector.Filter{selector.FilterVersion("v2"), selector.FilterLabel("zone", "eu")}, map[string]bool{"c": true}, nil},
		{"endpoint", []selector.Filter{selector.FilterEndpoint("Greeter.Hello")}, map[string]bool{"a": true, "b": true, "c": true}, nil},
		{"missing endpoint", []selector.Filter{selector.FilterEndpoint("Greeter.Bye")}, nil, selector.ErrNoneAvailable},
		{"missing version", []selector.Filter{selector.FilterVersion("v9")}, nil, selector.ErrNoneAvailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, err := s.Select("greeter", selector.WithFilter(tc.filters...))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, id := range ids(t, next, len(tc.want)) {
				got[id] = true
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("nodes %v, want %v", got, tc.want)
			}
		})
	}
}

func TestUnknownServiceNamesIt(t *testing.T) {
	s := newSelector(t, memory.New())
	_, err := s.Select("nosuch")
	if !errors.Is(err, selector.ErrNotFound) || !contains(err.Error(), "nosuch") {
		t.Fatalf("err = %v, want ErrNotFound naming nosuch", err)
	}
}

func contains(s, sub string) bool { return len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0) }
func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestNextTriesEveryNodeBeforeRepeating(t *testing.T) {
	r := memory.New()
	register(t, r, "greeter", "v1", node("a"), node("b"), node("c"))
	for name, st := range map[string]selector.Strategy{
		"random": selector.Random, "roundrobin": selector.RoundRobin(), "p2c": selector.PowerOfTwo,
	} {
		t.Run(name, func(t *testing.T) {
			s := newSelector(t, r, selector.DefaultStrategy(st))
			next, err := s.Select("greeter")
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, id := range ids(t, next, 3) {
				seen[id] = true
			}
			if len(seen) != 3 {
				t.Fatalf("first three picks %v, want three distinct nodes", seen)
			}
		})
	}
}

func TestRoundRobinRotatesAcrossSelects(t *testing.T) {
	r := memory.New()
	register(t, r, "greeter", "v1", node("a"), node("b"), node("c"))
	s := newSelector(t, r, selector.DefaultStrategy(selector.RoundRobin()))
	counts := map[string]int{}
	for range 30 {
		next, err := s.Select("greeter")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := next()
		counts[n.Id]++
		s.Mark("greeter", n, nil)
	}
	if counts["a"] != 10 || counts["b"] != 10 || counts["c"] != 10 {
		t.Fatalf("round robin counts %v, want 10 each", counts)
	}
}

func TestPowerOfTwoAvoidsBusyNode(t *testing.T) {
	r := memory.New()
	register(t, r, "greeter", "v1", node("busy", "role", "busy"), node("idle"))
	s := newSelector(t, r, selector.DefaultStrategy(selector.PowerOfTwo))
	// Make "busy" carry outstanding calls that are never marked.
	onlyBusy := func(in []*registry.Service) []*registry.Service {
		return selector.FilterLabel("role", "busy")(in)
	}
	for range 5 {
		next, err := s.Select("greeter", selector.WithFilter(onlyBusy))
		if err != nil {
			t.Fatal(err)
		}
		next()
	}
	for range 50 {
		next, _ := s.Select("greeter")
		n, _ := next()
		if n.Id != "idle" {
			t.Fatalf("picked %s with %d outstanding over an idle node", n.Id, s.Outstanding("greeter", "busy"))
		}
		s.Mark("greeter", n, nil)
	}
	if got := s.Outstanding("greeter", "idle"); got != 0 {
		t.Fatalf("idle outstanding = %d after every call was marked, want 0", got)
	}
}

func TestMarkDemotesForAWhile(t *testing.T) {
	r := memory.New()
	register(t, r, "greeter", "v1", node("bad"), node("good"))
	clk := &clock{now: time.Unix(1000, 0)}
	s := newSelector(t, r, selector.Clock(clk.Now), selector.DemoteFor(10*time.Second), selector.TTL(time.Hour))
	s.Mark("greeter", node("bad"), errors.New("connection reset"))
	for range 10 {
		next, _ := s.Select("greeter")
		if n, _ := next(); n.Id != "good" {
			t.Fatalf("picked demoted node %s", n.Id)
		}
	}
	s.Mark("greeter", node("good"), errors.New("timeout"))
	next, _ := s.Select("greeter")
	if got := ids(t, next, 2); len(got) != 2 {
		t.Fatalf("every node demoted: want them all offered rather than none, got %v", got)
	}
	clk.Add(11 * time.Second)
	seen := map[string]bool{}
	for range 4 {
		next, _ := s.Select("greeter")
		n, _ := next()
		seen[n.Id] = true
	}
	if !seen["bad"] {
		t.Fatal("node still left out after its demotion expired")
	}
}

func TestWatchKeepsCacheCurrentWithoutRelisting(t *testing.T) {
	f := &flakyRegistry{Registry: memory.New()}
	register(t, f, "greeter", "v1", node("a"))
	s := newSelector(t, f, selector.TTL(time.Hour))
	if _, err := s.Select("greeter"); err != nil {
		t.Fatal(err)
	}
	register(t, f, "greeter", "v1", node("b"))
	eventually(t, "new node b seen through the watch", func() bool {
		next, err := s.Select("greeter")
		if err != nil {
			return false
		}
		got := ids(t, next, 2)
		return got[0] == "b" || got[1] == "b"
	})
	if err := f.Deregister(&registry.Service{Name: "greeter", Version: "v1", Nodes: []*registry.Node{node("a"), node("b")}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deleted service gone from the cache", func() bool {
		_, err := s.Select("greeter")
		return errors.Is(err, selector.ErrNotFound)
	})
	if n := f.lists.Load(); n != 1 {
		t.Fatalf("registry listed %d times, want 1: the watch should have fed the cache", n)
	}
}

func TestRegistryDownServesLastGoodList(t *testing.T) {
	f := &flakyRegistry{Registry: memory.New()}
	register(t, f, "greeter", "v1", node("a"))
	clk := &clock{now: time.Unix(1000, 0)}
	s := newSelector(t, f, selector.TTL(time.Second), selector.Clock(clk.Now))
	if _, err := s.Select("greeter"); err != nil {
		t.Fatal(err)
	}
	f.down.Store(true)
	clk.Add(time.Minute) // well past TTL: the cache asks the registry, which fails
	next, err := s.Select("greeter")
	if err != nil {
		t.Fatalf("registry down with a cached list: %v", err)
	}
	if n, _ := next(); n.Id != "a" {
		t.Fatalf("got %s, want cached a", n.Id)
	}
	if f.lists.Load() < 2 {
		t.Fatal("expired entry did not ask the registry again")
	}
	if _, err := s.Select("never-listed"); err == nil || errors.Is(err, selector.ErrNotFound) {
		t.Fatalf("uncached service with registry down: err = %v, want the registry error", err)
	}
}

func TestNewRejectsNonsense(t *testing.T) {
	if _, err := selector.New(); err == nil {
		t.Fatal("New without a registry succeeded")
	}
	if _, err := selector.New(selector.Registry(memory.New()), selector.TTL(-1)); err == nil {
		t.Fatal("New with a negative TTL succeeded")
	}
}

// brokenWatch fails every Watch after the first, and ends the first on demand.
type brokenWatch struct {
	*flakyRegistry
	first   chan registry.Watcher
	watches atomic.Int64
}

func (b *brokenWatch) Watch(opts ...registry.WatchOption) (registry.Watcher, error) {
	if b.watches.Add(1) > 1 {
		return nil, errors.New("registry unreachable")
	}
	w, err := b.flakyRegistry.Watch(opts...)
	b.first <- w
	return w, err
}

func TestLostWatchMakesCacheRelist(t *testing.T) {
	f := &brokenWatch{flakyRegistry: &flakyRegistry{Registry: memory.New()}, first: make(chan registry.Watcher, 1)}
	register(t, f, "greeter", "v1", node("a"))
	s := newSelector(t, f, selector.TTL(time.Hour))
	w := <-f.first
	if _, err := s.Select("greeter"); err != nil {
		t.Fatal(err)
	}
	w.Stop() // the watch is lost; changes from now on are not seen through it
	eventually(t, "watch restart attempted", func() bool { return f.watches.Load() >= 2 })
	register(t, f, "greeter", "v1", node("b"))
	next, err := s.Select("greeter")
	if err != nil {
		t.Fatal(err)
	}
	got := ids(t, next, 2)
	if got[0] != "b" && got[1] != "b" {
		t.Fatalf("without a watch the cache must re-list: got %v, missing b", got)
	}
}

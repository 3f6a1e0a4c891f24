package wrapper

import (
	"strconv"
	"sync"
	"testing"
)

func TestEndpointCacheBounds(t *testing.T) {
	for _, keepAll := range []bool{false, true} {
		built := 0
		c := newEndpointCache(keepAll, func(service, endpoint string) *string {
			built++
			s := service + "/" + endpoint
			return &s
		})
		n := maxCachedEndpoints + 10
		first := make([]*string, n)
		for i := range n {
			first[i] = c.get("s", strconv.Itoa(i))
		}
		for i := range n {
			v := c.get("s", strconv.Itoa(i))
			if *v != "s/"+strconv.Itoa(i) {
				t.Fatalf("keepAll %v: value %q for endpoint %d", keepAll, *v, i)
			}
			if same := v == first[i]; same != (keepAll || i < maxCachedEndpoints) {
				t.Fatalf("keepAll %v: endpoint %d: same value %v", keepAll, i, same)
			}
			if _, ok := c.lookup("s", strconv.Itoa(i)); ok != (keepAll || i < maxCachedEndpoints) {
				t.Fatalf("keepAll %v: lookup of endpoint %d: %v", keepAll, i, ok)
			}
		}
		if len(*c.m.Load()) != maxCachedEndpoints {
			t.Fatalf("keepAll %v: %d cached", keepAll, len(*c.m.Load()))
		}
		if want := n + 10; !keepAll && built != want {
			t.Fatalf("built %d values, want %d (the endpoints past the bound every time)", built, want)
		}
	}
}

func TestEndpointCacheConcurrentFirstUse(t *testing.T) {
	c := newEndpointCache(true, func(service, endpoint string) *int { return new(int) })
	var wg sync.WaitGroup
	got := make([]*int, 16)
	for i := range got {
		wg.Go(func() { got[i] = c.get("s", "e") })
	}
	wg.Wait()
	for _, p := range got {
		if p != got[0] {
			t.Fatal("two values for one endpoint")
		}
	}
}

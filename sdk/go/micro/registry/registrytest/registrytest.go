// Package registrytest holds helpers for the tests of registries.
package registrytest

import (
	"testing"
	"time"

	"github.com/configd/configd/sdk/go/micro/registry"
)

// Result waits up to within for w's next event and returns it with Next's
// error; it fails t when nothing comes in time.
func Result(t testing.TB, w registry.Watcher, within time.Duration) (*registry.Result, error) {
	t.Helper()
	type res struct {
		r   *registry.Result
		err error
	}
	ch := make(chan res, 1)
	go func() { r, err := w.Next(); ch <- res{r, err} }()
	select {
	case got := <-ch:
		return got.r, got.err
	case <-time.After(within):
		t.Fatalf("no watch event within %v", within)
		return nil, nil
	}
}

// Next is Result that also fails t on an error.
func Next(t testing.TB, w registry.Watcher, within time.Duration) *registry.Result {
	t.Helper()
	r, err := Result(t, w, within)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return r
}

// NodeIDs lists the ids of s's nodes, in order.
func NodeIDs(s *registry.Service) []string {
	var ids []string
	for _, n := range s.Nodes {
		ids = append(ids, n.Id)
	}
	return ids
}

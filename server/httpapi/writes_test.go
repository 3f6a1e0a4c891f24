package httpapi_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/configd/configd/server/httpapi"
)

// TestWithWritesWrapsTheRoutesThatCommitRevisions: exactly the routes that
// commit revisions go through the WithWrites middleware (a replica forwards
// them to the cluster's writer); reads, watches and tokens do not.
func TestWithWritesWrapsTheRoutesThatCommitRevisions(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.Method+" "+r.URL.Path)
			mu.Unlock()
			next.ServeHTTP(w, r)
		})
	}
	e := newEnv(t, httpapi.WithWrites(mw))
	e.put("app/a", "1", "")
	e.do(http.MethodGet, "/v1/kv/app/a", nil)
	e.do(http.MethodGet, "/v1/kv?prefix=app/", nil)
	e.do(http.MethodGet, "/v1/history", nil)
	e.do(http.MethodPost, "/v1/txn", []byte(`{"ops":[{"op":"put","key":"app/b","value":"2"}]}`))
	e.do(http.MethodPost, "/v1/rollback", []byte(`{"to":1,"prefix":"app/","reason":"r"}`))
	e.do(http.MethodDelete, "/v1/kv/app/a", nil)
	e.do(http.MethodGet, "/v1/tokens", nil)
	want := []string{"PUT /v1/kv/app/a", "POST /v1/txn", "POST /v1/rollback", "DELETE /v1/kv/app/a"}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(want) {
		t.Fatalf("through the middleware: %q, want %q", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("through the middleware: %q, want %q", seen, want)
		}
	}
}

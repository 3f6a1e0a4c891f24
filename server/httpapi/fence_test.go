package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/configd/configd/api"
	"github.com/configd/configd/server/httpapi"
)

// TestReadNamingARevisionWaitsForIt: a read that names a revision
// (min_rev=, the X-Configd-Rev request header) is answered once the store
// has it, and 503 unavailable if it does not within the read wait; a
// consistent read of a store that runs alone is answered at once.
func TestReadNamingARevisionWaitsForIt(t *testing.T) {
	e := newEnv(t, httpapi.WithReadWait(300*time.Millisecond))
	e.put("app/a", "1", "")

	var kv api.KeyValue
	e.decode(http.StatusOK, &kv, http.MethodGet, "/v1/kv/app/a?min_rev=1&consistent=true", nil)
	if kv.Value != "1" {
		t.Fatalf("min_rev=1: %+v", kv)
	}

	got := make(chan response, 1)
	go func() { got <- e.do(http.MethodGet, "/v1/kv/app/a", nil, api.HeaderRev, "2") }()
	e.put("app/a", "2", "")
	r := <-got
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"value":"2"`) || r.rev() != "2" {
		t.Fatalf("X-Configd-Rev: 2: %d %s (rev %s), want the value of revision 2", r.status, r.body, r.rev())
	}

	for _, path := range []string{"/v1/kv/app/a?min_rev=9", "/v1/kv?prefix=app/&min_rev=9"} {
		start := time.Now()
		r := e.do(http.MethodGet, path, nil)
		if eb := r.errBody(t); r.status != http.StatusServiceUnavailable || eb.Code != api.CodeUnavailable ||
			!strings.Contains(eb.Message, "revision 9") || !strings.Contains(eb.Message, "at revision 2") {
			t.Errorf("%s: %d %+v, want 503 unavailable naming both revisions", path, r.status, eb)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("%s: answered after %v, before the read wait (300ms)", path, d)
		}
	}
	for _, tc := range []struct{ path, hdr string }{
		{"/v1/kv/app/a?min_rev=x", ""}, {"/v1/kv?prefix=app/&consistent=maybe", ""}, {"/v1/kv/app/a", "-1"},
	} {
		var r response
		if tc.hdr != "" {
			r = e.do(http.MethodGet, tc.path, nil, api.HeaderRev, tc.hdr)
		} else {
			r = e.do(http.MethodGet, tc.path, nil)
		}
		if eb := r.errBody(t); r.status != http.StatusBadRequest || eb.Code != api.CodeBadRequest {
			t.Errorf("%s %s: %d %+v, want 400 bad_request", tc.path, tc.hdr, r.status, eb)
		}
	}
}

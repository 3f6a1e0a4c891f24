package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/configd/configd/api"
)

func TestBrowserCrossOriginWritesAreRefused(t *testing.T) {
	e := newEnv(t)
	body := []byte(`{"ops":[{"op":"put","key":"k","value":"evil"}]}`)
	for _, h := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "http://evil.example", "Content-Type", "text/plain"},
	} {
		r := e.do(http.MethodPost, "/v1/txn", body, h...)
		if r.status != http.StatusForbidden {
			t.Fatalf("%v: status %d", h, r.status)
		}
		if b := r.errBody(t); b.Code != api.CodeForbidden || !strings.Contains(b.Message, "cross-origin") {
			t.Fatalf("%v: %+v", h, b)
		}
	}
	// Same-origin pages, and clients that send no browser headers, are fine.
	if r := e.do(http.MethodPost, "/v1/txn", body, "Sec-Fetch-Site", "same-origin"); r.status != http.StatusOK {
		t.Fatalf("same-origin: %d", r.status)
	}
	if r := e.do(http.MethodGet, "/v1/kv/k", nil, "Sec-Fetch-Site", "cross-site"); r.status != http.StatusOK {
		t.Fatalf("a cross-site read: %d", r.status)
	}
}

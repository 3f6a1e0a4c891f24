package gateway

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkJSONRequest is the rpc handler's making of a call's request from the talk's JSON
// body, the gateway's own work on its hot path.
func BenchmarkJSONRequest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/example/call", strings.NewReader(`{"name":"hobo"}`))
		if _, err := jsonRequest(r, "application/json", nil); err != nil {
			b.Fatal(err)
		}
	}
}

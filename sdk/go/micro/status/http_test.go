package status_test

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/configd/configd/sdk/go/micro/status"
)

// TestWriteHTTPWrapsTheErrorInAnErrorField: the body is {"error": <the Micro-Error JSON>}, so
// a client decodes the error of an HTTP answer as it decodes one from the RPC wire.
func TestWriteHTTPWrapsTheErrorInAnErrorField(t *testing.T) {
	rec := httptest.NewRecorder()
	status.WriteHTTP(rec, 504, &status.Error{Code: status.Timeout, Message: "a <slow> node", Service: "example"})
	if rec.Code != 504 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var body struct{ Error json.RawMessage }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	e := status.Unmarshal(string(body.Error))
	if e.Code != status.Timeout || e.Message != "a <slow> node" || e.Service != "example" {
		t.Fatalf("decoded %+v from %s", e, rec.Body)
	}
	if want := `{"error":{"code":408,"message":"a <slow> node","service":"example"}}` + "\n"; rec.Body.String() != want {
		t.Fatalf("body %q, want %q", rec.Body, want)
	}
}

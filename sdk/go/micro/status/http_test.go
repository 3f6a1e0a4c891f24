package status_test

import (
	"net/http/httptest"
	"testing"

	"github.com/configd/configd/sdk/go/micro/status"
)

// TestWriteHTTPAnswersGoMicrosShape: the body is go-micro's {"id","code","detail","status"},
// the code the HTTP status the gateway chose, not the call's.
func TestWriteHTTPAnswersGoMicrosShape(t *testing.T) {
	rec := httptest.NewRecorder()
	status.WriteHTTP(rec, 504, &status.Error{Code: status.Timeout, Message: "a <slow> node", Service: "example", Endpoint: "Example.Call"})
	if rec.Code != 504 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	want := `{"id":"example","code":504,"detail":"a <slow> node","status":"Gateway Timeout","endpoint":"Example.Call"}` + "\n"
	if rec.Body.String() != want {
		t.Fatalf("body %q, want %q", rec.Body, want)
	}
}

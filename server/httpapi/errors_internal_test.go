package httpapi

import (
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/apierror/apierrortest"
)

// TestEveryDoorAnswersEveryErrorAlike sends every error of the shared table
// through the HTTP API's answer, and checks the code and status the table
// gives (grpcapi's TestTheGRPCAPIAnswersEveryErrorAsTheTableDoes checks
// the gRPC API, and web's TestTheUIAnswersEveryErrorAsTheAPIDoes the UI,
// against the same table).
func TestEveryDoorAnswersEveryErrorAlike(t *testing.T) {
	for _, c := range apierrortest.Cases() {
		status, body, known := errorBody(c.Err)
		if status != c.Status || body.Code != c.Code || known != (c.Code != api.CodeInternal) {
			t.Errorf("%s: HTTP %d %s (known %v), want %d %s", c.Name, status, body.Code, known, c.Status, c.Code)
		}
		switch {
		case c.Code == api.CodeInternal && strings.Contains(body.Message, "disk I/O"):
			t.Errorf("%s: the answer exposes the cause: %q", c.Name, body.Message)
		case strings.ContainsAny(body.Message, "\n\r") || body.Message == "":
			t.Errorf("%s: message %q is not one line", c.Name, body.Message)
		}
		if _, keyed, _ := errorBody(apierror.WithKey(c.Err, "the/key")); keyed.Key == "" {
			t.Errorf("%s: the key at fault is lost", c.Name)
		}
	}
	_, body, _ := errorBody(&audit.ConflictError{Key: "k", Expected: 1, Actual: 2, Rev: 7})
	if body.Rev != 7 || body.Key != "k" {
		t.Errorf("conflict body %+v, want rev 7 key k", body)
	}
}

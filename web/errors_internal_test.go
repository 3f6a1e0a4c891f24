package web

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/apierror/apierrortest"
)

// TestTheUIAnswersEveryErrorAsTheAPIDoes sends every error of the shared
// table through the UI's two answers, its error page and its JSON error,
// and checks the status and code the HTTP API and gRPC give it too (see
// server's TestEveryDoorAnswersEveryErrorAlike).
func TestTheUIAnswersEveryErrorAsTheAPIDoes(t *testing.T) {
	u := newUI(openStore(t), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	for _, c := range apierrortest.Cases() {
		rec := httptest.NewRecorder()
		u.fail(rec, httptest.NewRequest("GET", "/ui/x", nil), c.Err)
		if rec.Code != c.Status {
			t.Errorf("%s: the error page is %d, want %d", c.Name, rec.Code, c.Status)
		}
		if c.Code == "internal" && strings.Contains(rec.Body.String(), "disk I/O error") {
			t.Errorf("%s: the page shows the internal cause", c.Name)
		}
		if got := u.classify(httptest.NewRequest("GET", "/ui/x", nil), c.Err); got.Code != c.Code || got.Status != c.Status || got.Message != apierror.Classify(c.Err).Message {
			t.Errorf("%s: the JSON answer is %s %d, want %s %d", c.Name, got.Code, got.Status, c.Code, c.Status)
		}
	}
}

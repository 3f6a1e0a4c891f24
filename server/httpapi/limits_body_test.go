package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/httpapi"
)

// Every route that reads a body caps it, whether the client declares its
// length or streams it chunked: 413 too_large, and nothing is done.
func TestEveryBodyIsCapped(t *testing.T) {
	e := configdtest.AuthEnv(t)
	const limit = 100 << 10 // above the token route's own cap
	ts := e.Serve(e.Handler(httpapi.WithMaxRequestBody(limit)))
	pad := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		name, method, path, body string
	}{
		{"put", http.MethodPut, "/v1/kv/app/big", pad(e.Store.MaxValueSize() + 1)},
		{"txn", http.MethodPost, "/v1/txn", `{"reason":"` + pad(limit) + `","ops":[]}`},
		{"rollback", http.MethodPost, "/v1/rollback", `{"prefix":"app/","to":1,"reason":"` + pad(limit) + `"}`},
		{"token", http.MethodPost, "/v1/tokens", `{"name":"big","grants":[{"permission":"read","prefix":"` + pad(httpapi.MaxTokenBody) + `"}]}`},
	} {
		for _, chunked := range []bool{false, true} {
			name := tc.name
			if chunked {
				name += " chunked"
			}
			t.Run(name, func(t *testing.T) {
				var body io.Reader = strings.NewReader(tc.body)
				if chunked {
					body = io.MultiReader(body) // no length known: sent chunked
				}
				req, err := http.NewRequest(tc.method, ts.URL+tc.path, body)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+e.Secrets[authz.BootstrapTokenName])
				if tc.method == http.MethodPost {
					req.Header.Set("Content-Type", "application/json")
				}
				before := e.Store.Rev()
				resp, err := ts.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var er api.ErrorResponse
				_ = json.NewDecoder(resp.Body).Decode(&er)
				if resp.StatusCode != http.StatusRequestEntityTooLarge || er.Error.Code != api.CodeTooLarge {
					t.Errorf("status %d code %q (%s), want 413 %s", resp.StatusCode, er.Error.Code, er.Error.Message, api.CodeTooLarge)
				}
				if tc.name == "token" && !strings.Contains(er.Error.Message, "65536") {
					t.Errorf("message %q does not give the token body's limit", er.Error.Message)
				}
				if e.Store.Rev() != before {
					t.Errorf("revision moved from %d to %d", before, e.Store.Rev())
				}
			})
		}
	}
	if ts, err := e.Auth.Tokens(t.Context()); err != nil || len(ts) != len(configdtest.Tokens)+1 {
		t.Errorf("tokens after the oversize create: %d, %v", len(ts), err)
	}
}

package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/secrets"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/httpapi"
)

// secretValue must never leave configd but to a reader of its key.
const secretValue = "pa55-Wr9vQx-tr0ub4dor-secret"

// secretEnv is an Env whose store has a fresh master key, serving the
// HTTP API with opts, and ops committed.
func secretEnv(t *testing.T, opts []httpapi.Option, ops ...audit.Op) *configdtest.Env {
	t.Helper()
	mk, _, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	return configdtest.NewEnv(t, configdtest.WithCore(core.WithStoreOptions(audit.WithMasterKey(mk))),
		configdtest.WithHandlerOptions(opts...), configdtest.WithSeed(ops...))
}

func TestSecretWithoutMasterKeyIsRefused(t *testing.T) {
	e := newEnv(t)
	r := e.do(http.MethodPut, "/v1/kv/app/k?secret=true", []byte(secretValue))
	if r.status != http.StatusBadRequest {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if b := r.errBody(t); b.Code != api.CodeNoMasterKey || !strings.Contains(b.Message, "--master-key-file") {
		t.Fatalf("error %+v", b)
	}
	r = e.do(http.MethodPost, "/v1/txn", configdtest.JSON(t, api.TxnRequest{Ops: []api.TxnOp{{Op: "put", Key: "app/k", Value: "v", Secret: true}}}))
	if b := r.errBody(t); r.status != http.StatusBadRequest || b.Code != api.CodeNoMasterKey {
		t.Fatalf("txn: %d %+v", r.status, b)
	}
	if e.st.Rev() != 0 {
		t.Fatal("a refused secret was written")
	}
}

func TestSecretValueOnlyOverTLSOrLoopback(t *testing.T) {
	h := secretEnv(t, nil, audit.Put("app/k", []byte(secretValue), "").AsSecret(), audit.Put("app/p", []byte("plain"), "")).Handler()
	// httptest.NewRequest comes from 192.0.2.1, without TLS.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/kv/app/k", nil))
	if rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), secretValue) || !strings.Contains(rec.Body.String(), "TLS") {
		t.Fatalf("remote plain HTTP GET: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/kv?prefix=app/", nil))
	var list api.ListResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list.KVs) != 2 {
		t.Fatalf("list: %s (%v)", rec.Body, err)
	}
	if k := list.KVs[0]; !k.Withheld() || k.Value != "" || k.Length != len(secretValue) || list.KVs[1].Value != "plain" {
		t.Fatalf("remote plain HTTP list: %+v", list.KVs)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/kv?prefix=app/&format=tree", nil))
	if strings.Contains(rec.Body.String(), secretValue) || !strings.Contains(rec.Body.String(), "hmac-sha256:") {
		t.Fatalf("remote plain HTTP tree: %s", rec.Body)
	}
	// With TLS, the same client gets it.
	req := httptest.NewRequest(http.MethodGet, "https://configd.example/v1/kv/app/k", nil)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), secretValue) {
		t.Fatalf("TLS GET: %d %s", rec.Code, rec.Body)
	}
}

// A watch on a plain connection from another host is refused the moment a
// secret's value would go out on it; over TLS the reader gets the value.
func TestSecretIsNotWatchedOverAPlainRemoteConnection(t *testing.T) {
	h := secretEnv(t, nil, audit.Put("app/k", []byte(secretValue), "").AsSecret()).Handler()

	// httptest.NewRequest comes from 192.0.2.1, without TLS.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/watch?prefix=app/&since=0", nil))
	if rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), secretValue) || !strings.Contains(rec.Body.String(), `app/k\" is secret`) {
		t.Fatalf("remote plain long poll: %d %s", rec.Code, rec.Body)
	}
	req := httptest.NewRequest(http.MethodGet, "/v1/watch?prefix=app/&since=0", nil)
	req.Header.Set("Accept", "text/event-stream")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req) // returns: the refusal ends the stream
	if body := rec.Body.String(); strings.Contains(body, secretValue) || !strings.Contains(body, "event: error") || !strings.Contains(body, `"forbidden"`) {
		t.Fatalf("remote plain SSE: %s", body)
	}
	// Over TLS the same request gets the snapshot with the value.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://configd.example/v1/watch?prefix=app/&since=0", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), secretValue) {
		t.Fatalf("TLS long poll: %d %s", rec.Code, rec.Body)
	}
}

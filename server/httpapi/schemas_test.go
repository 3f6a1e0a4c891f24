package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/configd/configd/api"
)

const limitsSchema = `{"properties": {"limits": {"properties": {"rps": {"type": "integer", "minimum": 1}}}}}`

func TestAWriteThatBreaksASchemaIs422AndWritesNothing(t *testing.T) {
	e := newEnv(t)
	e.put("app/limits", `{"rps": -2}`, "application/json")
	e.put("app/limits", `{"rps": 5}`, "application/json")
	var wr api.WriteResponse
	e.decode(http.StatusOK, &wr, http.MethodPut, "/v1/schemas/app/", []byte(limitsSchema), api.HeaderReason, "positive limits")
	if !wr.Changed || wr.Rev != 3 {
		t.Fatalf("set schema: %+v", wr)
	}
	before := e.snapshot()
	for _, c := range []struct {
		method, path, body string
		headers            []string
	}{
		{"PUT", "/v1/kv/app/limits", `{"rps": -1}`, []string{"Content-Type", "application/json"}},
		{"POST", "/v1/txn", `{"ops":[{"op":"put","key":"app/other","value":"x"},{"op":"put","key":"app/limits","value":"{\"rps\": 0}","content_type":"application/json"}]}`, nil},
		{"POST", "/v1/rollback", `{"prefix":"app/","to":1}`, nil},
	} {
		r := e.do(c.method, c.path, []byte(c.body), c.headers...)
		if r.status != http.StatusUnprocessableEntity {
			t.Fatalf("%s %s: %d %s, want 422", c.method, c.path, r.status, r.body)
		}
		eb := r.errBody(t)
		if eb.Code != api.CodeSchema || eb.Key != "app/limits" || eb.Message != "app/limits: /rps: must be >= 1 (schema app/)" {
			t.Fatalf("%s %s: %+v", c.method, c.path, eb)
		}
	}
	if e.snapshot() != before {
		t.Fatal("a refused write changed the store")
	}
	if wr := e.put("app/limits", `{"rps": 9}`, "application/json"); wr.Rev != 4 {
		t.Fatalf("the next good write: %+v, want rev 4", wr)
	}
}

func TestSchemaRoutes(t *testing.T) {
	e := newEnv(t)
	e.put("app/limits", `{"rps": 0}`, "application/json")
	// An invalid schema: 400 with the compiler's message.
	r := e.do("PUT", "/v1/schemas/app/", []byte(`{"minimum": "one"}`))
	if eb := r.errBody(t); r.status != http.StatusBadRequest || eb.Code != api.CodeBadRequest || !strings.Contains(eb.Message, "minimum") {
		t.Fatalf("invalid schema: %d %+v", r.status, eb)
	}
	// A prefix that is no prefix.
	r = e.do("PUT", "/v1/schemas/app//x/", []byte(`{}`))
	if eb := r.errBody(t); r.status != http.StatusBadRequest || eb.Code != api.CodeBadKey {
		t.Fatalf("bad prefix: %d %+v", r.status, eb)
	}
	// The state breaks it: 422 naming the first violation, unless forced.
	r = e.do("PUT", "/v1/schemas/app", []byte(limitsSchema))
	if eb := r.errBody(t); r.status != http.StatusUnprocessableEntity || eb.Code != api.CodeSchema || !strings.Contains(eb.Message, "app/limits: /rps: must be >= 1 (schema app/)") {
		t.Fatalf("schema the state breaks: %d %+v", r.status, eb)
	}
	var wr api.WriteResponse
	e.decode(http.StatusOK, &wr, "PUT", "/v1/schemas/app?force=true", []byte(limitsSchema), api.HeaderActor, "alice", api.HeaderReason, "tighten")
	var s api.Schema
	e.decode(http.StatusOK, &s, "GET", "/v1/schemas/app/", nil)
	var compact bytes.Buffer
	_ = json.Compact(&compact, []byte(limitsSchema))
	if s.Prefix != "app/" || string(s.Schema) != compact.String() || s.ModRev != wr.Rev || s.Version != 1 {
		t.Fatalf("GET schema: %+v", s)
	}
	var sr api.SchemasResponse
	e.decode(http.StatusOK, &sr, "GET", "/v1/schemas", nil)
	if len(sr.Schemas) != 1 || sr.Schemas[0].Prefix != "app/" {
		t.Fatalf("GET /v1/schemas: %+v", sr)
	}
	// The whole keyspace's schema is /v1/schemas/.
	e.decode(http.StatusOK, nil, "PUT", "/v1/schemas/", []byte(`{"type":"object"}`))
	e.decode(http.StatusOK, nil, "DELETE", "/v1/schemas/app/", nil, api.HeaderReason, "gone")
	e.decode(http.StatusNotFound, nil, "GET", "/v1/schemas/app/", nil)
	var hr api.HistoryResponse
	e.decode(http.StatusOK, &hr, "GET", "/v1/schema-history/app/", nil)
	if len(hr.Revisions) != 2 || hr.Revisions[0].Reason != "gone" || !strings.HasPrefix(hr.Revisions[1].Reason, "forced") ||
		hr.Revisions[1].Actor != "alice" || hr.Revisions[0].Changes[0].New != nil {
		b, _ := json.Marshal(hr)
		t.Fatalf("schema history: %s", b)
	}
	// Schema records are not keys.
	var lr api.ListResponse
	e.decode(http.StatusOK, &lr, "GET", "/v1/kv?prefix=", nil)
	if len(lr.KVs) != 1 {
		t.Fatalf("list of everything: %+v", lr)
	}
}

func TestASecretsRefusalDoesNotQuoteIt(t *testing.T) {
	e := secretEnv(t, nil)
	if st, _, _ := e.Request("PUT", "/v1/schemas/app/", []byte(`{"properties": {"pw": {"pattern": "^x", "minLength": 50}}}`)); st != http.StatusOK {
		t.Fatalf("set schema: %d", st)
	}
	st, _, body := e.Request("PUT", "/v1/kv/app/pw?secret=true", []byte(secretValue), "Content-Type", "text/plain")
	if st != http.StatusUnprocessableEntity || !strings.Contains(string(body), `"schema"`) || strings.Contains(string(body), secretValue) || strings.Contains(string(body), "pa55") {
		t.Fatalf("secret's refusal: %d %s", st, body)
	}
}

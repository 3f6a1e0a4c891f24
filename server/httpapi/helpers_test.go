package httpapi_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/httpapi"
)

// testLimit is the max value size of the test stores: small, so oversize
// values are cheap.
const testLimit = 4096

// env is one store behind one test HTTP server.
type env struct {
	t  testing.TB
	ce *configdtest.Env
	st *audit.Store
	ts *httptest.Server
}

func newEnv(t testing.TB, opts ...httpapi.Option) *env {
	t.Helper()
	e := configdtest.NewEnv(t, configdtest.WithCore(core.WithStoreOptions(audit.WithMaxValueSize(testLimit))),
		configdtest.WithHandlerOptions(opts...))
	return &env{t: t, ce: e, st: e.Store, ts: e.HTTP}
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) rev() string { return r.header.Get(api.HeaderRev) }

// errBody decodes the error payload, failing the test if there is none.
func (r response) errBody(t testing.TB) api.ErrorBody {
	t.Helper()
	var e api.ErrorResponse
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("status %d: body is not an api.ErrorResponse: %q (%v)", r.status, r.body, err)
	}
	if strings.ContainsAny(e.Error.Message, "\n\r") || e.Error.Message == "" {
		t.Errorf("error message %q: want one non-empty line", e.Error.Message)
	}
	if r.status < 500 && strings.Contains(e.Error.Message, "internal error") {
		t.Errorf("status %d has the generic message %q: say what is wrong", r.status, e.Error.Message)
	}
	return e.Error
}

// do sends a request; path is sent as it is, unnormalised. Headers are
// given as "Name", "value" pairs.
func (e *env) do(method, path string, body []byte, headers ...string) response {
	e.t.Helper()
	status, header, b := e.ce.Request(method, path, body, headers...)
	return response{status: status, header: header, body: b}
}

// decode sends a request, expects want and decodes the JSON answer into out.
func (e *env) decode(want int, out any, method, path string, body []byte, headers ...string) response {
	e.t.Helper()
	r := e.do(method, path, body, headers...)
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.status, want, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			e.t.Fatalf("%s %s: decode %T: %v; body %s", method, path, out, err, r.body)
		}
	}
	return r
}

// put sets key and returns the write's answer, failing unless it is 200.
func (e *env) put(key, value, contentType string) api.WriteResponse {
	e.t.Helper()
	var wr api.WriteResponse
	var hdr []string
	if contentType != "" {
		hdr = []string{"Content-Type", contentType}
	}
	e.decode(http.StatusOK, &wr, http.MethodPut, "/v1/kv/"+key, []byte(value), hdr...)
	return wr
}

// snapshot is the whole keyspace and the revision, to show that a failed
// request changed nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	kvs, rev, err := e.st.List(context.Background(), "")
	if err != nil {
		e.t.Fatalf("list: %v", err)
	}
	b, _ := json.Marshal(struct {
		Rev int64
		KVs []audit.KeyValue
	}{rev, kvs})
	return string(b)
}

// newSignalServer serves h and sends on done each time a request's handler
// has returned, so a test can wait for the server side of an exchange that
// the client abandoned.
func newSignalServer(t testing.TB, h http.Handler, done chan<- struct{}) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// dialRaw opens a plain TCP connection to ts.
func dialRaw(t testing.TB, ts *httptest.Server) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

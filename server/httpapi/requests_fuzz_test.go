package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/core"
)

// fuzzValueLimit is the max value size of the fuzzed store.
const fuzzValueLimit = 1024

// fuzzAPI is the HTTP API over a real store in a temporary directory, with
// authentication on, called in process (no sockets).
type fuzzAPI struct {
	h     http.Handler
	st    *audit.Store
	admin string // bearer token with admin on every key
}

func newFuzzAPI(f *testing.F) *fuzzAPI {
	f.Helper()
	ctx := context.Background()
	e := configdtest.NewEnv(f, configdtest.WithAuth(nil),
		configdtest.WithCore(core.WithStoreOptions(audit.WithMaxValueSize(fuzzValueLimit))))
	// A little history, so that rollbacks have something to do.
	for _, txn := range [][]audit.Op{
		{audit.Put("app/x", []byte("1"), ""), audit.Put("app/y", []byte(`{"a":1}`), "application/json")},
		{audit.Put("app/x", []byte("2"), ""), audit.Delete("app/y")},
		{audit.Put("db/host", []byte("h: 1\n"), "application/yaml")},
	} {
		if _, err := e.Store.Commit(ctx, audit.Txn{Actor: "seed", Origin: "test", Ops: txn}); err != nil {
			f.Fatal(err)
		}
	}
	return &fuzzAPI{h: e.Handler(), st: e.Store, admin: e.Secrets[authz.BootstrapTokenName]}
}

// do serves one request with the admin token. rawPath, when set, is the
// escaped form of path, as a client would send it.
func (e *fuzzAPI) do(method, path, rawPath string, body []byte, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/", bytes.NewReader(body))
	req.URL.Path, req.URL.RawPath = path, rawPath
	req.RequestURI = req.URL.RequestURI()
	req.Header.Set("Authorization", "Bearer "+e.admin)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// statusOfCode is the HTTP status that carries each error code.
var statusOfCode = map[string]int{
	api.CodeBadKey:         http.StatusBadRequest,
	api.CodeBadRequest:     http.StatusBadRequest,
	api.CodeBadRevision:    http.StatusBadRequest,
	api.CodeNotFound:       http.StatusNotFound,
	api.CodeRevisionGone:   http.StatusNotFound,
	api.CodeConflict:       http.StatusConflict,
	api.CodeTooLarge:       http.StatusRequestEntityTooLarge,
	api.CodeBadContentType: http.StatusUnsupportedMediaType,
	api.CodeInvalidValue:   http.StatusUnprocessableEntity,
}

// checkAnswer fails on a 5xx and on an error answer that is not a
// well-formed api.ErrorResponse whose code matches its status. It returns
// the error body (zero on success).
func checkAnswer(t *testing.T, what string, rec *httptest.ResponseRecorder) api.ErrorBody {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%s: status %d: %s", what, rec.Code, rec.Body.Bytes())
	}
	if rec.Code < 300 {
		// Token routes do not read or write the keyspace: no revision.
		if rec.Header().Get(api.HeaderRev) == "" && !strings.Contains(what, "/v1/tokens") {
			t.Fatalf("%s: status %d without %s", what, rec.Code, api.HeaderRev)
		}
		return api.ErrorBody{}
	}
	var e api.ErrorResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("%s: status %d, body is not an api.ErrorResponse: %v: %q", what, rec.Code, err, rec.Body.Bytes())
	}
	if want, ok := statusOfCode[e.Error.Code]; !ok || want != rec.Code {
		t.Fatalf("%s: status %d with code %q", what, rec.Code, e.Error.Code)
	}
	if m := e.Error.Message; m == "" || strings.ContainsAny(m, "\r\n") || !utf8.ValidString(m) {
		t.Fatalf("%s: status %d, message %q: want one non-empty line of UTF-8", what, rec.Code, m)
	}
	return e.Error
}

// FuzzPutKey sends PUT /v1/kv/{key} with any key (escaped as a client
// would, '/' kept or sent as %2F), Content-Type and body, and checks:
//
//   - no 5xx, and every refusal is a well-formed error whose code matches
//     its status;
//   - the answer is the one the rules predict, in the order the server
//     checks them: a key keyspace.Validate refuses is 400 bad_key; a
//     form-urlencoded content type (what curl sends by default) 415 before
//     the body is read; a value over the limit 413; a content type
//     NormalizeContentType refuses 415; a value that does not parse under
//     its type 422; otherwise 200;
//   - a value that was stored reads back (GET ?raw=true) byte for byte,
//     with the canonical content type.
func FuzzPutKey(f *testing.F) {
	for _, s := range []struct {
		key, ct, value string
		escapeSlash    bool
	}{
		{"app/db/timeout", "", "30s", false},
		{"app/db/timeout", "text/plain; charset=utf-8", "30s", true},
		{"app/json", "application/json", `{"a":[1,2]}`, false},
		{"app/json", "application/json", `{"a":`, false},
		{"app/yaml", "text/yaml", "a: &x 1\nb: *x\n", false},
		{"app/yaml", "application/yaml", "a: [unclosed", false},
		{"app/bin", "application/octet-stream", "\x00\xff", false},
		{"app/text", "text/plain", "caf\xe9", false},
		{"app/form", "application/x-www-form-urlencoded", "a=b", false},
		{"app/xml", "application/xml", "<a/>", false},
		{"app/bad-ct", "text/plain; charset", "x", false},
		{"", "", "x", false},
		{"/lead", "", "x", false},
		{"trail/", "", "x", false},
		{"a//b", "", "x", true},
		{"a/../b", "", "x", false},
		{"a/./b", "", "x", false},
		{"sp ace/q?uery/h#ash/pc%25t", "", "x", false},
		{"ctl\x00", "", "x", false},
		{"bad\xff", "", "x", false},
		{"ünïcode/ключ", "", "значение", true},
		{strings.Repeat("k", keyspace.MaxKeyLen), "", "x", false},
		{strings.Repeat("k", keyspace.MaxKeyLen+1), "", "x", false},
		{"big", "", strings.Repeat("v", fuzzValueLimit+1), false},
		{"big-form", "application/x-www-form-urlencoded", strings.Repeat(":", fuzzValueLimit+1), false},
		{"big-form", "Application/X-WWW-Form-Urlencoded; charset=utf-8", strings.Repeat(":", fuzzValueLimit+1), false},
	} {
		f.Add(s.key, s.ct, []byte(s.value), s.escapeSlash)
	}
	e := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, key, ct string, value []byte, escapeSlash bool) {
		path := "/v1/kv/" + key
		raw := (&url.URL{Path: path}).EscapedPath()
		if escapeSlash {
			raw = "/v1/kv/" + url.PathEscape(key)
		}
		if raw == path {
			raw = ""
		}
		var hdr []string
		if ct != "" {
			hdr = []string{"Content-Type", ct}
		}
		rec := e.do(http.MethodPut, path, raw, value, hdr...)
		eb := checkAnswer(t, "PUT "+path, rec)

		canon, ctErr := audit.NormalizeContentType(ct)
		var want int
		switch {
		case keyspace.ValidateNew(key) != nil:
			want = http.StatusBadRequest
		case isForm(ct):
			want = http.StatusUnsupportedMediaType
		case len(value) > fuzzValueLimit:
			want = http.StatusRequestEntityTooLarge
		case ctErr != nil:
			want = http.StatusUnsupportedMediaType
		case !valueParses(value, canon):
			want = http.StatusUnprocessableEntity
		default:
			want = http.StatusOK
		}
		if rec.Code != want {
			t.Fatalf("PUT %q (raw %q), Content-Type %q, value %q: status %d (%+v), want %d",
				path, raw, ct, value, rec.Code, eb, want)
		}
		if want == http.StatusBadRequest && eb.Code != api.CodeBadKey {
			t.Fatalf("PUT %q: invalid key answered with code %q, want %q", path, eb.Code, api.CodeBadKey)
		}
		if rec.Code != http.StatusOK {
			return
		}
		// It reads back as it was sent.
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path, req.URL.RawPath, req.URL.RawQuery = path, raw, "raw=true"
		req.Header.Set("Authorization", "Bearer "+e.admin)
		back := httptest.NewRecorder()
		e.h.ServeHTTP(back, req)
		if back.Code != http.StatusOK || !bytes.Equal(back.Body.Bytes(), value) || back.Header().Get("Content-Type") != canon {
			t.Fatalf("GET %q after PUT: status %d, %s %q; want %s %q", path, back.Code,
				back.Header().Get("Content-Type"), back.Body.Bytes(), canon, value)
		}
	})
}

// isForm reports whether ct names the form type curl sends by default,
// which the server refuses before it reads the body.
func isForm(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// valueParses is what the store accepts under a canonical content type.
func valueParses(v []byte, ct string) bool {
	switch ct {
	case api.TypeText:
		return utf8.Valid(v)
	case api.TypeJSON:
		return json.Valid(v)
	case api.TypeYAML:
		var x any
		return yaml.Unmarshal(v, &x) == nil
	}
	return true
}

// Routes with a JSON request body, by FuzzRequestBody's route number.
var bodyRoutes = []struct {
	path string
	req  func() any
}{
	{"/v1/txn", func() any { return new(api.TxnRequest) }},
	{"/v1/rollback", func() any { return new(api.RollbackRequest) }},
	{"/v1/tokens", func() any { return new(api.TokenRequest) }},
}

// FuzzRequestBody posts any body to the routes that decode JSON (POST
// /v1/txn, /v1/rollback, /v1/tokens) and checks:
//
//   - no 5xx, and every refusal is a well-formed error whose code matches
//     its status;
//   - a body that strict JSON decoding (unknown fields and trailing data
//     refused, as docs/api.md says) refuses is a 400 bad_request; one it
//     accepts is not refused as malformed;
//   - the decoded request, re-encoded, decodes to the same request, and
//     the server does not find the re-encoded body malformed either;
//   - what succeeds did what it says: a transaction's puts read back with
//     their values and its deletes are gone, a rollback had exactly one
//     scope and a target revision, a token was created only under a valid
//     name with canonical grants.
func FuzzRequestBody(f *testing.F) {
	for _, s := range []struct {
		route uint8
		body  string
	}{
		{0, `{"reason":"r","ops":[{"op":"put","key":"app/a","value":"1"},{"op":"delete","key":"app/x"}]}`},
		{0, `{"ops":[{"op":"put","key":"app/b","value":"AP8=","encoding":"base64","content_type":"application/octet-stream"}]}`},
		{0, `{"ops":[{"op":"put","key":"app/b","value":"not base64","encoding":"base64"}]}`},
		{0, `{"ops":[{"op":"put","key":"app/b","value":"x","encoding":"hex"}]}`},
		{0, `{"ops":[{"op":"put","key":"app/j","value":"{","content_type":"application/json"}]}`},
		{0, `{"ops":[{"op":"put","key":"app/c","value":"x","if_mod_rev":0}]}`},
		{0, `{"ops":[{"op":"put","key":"app/c","value":"x","if_mod_rev":-1}]}`},
		{0, `{"ops":[{"op":"put","key":"app/c","value":"x","if_mod_rev":1e3}]}`},
		{0, `{"ops":[{"op":"delete","key":"app/c","value":"x"}]}`},
		{0, `{"ops":[{"op":"move","key":"app/c"}]}`},
		{0, `{"ops":[{"op":"put","key":"a//b","value":"x"}]}`},
		{0, `{"ops":[{"op":"put","key":"k","value":"1"},{"op":"delete","key":"k"}]}`},
		{0, `{"ops":[]}`},
		{0, `{"ops":null}`},
		{0, `null`},
		{0, ``},
		{0, `{"ops":[{"op":"put","key":"k","value":"1"}]} {}`},
		{0, `{"ops":[],"extra":1}`},
		{0, `{"ops":[{"op":"put","key":"k","value":"caf\xe9"}]}`},
		{0, `[1,2]`},
		{1, `{"key":"app/x","to":1}`},
		{1, `{"prefix":"app","to":1,"dry_run":true}`},
		{1, `{"all":true,"to":2,"expect_rev":1,"reason":"undo"}`},
		{1, `{"prefix":"/","to":1}`},
		{1, `{"key":"app/x","prefix":"app","to":1}`},
		{1, `{"to":1}`},
		{1, `{"key":"app/x","to":0}`},
		{1, `{"key":"app/x","to":99999}`},
		{1, `{"key":"app/x","to":1,"expect_rev":-1}`},
		{1, `{"key":"../x","to":1}`},
		{1, `{"key":"app/x","to":"1"}`},
		{2, `{"name":"ci","grants":[{"permission":"read","prefix":"app"}]}`},
		{2, `{"name":"ci-2","grants":[{"permission":"admin","prefix":""},{"permission":"write","prefix":"db/"}]}`},
		{2, `{"name":"bad name","grants":[{"permission":"read","prefix":""}]}`},
		{2, `{"name":"nogrants","grants":[]}`},
		{2, `{"name":"perm","grants":[{"permission":"root","prefix":""}]}`},
		{2, `{"name":"pfx","grants":[{"permission":"read","prefix":"a//"}]}`},
		{2, `{"name":"` + strings.Repeat("n", 65) + `","grants":[{"permission":"read","prefix":""}]}`},
	} {
		f.Add(s.route, []byte(s.body))
	}
	e := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := bodyRoutes[int(route)%len(bodyRoutes)]
		req := r.req()
		decErr := strictDecode(body, req)

		rec := e.do(http.MethodPost, r.path, "", body, "Content-Type", "application/json")
		eb := checkAnswer(t, "POST "+r.path, rec)
		malformed := rec.Code == http.StatusBadRequest && strings.HasPrefix(eb.Message, "malformed request body")
		switch {
		case decErr != nil && !malformed:
			t.Fatalf("POST %s %q: strict decoding refuses it (%v) but the server answers %d %+v", r.path, body, decErr, rec.Code, eb)
		case decErr == nil && malformed:
			t.Fatalf("POST %s %q: decodes strictly but the server says %q", r.path, body, eb.Message)
		case decErr != nil:
			return
		}

		// The decoded request survives re-encoding.
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", req, err)
		}
		req2 := r.req()
		if err := strictDecode(again, req2); err != nil || !reflect.DeepEqual(req, req2) {
			t.Fatalf("%q decodes to %#v, re-encoded as %s decodes to %#v, %v", body, req, again, req2, err)
		}

		if rec.Code < 300 {
			switch req := req.(type) {
			case *api.TxnRequest:
				checkTxnDone(t, e, req)
			case *api.RollbackRequest:
				checkRollbackScope(t, req)
			case *api.TokenRequest:
				checkTokenCreated(t, req, rec.Body.Bytes())
			}
		}

		rec2 := e.do(http.MethodPost, r.path, "", again, "Content-Type", "application/json")
		eb2 := checkAnswer(t, "POST "+r.path+" (re-encoded)", rec2)
		if rec2.Code == http.StatusBadRequest && strings.HasPrefix(eb2.Message, "malformed request body") {
			t.Fatalf("POST %s: %q is fine but its re-encoding %s is malformed: %s", r.path, body, again, eb2.Message)
		}
	})
}

// strictDecode decodes one JSON object as the API documents it: unknown
// fields and trailing data are errors.
func strictDecode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.Decode(&struct{}{}) != io.EOF {
		return errors.New("more data after the JSON object")
	}
	return nil
}

func checkTxnDone(t *testing.T, e *fuzzAPI, req *api.TxnRequest) {
	t.Helper()
	if len(req.Ops) == 0 {
		t.Fatalf("empty transaction %#v succeeded", req)
	}
	for _, op := range req.Ops {
		if err := keyspace.Validate(op.Key); err != nil {
			t.Fatalf("transaction with the invalid key %q succeeded", op.Key)
		}
		kv, err := e.st.Get(context.Background(), op.Key)
		switch op.Op {
		case "put":
			want, derr := api.DecodeValue(op.Value, op.Encoding)
			if derr != nil || (op.Encoding != "" && op.Encoding != api.EncodingBase64) {
				t.Fatalf("op %#v with a bad encoding or value succeeded", op)
			}
			if err != nil || !bytes.Equal(kv.Value, want) {
				t.Fatalf("after txn put %#v: %q, %v", op, kv.Value, err)
			}
			if _, cerr := audit.NormalizeContentType(op.ContentType); cerr != nil || !valueParses(want, kv.ContentType) {
				t.Fatalf("op %#v stored with content type %q", op, kv.ContentType)
			}
		case "delete":
			if !errors.Is(err, audit.ErrNotFound) {
				t.Fatalf("after txn delete %q: %v", op.Key, err)
			}
		default:
			t.Fatalf("op %q succeeded", op.Op)
		}
	}
}

func checkRollbackScope(t *testing.T, req *api.RollbackRequest) {
	t.Helper()
	n := 0
	for _, set := range []bool{req.Key != "", req.Prefix != "", req.All} {
		if set {
			n++
		}
	}
	if n != 1 || req.To < 1 || req.ExpectRev < 0 {
		t.Fatalf("rollback %#v succeeded: want one scope, to >= 1, expect_rev >= 0", req)
	}
	if req.Key != "" && keyspace.Validate(req.Key) != nil {
		t.Fatalf("rollback of the invalid key %q succeeded", req.Key)
	}
	if req.Prefix != "" {
		if p, err := keyspace.Prefix(req.Prefix); err != nil || p == "" {
			t.Fatalf("rollback of the prefix %q succeeded", req.Prefix)
		}
	}
}

func checkTokenCreated(t *testing.T, req *api.TokenRequest, body []byte) {
	t.Helper()
	var tc api.TokenCreated
	if err := json.Unmarshal(body, &tc); err != nil {
		t.Fatalf("token answer %q: %v", body, err)
	}
	if tc.Name != req.Name || !strings.HasPrefix(tc.Token, authz.TokenPrefix) || len(tc.Grants) != len(req.Grants) || len(req.Grants) == 0 {
		t.Fatalf("token request %#v answered with %#v", req, tc)
	}
	if req.Name == "" || len(req.Name) > authz.MaxTokenNameLen || strings.IndexFunc(req.Name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@", r))
	}) >= 0 {
		t.Fatalf("token with the name %q was created", req.Name)
	}
	for i, g := range req.Grants {
		p, err := keyspace.Prefix(g.Prefix)
		if err != nil || tc.Grants[i].Prefix != p || tc.Grants[i].Permission != g.Permission {
			t.Fatalf("grant %#v became %#v (canonical prefix %q, %v)", g, tc.Grants[i], p, err)
		}
		switch g.Permission {
		case api.PermissionRead, api.PermissionWrite, api.PermissionAdmin:
		default:
			t.Fatalf("grant with permission %q was created", g.Permission)
		}
	}
}

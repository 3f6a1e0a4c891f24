package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
)

func TestPutThenGetReturnsValueAndRevisions(t *testing.T) {
	e := newEnv(t)
	wr := e.put("app/db/timeout", "5s", "")
	if !wr.Changed || wr.Rev != 1 {
		t.Fatalf("first put: %+v, want rev 1 changed", wr)
	}
	wr = e.put("app/db/timeout", "10s", "text/plain; charset=utf-8")
	if !wr.Changed || wr.Rev != 2 {
		t.Fatalf("second put: %+v, want rev 2 changed", wr)
	}

	var kv api.KeyValue
	r := e.decode(http.StatusOK, &kv, http.MethodGet, "/v1/kv/app/db/timeout", nil)
	want := api.KeyValue{Key: "app/db/timeout", Value: "10s", ContentType: api.TypeText, CreateRev: 1, ModRev: 2, Version: 2}
	if kv != want {
		t.Errorf("get: %+v, want %+v", kv, want)
	}
	if r.rev() != "2" {
		t.Errorf("%s = %q, want 2", api.HeaderRev, r.rev())
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
}

func TestPutRecordsActorReasonAndOrigin(t *testing.T) {
	e := newEnv(t)
	e.decode(http.StatusOK, nil, http.MethodPut, "/v1/kv/k", []byte("v"),
		api.HeaderActor, "alice", api.HeaderReason, "raise the limit")
	e.put("k2", "v", "") // no actor header
	var r1, r2 api.Revision
	e.decode(http.StatusOK, &r1, http.MethodGet, "/v1/revisions/1", nil)
	e.decode(http.StatusOK, &r2, http.MethodGet, "/v1/revisions/2", nil)
	if r1.Actor != "alice" || r1.Reason != "raise the limit" || r1.Origin != "api" {
		t.Errorf("revision 1: actor %q reason %q origin %q", r1.Actor, r1.Reason, r1.Origin)
	}
	if r2.Actor != "anonymous@127.0.0.1" {
		t.Errorf("revision 2: actor %q, want anonymous@127.0.0.1", r2.Actor)
	}
}

func TestPutOfSameValueRecordsNothing(t *testing.T) {
	e := newEnv(t)
	e.put("k", `{"a":1}`, "application/json")
	wr := e.put("k", `{"a":1}`, "application/json; charset=utf-8")
	if wr.Changed || wr.Rev != 1 {
		t.Fatalf("same put: %+v, want rev 1 unchanged", wr)
	}
	if got := e.st.Rev(); got != 1 {
		t.Errorf("store rev %d, want 1", got)
	}
}

func TestGetRawReturnsBytesWithStoredContentType(t *testing.T) {
	e := newEnv(t)
	bin := []byte{0xff, 0x00, 0x10, 'x'}
	e.decode(http.StatusOK, nil, http.MethodPut, "/v1/kv/bin", bin, "Content-Type", api.TypeBinary)
	e.put("doc", "a: 1\n", "text/yaml")

	r := e.do(http.MethodGet, "/v1/kv/bin?raw=true", nil)
	if r.status != http.StatusOK || string(r.body) != string(bin) {
		t.Fatalf("raw bin: %d %q, want 200 %q", r.status, r.body, bin)
	}
	if ct := r.header.Get("Content-Type"); ct != api.TypeBinary {
		t.Errorf("raw Content-Type %q, want %s", ct, api.TypeBinary)
	}
	if r.rev() != "2" {
		t.Errorf("raw %s = %q, want 2", api.HeaderRev, r.rev())
	}
	r = e.do(http.MethodGet, "/v1/kv/doc?raw=true", nil)
	if string(r.body) != "a: 1\n" || r.header.Get("Content-Type") != api.TypeYAML {
		t.Errorf("raw yaml: %q as %q", r.body, r.header.Get("Content-Type"))
	}

	var kv api.KeyValue
	e.decode(http.StatusOK, &kv, http.MethodGet, "/v1/kv/bin", nil)
	got, err := kv.Bytes()
	if err != nil || string(got) != string(bin) || kv.Encoding != api.EncodingBase64 {
		t.Errorf("json bin: %+v (%v), want base64 of %q", kv, err, bin)
	}
}

func TestGetAtRevisionReadsOldValue(t *testing.T) {
	e := newEnv(t)
	e.put("k", "one", "")
	e.put("k", "two", "")
	e.decode(http.StatusOK, nil, http.MethodDelete, "/v1/kv/k", nil)

	var kv api.KeyValue
	r := e.decode(http.StatusOK, &kv, http.MethodGet, "/v1/kv/k?rev=1", nil)
	if kv.Value != "one" || kv.ModRev != 1 {
		t.Errorf("rev=1: %+v, want one at mod_rev 1", kv)
	}
	if r.rev() != "1" {
		t.Errorf("rev=1: %s = %q, want 1 (the revision read at)", api.HeaderRev, r.rev())
	}
	e.decode(http.StatusOK, &kv, http.MethodGet, "/v1/kv/k?rev=2", nil)
	if kv.Value != "two" {
		t.Errorf("rev=2: %+v, want two", kv)
	}

	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/v1/kv/k", http.StatusNotFound, api.CodeNotFound},
		{"/v1/kv/nope", http.StatusNotFound, api.CodeNotFound},
		{"/v1/kv/k?rev=99", http.StatusBadRequest, api.CodeBadRevision},
		{"/v1/kv/k?rev=x", http.StatusBadRequest, api.CodeBadRequest},
		{"/v1/kv/k?rev=-1", http.StatusBadRequest, api.CodeBadRequest},
		{"/v1/kv/k?raw=maybe", http.StatusBadRequest, api.CodeBadRequest},
		{"/v1/kv/k?revision=1", http.StatusBadRequest, api.CodeBadRequest},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := e.do(http.MethodGet, tc.path, nil)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tc.status, r.body)
			}
			if b := r.errBody(t); b.Code != tc.code {
				t.Errorf("code %q, want %q (%s)", b.Code, tc.code, b.Message)
			}
			if r.rev() == "" {
				t.Errorf("no %s header", api.HeaderRev)
			}
		})
	}
}

func TestPutIfModRevIsCompareAndSet(t *testing.T) {
	e := newEnv(t)
	var wr api.WriteResponse
	e.decode(http.StatusOK, &wr, http.MethodPut, "/v1/kv/k?if_mod_rev=0", []byte("a"))
	before := e.snapshot()

	r := e.do(http.MethodPut, "/v1/kv/k?if_mod_rev=0", []byte("b"))
	if r.status != http.StatusConflict {
		t.Fatalf("create twice: status %d, want 409; %s", r.status, r.body)
	}
	b := r.errBody(t)
	if b.Code != api.CodeConflict || b.Rev != 1 || b.Key != "k" {
		t.Errorf("conflict body %+v, want code conflict rev 1 key k", b)
	}
	r = e.do(http.MethodPut, "/v1/kv/k?if_mod_rev=7", []byte("b"))
	if r.status != http.StatusConflict {
		t.Fatalf("stale mod_rev: status %d, want 409", r.status)
	}
	if got := e.snapshot(); got != before {
		t.Errorf("failed CAS changed the store:\n%s\nwant\n%s", got, before)
	}
	e.decode(http.StatusOK, &wr, http.MethodPut, "/v1/kv/k?if_mod_rev="+strconv.FormatInt(wr.Rev, 10), []byte("b"))
	if !wr.Changed || wr.Rev != 2 {
		t.Errorf("CAS with the right mod_rev: %+v", wr)
	}
	r = e.do(http.MethodPut, "/v1/kv/k?if_mod_rev=abc", []byte("c"))
	if r.status != http.StatusBadRequest || r.errBody(t).Code != api.CodeBadRequest {
		t.Errorf("if_mod_rev=abc: %d %s", r.status, r.body)
	}
}

func TestDeleteRemovesKeyAndMissingKeyIs404(t *testing.T) {
	e := newEnv(t)
	e.put("k", "v", "")
	var wr api.WriteResponse
	r := e.decode(http.StatusOK, &wr, http.MethodDelete, "/v1/kv/k", nil)
	if !wr.Changed || wr.Rev != 2 || r.rev() != "2" {
		t.Errorf("delete: %+v header %q, want rev 2 changed", wr, r.rev())
	}
	r = e.do(http.MethodDelete, "/v1/kv/k", nil)
	if r.status != http.StatusNotFound || r.errBody(t).Code != api.CodeNotFound {
		t.Errorf("delete missing: %d %s, want 404 not_found", r.status, r.body)
	}
	if e.st.Rev() != 2 {
		t.Errorf("delete of a missing key made revision %d", e.st.Rev())
	}
	e.put("k", "v2", "")
	r = e.do(http.MethodDelete, "/v1/kv/k?if_mod_rev=2", nil)
	if r.status != http.StatusConflict || r.errBody(t).Rev != 3 {
		t.Errorf("delete with stale if_mod_rev: %d %s, want 409 with rev 3", r.status, r.body)
	}
	e.decode(http.StatusOK, &wr, http.MethodDelete, "/v1/kv/k?if_mod_rev=3", nil)
	if !wr.Changed {
		t.Errorf("delete with the right if_mod_rev: %+v", wr)
	}
}

func TestBadKeysAreRefusedAndChangeNothing(t *testing.T) {
	e := newEnv(t)
	e.put("ok", "v", "")
	before := e.snapshot()
	for _, tc := range []struct{ name, path string }{
		{"empty", "/v1/kv/"},
		{"empty segment", "/v1/kv/a//b"},
		{"dot dot", "/v1/kv/../x"},
		{"dot", "/v1/kv/a/./b"},
		{"trailing slash", "/v1/kv/a/"},
		{"control char", "/v1/kv/a%01b"},
		{"NUL", "/v1/kv/a%00b"},
		{"too long", "/v1/kv/" + strings.Repeat("k", 513)},
		{"invalid UTF-8", "/v1/kv/a%FFb"},
		{"escaped slash makes empty segment", "/v1/kv/a%2F%2Fb"},
	} {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				var body []byte
				if method == http.MethodPut {
					body = []byte("x")
				}
				r := e.do(method, tc.path, body)
				if r.status != http.StatusBadRequest {
					t.Fatalf("status %d, want 400; body %s", r.status, r.body)
				}
				if b := r.errBody(t); b.Code != api.CodeBadKey {
					t.Errorf("code %q, want bad_key (%s)", b.Code, b.Message)
				}
			})
		}
	}
	if got := e.snapshot(); got != before {
		t.Errorf("bad keys changed the store:\n%s\nwant\n%s", got, before)
	}
	// The longest valid key works.
	e.put(strings.Repeat("k", 512), "v", "")
	// A percent-encoded key names the same key as its plain spelling.
	e.put("sp%20ace/x%2Fy", "v", "")
	var kv api.KeyValue
	e.decode(http.StatusOK, &kv, http.MethodGet, "/v1/kv/sp%20ace/x/y", nil)
	if kv.Key != "sp ace/x/y" {
		t.Errorf("escaped key read back as %q", kv.Key)
	}
	// Escaped characters that a path cannot carry plainly are part of the key.
	e.put("pct%25/q%3F/h%23", "v", "")
	e.decode(http.StatusOK, &kv, http.MethodGet, "/v1/kv/pct%25/q%3F/h%23", nil)
	if kv.Key != "pct%/q?/h#" {
		t.Errorf("key with %%, ? and # read back as %q", kv.Key)
	}
	// HEAD answers like GET, without a body.
	if r := e.do(http.MethodHead, "/v1/kv/pct%25/q%3F/h%23", nil); r.status != http.StatusOK || r.rev() == "" {
		t.Errorf("HEAD: %d, %s %q", r.status, api.HeaderRev, r.rev())
	}
}

// TestKeysThatLookLikeOthersAreRefused: a key with an invisible or
// direction-changing character, or not in NFC, is refused (400 bad_key) by
// a put and a transaction, and nothing is written; reads and deletes still
// take such a key (one stored before the rule), here answering 404.
func TestKeysThatLookLikeOthersAreRefused(t *testing.T) {
	e := newEnv(t)
	e.put("app/ab", "v", "")
	before := e.snapshot()
	for _, key := range []string{"app/a\u200bb", "app/\u202eexe.txt", "app/nb\u00a0sp", "app/caf\u0065\u0301"} {
		r := e.do(http.MethodPut, "/v1/kv/"+url.PathEscape(key), []byte("x"))
		if r.status != http.StatusBadRequest || r.errBody(t).Code != api.CodeBadKey {
			t.Errorf("PUT %q: %d %s, want 400 bad_key", key, r.status, r.body)
		}
		body := configdtest.JSON(t, api.TxnRequest{Ops: []api.TxnOp{{Op: "put", Key: key, Value: "x"}}})
		if r := e.do(http.MethodPost, "/v1/txn", body, "Content-Type", "application/json"); r.status != http.StatusBadRequest || r.errBody(t).Code != api.CodeBadKey {
			t.Errorf("txn put %q: %d %s, want 400 bad_key", key, r.status, r.body)
		}
	}
	if got := e.snapshot(); got != before {
		t.Errorf("refused keys changed the store:\n%s\nwant\n%s", got, before)
	}
	legacy := url.PathEscape("app/a\u200bb")
	e.decode(http.StatusNotFound, nil, http.MethodGet, "/v1/kv/"+legacy, nil)
	e.decode(http.StatusNotFound, nil, http.MethodDelete, "/v1/kv/"+legacy, nil)
}

func TestFailedPutsChangeNothing(t *testing.T) {
	e := newEnv(t)
	e.put("k", "original", "")
	before := e.snapshot()
	for _, tc := range []struct {
		name    string
		body    string
		ctype   string
		chunked bool
		status  int
		code    string
		msg     string
	}{
		{name: "oversize", body: strings.Repeat("x", testLimit+1), status: 413, code: api.CodeTooLarge},
		{name: "oversize chunked", body: strings.Repeat("x", 3*testLimit), chunked: true, status: 413, code: api.CodeTooLarge},
		{name: "bad JSON", body: `{"a":`, ctype: "application/json", status: 422, code: api.CodeInvalidValue},
		{name: "bad YAML", body: "a: [1, 2\nb: {", ctype: "application/yaml", status: 422, code: api.CodeInvalidValue},
		{name: "text not UTF-8", body: "\xff\xfe", ctype: "text/plain", status: 422, code: api.CodeInvalidValue},
		{name: "unknown content type", body: "<a/>", ctype: "application/xml", status: 415, code: api.CodeBadContentType},
		{name: "curl -d", body: "a=b", ctype: "application/x-www-form-urlencoded", status: 415, code: api.CodeBadContentType, msg: "--data-binary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPut, e.ts.URL+"/v1/kv/k", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.chunked {
				req.ContentLength = -1 // no Content-Length: the server finds out by reading
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var eb api.ErrorResponse
			derr := json.NewDecoder(resp.Body).Decode(&eb)
			resp.Body.Close()
			if resp.StatusCode != tc.status || derr != nil {
				t.Fatalf("status %d (%v), want %d", resp.StatusCode, derr, tc.status)
			}
			if eb.Error.Code != tc.code || eb.Error.Key != "k" {
				t.Errorf("error %+v, want code %s key k", eb.Error, tc.code)
			}
			if !strings.Contains(eb.Error.Message, tc.msg) {
				t.Errorf("message %q does not mention %q", eb.Error.Message, tc.msg)
			}
		})
	}
	if got := e.snapshot(); got != before {
		t.Errorf("failed puts changed the store:\n%s\nwant\n%s", got, before)
	}
	// A value of exactly the limit is accepted.
	if wr := e.put("k", strings.Repeat("y", testLimit), ""); !wr.Changed {
		t.Errorf("value of exactly the limit: %+v", wr)
	}
}

func TestListAndTree(t *testing.T) {
	e := newEnv(t)
	e.put("app/db", "primary", "")
	e.put("app/db/host", "db.local", "")
	e.put("app/db/port", `5432`, "application/json")
	e.put("app/limits", "max: 10\nratio: .nan\nnames: [a, b]\n", "application/yaml")
	e.put("app/blob", "\xff\x01", "application/octet-stream")
	e.put("apple", "not under app/", "")
	e.put("other/x", "y", "")

	var lr api.ListResponse
	r := e.decode(http.StatusOK, &lr, http.MethodGet, "/v1/kv?prefix=app", nil)
	var keys []string
	for _, kv := range lr.KVs {
		keys = append(keys, kv.Key)
	}
	if got := strings.Join(keys, ","); got != "app/blob,app/db,app/db/host,app/db/port,app/limits" {
		t.Errorf("list keys %s", got)
	}
	if lr.Rev != 7 || lr.Prefix != "app/" || r.rev() != "7" {
		t.Errorf("list rev %d prefix %q header %q", lr.Rev, lr.Prefix, r.rev())
	}

	var all api.ListResponse
	e.decode(http.StatusOK, &all, http.MethodGet, "/v1/kv", nil)
	if len(all.KVs) != 7 {
		t.Errorf("list of everything has %d keys, want 7", len(all.KVs))
	}
	var old api.ListResponse
	e.decode(http.StatusOK, &old, http.MethodGet, "/v1/kv?prefix=app/&rev=2", nil)
	if len(old.KVs) != 2 || old.Rev != 2 {
		t.Errorf("list at rev 2: %+v", old)
	}

	var empty map[string]any
	e.decode(http.StatusOK, &empty, http.MethodGet, "/v1/kv?prefix=nothing", nil)
	if kvs, ok := empty["kvs"].([]any); !ok || len(kvs) != 0 {
		t.Errorf("empty list: kvs is %#v, want []", empty["kvs"])
	}

	var tr api.TreeResponse
	e.decode(http.StatusOK, &tr, http.MethodGet, "/v1/kv?prefix=app/&format=tree", nil)
	got, _ := json.Marshal(tr.Tree)
	want := `{"blob":"/wE=","db":{"_value":"primary","host":"db.local","port":5432},"limits":{"max":10,"names":["a","b"],"ratio":".nan"}}`
	if string(got) != want {
		t.Errorf("tree\n%s\nwant\n%s", got, want)
	}

	for _, tc := range []struct{ path, code string }{
		{"/v1/kv?prefix=a//b", api.CodeBadKey},
		{"/v1/kv?prefix=app&format=xml", api.CodeBadRequest},
		{"/v1/kv?prefix=app&rev=x", api.CodeBadRequest},
		{"/v1/kv?prefix=app&rev=100", api.CodeBadRevision},
	} {
		r := e.do(http.MethodGet, tc.path, nil)
		if r.status != http.StatusBadRequest || r.errBody(t).Code != tc.code {
			t.Errorf("%s: %d %s, want 400 %s", tc.path, r.status, r.body, tc.code)
		}
	}
}

func TestClientDisconnectMidBodyCommitsNothing(t *testing.T) {
	done := make(chan struct{}, 1)
	e := newEnv(t)
	// A second server over the same store, which says when its handler
	// has returned.
	h := e.ts.Config.Handler
	ts := newSignalServer(t, h, done)
	before := e.snapshot()

	conn := dialRaw(t, ts)
	// Promise 1000 bytes, send 10, hang up.
	_, err := conn.Write([]byte("PUT /v1/kv/cut HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n" +
		"Content-Length: 1000\r\n\r\n0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	<-done

	if got := e.snapshot(); got != before {
		t.Errorf("a cut-short PUT changed the store:\n%s\nwant\n%s", got, before)
	}
	if _, err := e.st.Get(context.Background(), "cut"); err == nil {
		t.Errorf("key cut exists after a cut-short PUT")
	}
}

package httpapi_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/server/httpapi"
)

func TestTxnCommitsAllOpsAsOneRevision(t *testing.T) {
	e := newEnv(t)
	e.put("gone", "x", "")
	zero := int64(0)
	req := api.TxnRequest{Reason: "deploy 42", Ops: []api.TxnOp{
		{Op: "put", Key: "a", Value: "1"},
		{Op: "put", Key: "b", Value: "/wE=", Encoding: api.EncodingBase64, ContentType: api.TypeBinary, IfModRev: &zero},
		{Op: "delete", Key: "gone"},
	}}
	var wr api.WriteResponse
	r := e.decode(http.StatusOK, &wr, http.MethodPost, "/v1/txn", configdtest.JSON(t, req), api.HeaderActor, "bob")
	if wr.Rev != 2 || !wr.Changed || r.rev() != "2" {
		t.Fatalf("txn: %+v header %q, want rev 2 changed", wr, r.rev())
	}
	var rev api.Revision
	e.decode(http.StatusOK, &rev, http.MethodGet, "/v1/revisions/2", nil)
	if rev.NumChanges != 3 || rev.Actor != "bob" || rev.Reason != "deploy 42" || len(rev.Changes) != 3 {
		t.Errorf("revision 2: %+v", rev)
	}
	var kv api.KeyValue
	e.decode(http.StatusOK, &kv, http.MethodGet, "/v1/kv/b", nil)
	if b, _ := kv.Bytes(); string(b) != "\xff\x01" {
		t.Errorf("b = %q", b)
	}
	// The same transaction again changes nothing.
	req.Ops = req.Ops[:1]
	e.decode(http.StatusOK, &wr, http.MethodPost, "/v1/txn", configdtest.JSON(t, req))
	if wr.Changed || wr.Rev != 2 {
		t.Errorf("no-op txn: %+v", wr)
	}
}

func TestFailedTxnsChangeNothing(t *testing.T) {
	e := newEnv(t, httpapi.WithMaxRequestBody(64<<10))
	e.put("a", "1", "")
	before := e.snapshot()
	stale := int64(99)
	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"malformed JSON", `{"ops":[`, 400, api.CodeBadRequest},
		{"empty body", ``, 400, api.CodeBadRequest},
		{"not an object", `[1]`, 400, api.CodeBadRequest},
		{"trailing data", `{"ops":[{"op":"put","key":"a","value":"2"}]} {}`, 400, api.CodeBadRequest},
		{"unknown field", `{"ops":[{"op":"put","key":"a","value":"2"}],"dry":true}`, 400, api.CodeBadRequest},
		{"unknown op field", `{"ops":[{"op":"put","key":"a","val":"2"}]}`, 400, api.CodeBadRequest},
		{"no ops", `{"ops":[]}`, 400, api.CodeBadRequest},
		{"bad op", `{"ops":[{"op":"patch","key":"a"}]}`, 400, api.CodeBadRequest},
		{"delete with value", `{"ops":[{"op":"delete","key":"a","value":"x"}]}`, 400, api.CodeBadRequest},
		{"bad encoding", `{"ops":[{"op":"put","key":"a","value":"2","encoding":"hex"}]}`, 400, api.CodeBadRequest},
		{"bad base64", `{"ops":[{"op":"put","key":"a","value":"!!","encoding":"base64"}]}`, 400, api.CodeBadRequest},
		{"duplicate key", `{"ops":[{"op":"put","key":"a","value":"2"},{"op":"delete","key":"a"}]}`, 400, api.CodeBadRequest},
		{"negative if_mod_rev", `{"ops":[{"op":"put","key":"a","value":"2","if_mod_rev":-1}]}`, 400, api.CodeBadRequest},
		{"bad key", `{"ops":[{"op":"put","key":"x","value":"1"},{"op":"put","key":"a//b","value":"2"}]}`, 400, api.CodeBadKey},
		{"invalid JSON value", `{"ops":[{"op":"put","key":"x","value":"1"},{"op":"put","key":"j","value":"{","content_type":"application/json"}]}`, 422, api.CodeInvalidValue},
		{"unknown content type", `{"ops":[{"op":"put","key":"x","value":"1","content_type":"image/png"}]}`, 415, api.CodeBadContentType},
		{"oversize value", `{"ops":[{"op":"put","key":"x","value":"` + strings.Repeat("v", testLimit+1) + `"}]}`, 413, api.CodeTooLarge},
		{"oversize body", `{"ops":[{"op":"put","key":"x","value":"` + strings.Repeat("v", 70<<10) + `"}]}`, 413, api.CodeTooLarge},
		{"conflict", string(configdtest.JSON(t, api.TxnRequest{Ops: []api.TxnOp{
			{Op: "put", Key: "x", Value: "1"},
			{Op: "put", Key: "a", Value: "2", IfModRev: &stale},
		}})), 409, api.CodeConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(http.MethodPost, "/v1/txn", []byte(tc.body), "Content-Type", "application/json")
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tc.status, r.body)
			}
			if b := r.errBody(t); b.Code != tc.code {
				t.Errorf("code %q, want %q (%s)", b.Code, tc.code, b.Message)
			}
		})
	}
	if got := e.snapshot(); got != before {
		t.Errorf("failed transactions changed the store:\n%s\nwant\n%s", got, before)
	}
}

func TestHistoryPagesNewestFirst(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 5; i++ {
		e.decode(http.StatusOK, nil, http.MethodPut, "/v1/kv/app/k", []byte{byte('a' + i)}, api.HeaderActor, "alice")
	}
	e.decode(http.StatusOK, nil, http.MethodPut, "/v1/kv/other", []byte("x"), api.HeaderActor, "bob")

	var revs []int64
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("history does not end")
		}
		var hr api.HistoryResponse
		path := "/v1/history?prefix=app&limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		e.decode(http.StatusOK, &hr, http.MethodGet, path, nil)
		for _, r := range hr.Revisions {
			revs = append(revs, r.Rev)
		}
		if hr.NextCursor == "" {
			break
		}
		cursor = hr.NextCursor
	}
	if got := fmtInts(revs); got != "5,4,3,2,1" {
		t.Errorf("revisions %s, want 5,4,3,2,1", got)
	}

	var hr api.HistoryResponse
	r := e.decode(http.StatusOK, &hr, http.MethodGet, "/v1/history?actor=bob", nil)
	if len(hr.Revisions) != 1 || hr.Revisions[0].Rev != 6 || r.rev() != "6" {
		t.Errorf("history of bob: %+v", hr)
	}
	e.decode(http.StatusOK, &hr, http.MethodGet, "/v1/history?key=other", nil)
	if len(hr.Revisions) != 1 || hr.Revisions[0].Changes[0].Key != "other" {
		t.Errorf("history of key other: %+v", hr)
	}

	for _, tc := range []struct{ path, code string }{
		{"/v1/history?key=a&prefix=b", api.CodeBadRequest},
		{"/v1/history?key=a//b", api.CodeBadKey},
		{"/v1/history?limit=0", api.CodeBadRequest},
		{"/v1/history?limit=1001", api.CodeBadRequest},
		{"/v1/history?cursor=x", api.CodeBadRequest},
		{"/v1/history?since=3", api.CodeBadRequest},
	} {
		r := e.do(http.MethodGet, tc.path, nil)
		if r.status != http.StatusBadRequest || r.errBody(t).Code != tc.code {
			t.Errorf("%s: %d %s, want 400 %s", tc.path, r.status, r.body, tc.code)
		}
	}
}

func fmtInts(xs []int64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, ",")
}

func TestRevisionRoute(t *testing.T) {
	e := newEnv(t)
	e.put("k", "v", "")
	var rev api.Revision
	r := e.decode(http.StatusOK, &rev, http.MethodGet, "/v1/revisions/1", nil)
	if rev.Rev != 1 || len(rev.Changes) != 1 || rev.Changes[0].Op != "put" || rev.Changes[0].New.Value != "v" ||
		rev.Changes[0].Old != nil || r.rev() != "1" || rev.Time.IsZero() {
		t.Errorf("revision 1: %+v", rev)
	}
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/v1/revisions/0", 404, api.CodeRevisionGone},
		{"/v1/revisions/-3", 404, api.CodeRevisionGone},
		{"/v1/revisions/2", 400, api.CodeBadRevision},
		{"/v1/revisions/abc", 400, api.CodeBadRequest},
	} {
		r := e.do(http.MethodGet, tc.path, nil)
		if r.status != tc.status || r.errBody(t).Code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.path, r.status, r.body, tc.status, tc.code)
		}
	}
}

func TestDiffBetweenRevisions(t *testing.T) {
	e := newEnv(t)
	e.put("app/a", "1", "")                                              // 1
	e.put("app/b", "1", "")                                              // 2
	e.put("app/a", "2", "")                                              // 3
	e.put("other", "x", "")                                              // 4
	e.decode(http.StatusOK, nil, http.MethodDelete, "/v1/kv/app/b", nil) // 5

	var dr api.DiffResponse
	r := e.decode(http.StatusOK, &dr, http.MethodGet, "/v1/diff?from=2&prefix=app", nil)
	if dr.From != 2 || dr.To != 5 || r.rev() != "5" {
		t.Errorf("diff from 2: from %d to %d header %q, want 2..5", dr.From, dr.To, r.rev())
	}
	if len(dr.Changes) != 2 || dr.Changes[0].Key != "app/a" || dr.Changes[0].Old.Value != "1" ||
		dr.Changes[0].New.Value != "2" || dr.Changes[1].Key != "app/b" || dr.Changes[1].Op != "delete" {
		t.Errorf("diff changes: %+v", dr.Changes)
	}
	// Fresh variables: json.Unmarshal reuses slice elements, which would
	// keep an Old from the answer above.
	var first api.DiffResponse
	e.decode(http.StatusOK, &first, http.MethodGet, "/v1/diff?from=0&to=1&key=app/a", nil)
	if len(first.Changes) != 1 || first.Changes[0].Old != nil || first.Changes[0].New.Value != "1" {
		t.Errorf("diff 0..1 of app/a: %+v", first.Changes)
	}
	var none api.DiffResponse
	e.decode(http.StatusOK, &none, http.MethodGet, "/v1/diff?from=4&to=4", nil)
	if none.Changes == nil || len(none.Changes) != 0 {
		t.Errorf("empty diff: %#v, want []", none.Changes)
	}

	for _, tc := range []struct{ path, code string }{
		{"/v1/diff?from=4&to=2", api.CodeBadRevision},
		{"/v1/diff?from=9", api.CodeBadRevision},
		{"/v1/diff?from=1&to=9", api.CodeBadRevision},
		{"/v1/diff", api.CodeBadRequest},
		{"/v1/diff?from=x", api.CodeBadRequest},
		{"/v1/diff?from=1&key=a&prefix=b", api.CodeBadRequest},
		{"/v1/diff?from=1&key=../a", api.CodeBadKey},
	} {
		r := e.do(http.MethodGet, tc.path, nil)
		if r.status != http.StatusBadRequest || r.errBody(t).Code != tc.code {
			t.Errorf("%s: %d %s, want 400 %s", tc.path, r.status, r.body, tc.code)
		}
	}
}

func TestRollbackRestoresOldState(t *testing.T) {
	e := newEnv(t)
	e.put("app/a", "1", "") // 1
	e.put("app/a", "2", "") // 2
	e.put("app/b", "1", "") // 3

	var dry api.RollbackResponse
	e.decode(http.StatusOK, &dry, http.MethodPost, "/v1/rollback",
		configdtest.JSON(t, api.RollbackRequest{Prefix: "app", To: 1, DryRun: true}))
	if !dry.DryRun || dry.Rev != 3 || !dry.Changed || len(dry.Changes) != 2 || e.st.Rev() != 3 {
		t.Fatalf("dry run: %+v (store rev %d)", dry, e.st.Rev())
	}

	var rr api.RollbackResponse
	r := e.decode(http.StatusOK, &rr, http.MethodPost, "/v1/rollback",
		configdtest.JSON(t, api.RollbackRequest{Prefix: "app", To: 1, Reason: "bad deploy", ExpectRev: dry.Rev}),
		api.HeaderActor, "carol")
	if rr.Rev != 4 || !rr.Changed || rr.DryRun || len(rr.Changes) != 2 || r.rev() != "4" {
		t.Fatalf("rollback: %+v", rr)
	}
	var lr api.ListResponse
	e.decode(http.StatusOK, &lr, http.MethodGet, "/v1/kv?prefix=app", nil)
	if len(lr.KVs) != 1 || lr.KVs[0].Key != "app/a" || lr.KVs[0].Value != "1" {
		t.Errorf("after rollback: %+v", lr.KVs)
	}
	var rev api.Revision
	e.decode(http.StatusOK, &rev, http.MethodGet, "/v1/revisions/4", nil)
	if rev.RollbackTo != 1 || rev.Actor != "carol" || !strings.Contains(rev.Reason, "bad deploy") {
		t.Errorf("rollback revision: %+v", rev)
	}
	// Again: nothing to do.
	e.decode(http.StatusOK, &rr, http.MethodPost, "/v1/rollback", configdtest.JSON(t, api.RollbackRequest{Key: "app/a", To: 1}))
	if rr.Changed || rr.Rev != 4 {
		t.Errorf("no-op rollback: %+v", rr)
	}
}

func TestFailedRollbacksChangeNothing(t *testing.T) {
	e := newEnv(t)
	e.put("a", "1", "")
	e.put("a", "2", "")
	before := e.snapshot()
	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"future revision", `{"all":true,"to":9}`, 400, api.CodeBadRevision},
		{"revision 0", `{"all":true,"to":0}`, 404, api.CodeRevisionGone},
		{"negative revision", `{"key":"a","to":-1}`, 404, api.CodeRevisionGone},
		{"stale expect_rev", `{"key":"a","to":1,"expect_rev":1}`, 409, api.CodeConflict},
		{"no scope", `{"to":1}`, 400, api.CodeBadRequest},
		{"two scopes", `{"key":"a","prefix":"b","to":1}`, 400, api.CodeBadRequest},
		{"key and all", `{"key":"a","all":true,"to":1}`, 400, api.CodeBadRequest},
		{"prefix / is everything", `{"prefix":"/","to":1}`, 400, api.CodeBadRequest},
		{"bad key", `{"key":"a/","to":1}`, 400, api.CodeBadKey},
		{"unknown field", `{"key":"a","to":1,"force":true}`, 400, api.CodeBadRequest},
		{"malformed", `{"key":`, 400, api.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(http.MethodPost, "/v1/rollback", []byte(tc.body))
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tc.status, r.body)
			}
			b := r.errBody(t)
			if b.Code != tc.code {
				t.Errorf("code %q, want %q (%s)", b.Code, tc.code, b.Message)
			}
			if tc.code == api.CodeConflict && b.Rev != 2 {
				t.Errorf("conflict rev %d, want the current 2", b.Rev)
			}
		})
	}
	if got := e.snapshot(); got != before {
		t.Errorf("failed rollbacks changed the store:\n%s\nwant\n%s", got, before)
	}
}

package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/keyspace"
)

// reqCall is one call to the change requests' routes and its answer.
type reqCall struct {
	status int
	body   []byte
}

// call sends method path with body, as token (auth on) and, when as is
// not "", with X-Configd-Actor as.
func call(t *testing.T, e *configdtest.Env, method, path, body, token, as string) reqCall {
	t.Helper()
	var h []string
	if as != "" {
		h = []string{api.HeaderActor, as}
	}
	status, b := e.Do(method, path, body, token, h...)
	return reqCall{status, b}
}

func (c reqCall) request(t *testing.T) api.ChangeRequest {
	t.Helper()
	if c.status != http.StatusOK {
		t.Fatalf("status %d: %s", c.status, c.body)
	}
	var rq api.ChangeRequest
	if err := json.Unmarshal(c.body, &rq); err != nil {
		t.Fatalf("%v: %s", err, c.body)
	}
	return rq
}

func (c reqCall) ok(t *testing.T) {
	t.Helper()
	if c.status != http.StatusOK {
		t.Fatalf("status %d: %s", c.status, c.body)
	}
}

// refused checks that the call was refused with status and code, its
// message containing want.
func (c reqCall) refused(t *testing.T, status int, code, want string) {
	t.Helper()
	var er api.ErrorResponse
	if err := json.Unmarshal(c.body, &er); err != nil || c.status != status || er.Error.Code != code || !strings.Contains(er.Error.Message, want) {
		t.Fatalf("got %d %s, want %d %s saying %q", c.status, c.body, status, code, want)
	}
}

const proposal = `{"scope":"app/","reason":"raise limits","ops":[
	{"op":"put","key":"app/limits","value":"{\"rps\":100}","content_type":"application/json"},
	{"op":"put","key":"app/new","value":"1"},
	{"op":"delete","key":"app/old"}]}`

func value(t *testing.T, e *configdtest.Env, key string) string {
	t.Helper()
	kv, err := e.Store.Get(t.Context(), key)
	if err != nil {
		return "(none)"
	}
	return string(kv.Value)
}

func TestChangeRequestIsReviewedApprovedAndPublishedAsOneRevision(t *testing.T) {
	e := configdtest.NewEnv(t, configdtest.WithSeed(
		audit.Put("app/limits", []byte(`{"rps":10}`), "application/json"), audit.Put("app/old", []byte("x"), "")))
	rq := call(t, e, "POST", "/v1/requests", proposal, "", "alice").request(t)
	if rq.ID != 1 || rq.Author != "alice" || rq.State != api.RequestOpen || rq.Keys != 3 || rq.Base != e.Store.Rev()-1 {
		t.Fatalf("proposed: %+v", rq)
	}
	shown := call(t, e, "GET", "/v1/requests/1", "", "", "").request(t)
	got := map[string]string{}
	for _, c := range shown.Diff {
		old, nw := "(none)", "(none)"
		if c.Old != nil {
			old = c.Old.Value
		}
		if c.New != nil {
			nw = c.New.Value
		}
		got[c.Key] = old + " → " + nw
	}
	want := map[string]string{"app/limits": `{"rps":10} → {"rps":100}`, "app/new": "(none) → 1", "app/old": "x → (none)"}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("diff of %s: %q, want %q (all: %v)", k, got[k], w, got)
		}
	}
	call(t, e, "POST", "/v1/requests/1/comment", `{"text":"looks fine"}`, "", "bob").request(t)
	call(t, e, "PUT", "/v1/policies", `{"prefix":"app/","approvals":1}`, "", "root").ok(t)

	before := e.Store.Rev()
	call(t, e, "POST", "/v1/requests/1/publish", "", "", "alice").refused(t, http.StatusConflict, api.CodeNotApproved, "0 of the 1 approval")
	call(t, e, "POST", "/v1/requests/1/approve", "", "", "alice").refused(t, http.StatusForbidden, api.CodeSelfApproval, "another person must approve")
	if e.Store.Rev() != before || value(t, e, "app/limits") != `{"rps":10}` {
		t.Fatalf("a refused publish or approval wrote: rev %d → %d, app/limits %s", before, e.Store.Rev(), value(t, e, "app/limits"))
	}
	if rq := call(t, e, "POST", "/v1/requests/1/approve", "", "", "bob").request(t); rq.State != api.RequestApproved || len(rq.Approvals) != 1 {
		t.Fatalf("approved: %+v", rq)
	}
	rq = call(t, e, "POST", "/v1/requests/1/publish", "", "", "alice").request(t)
	if rq.State != api.RequestPublished || rq.PublishedRev == 0 || rq.PublishedBy != "alice" {
		t.Fatalf("published: %+v", rq)
	}
	rev, err := e.Store.Revision(t.Context(), rq.PublishedRev)
	if err != nil {
		t.Fatal(err)
	}
	if rev.Reason != "request 1: raise limits" || rev.Actor != "alice" || len(rev.Changes) != 3 {
		t.Errorf("the published revision: %+v", rev)
	}
	if value(t, e, "app/limits") != `{"rps":100}` || value(t, e, "app/new") != "1" || value(t, e, "app/old") != "(none)" {
		t.Errorf("after publishing: %s %s %s", value(t, e, "app/limits"), value(t, e, "app/new"), value(t, e, "app/old"))
	}
	call(t, e, "POST", "/v1/requests/1/publish", "", "", "alice").refused(t, http.StatusConflict, api.CodeConflict, "request 1 is published")

	// Every action is a revision of the request's record, with its actor.
	page, err := e.Store.History(t.Context(), audit.HistoryQuery{Scope: audit.Scope{Key: keyspace.RequestKey(1)}})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range page.Revisions {
		actions = append([]string{r.Actor + " " + strings.TrimPrefix(r.Reason, "request 1: ")}, actions...)
	}
	if got, want := strings.Join(actions, ", "), "alice propose, bob comment, bob approve, alice publish"; got != want {
		t.Errorf("the request's history: %s, want %s", got, want)
	}
}

func TestStaleRequestIsShownWithTheNewDiffAndRefusedUntilRebased(t *testing.T) {
	e := configdtest.NewEnv(t, configdtest.WithSeed(
		audit.Put("app/limits", []byte(`{"rps":10}`), "application/json"), audit.Put("app/old", []byte("x"), "")))
	call(t, e, "POST", "/v1/requests", proposal, "", "alice").request(t)
	e.Put("app/other", "unrelated")
	if rq := call(t, e, "GET", "/v1/requests/1", "", "", "").request(t); rq.Stale {
		t.Fatalf("a write to a key the request does not change made it stale: %+v", rq)
	}
	e.Commit(audit.Put("app/limits", []byte(`{"rps":20}`), "application/json"))
	rq := call(t, e, "GET", "/v1/requests/1", "", "", "").request(t)
	if !rq.Stale || strings.Join(rq.StaleKeys, ",") != "app/limits" {
		t.Fatalf("not stale after app/limits was written: %+v", rq)
	}
	for _, c := range rq.Diff {
		if c.Key == "app/limits" && (c.Old == nil || c.Old.Value != `{"rps":20}`) {
			t.Errorf("the diff is not against now: %+v", c.Old)
		}
	}
	before := e.Store.Rev()
	call(t, e, "POST", "/v1/requests/1/publish", "", "", "alice").refused(t, http.StatusConflict, api.CodeStale, "app/limits changed after its base")
	if e.Store.Rev() != before {
		t.Fatalf("a stale publish wrote revision %d", e.Store.Rev())
	}
	rq = call(t, e, "POST", "/v1/requests/1/rebase", "", "", "alice").request(t)
	if rq.Stale || rq.Base != before {
		t.Fatalf("rebased: %+v", rq)
	}
	call(t, e, "POST", "/v1/requests/1/publish", "", "", "alice").request(t)
	if value(t, e, "app/limits") != `{"rps":100}` {
		t.Errorf("app/limits after publishing: %s", value(t, e, "app/limits"))
	}
}

func TestChangeRequestBadInput(t *testing.T) {
	e := configdtest.NewEnv(t, configdtest.WithSeed(audit.Put("app/x", []byte("1"), "")))
	before := e.Store.Rev()
	call(t, e, "POST", "/v1/requests", `{"scope":"app/","ops":[{"op":"put","key":"db/x","value":"1"}]}`, "", "alice").
		refused(t, http.StatusBadRequest, api.CodeBadRequest, `key "db/x" is outside the request's scope app/`)
	call(t, e, "POST", "/v1/requests", `{"scope":"app/","ops":[]}`, "", "alice").
		refused(t, http.StatusBadRequest, api.CodeBadRequest, "")
	call(t, e, "POST", "/v1/requests", `{"scope":"","ops":[{"op":"put","key":".configd/policies","value":"{}"}]}`, "", "alice").
		refused(t, http.StatusBadRequest, api.CodeBadRequest, "configd's own keys")
	if e.Store.Rev() != before {
		t.Fatalf("a refused proposal wrote revision %d", e.Store.Rev())
	}
	call(t, e, "GET", "/v1/requests/7", "", "", "").refused(t, http.StatusNotFound, api.CodeNotFound, "request 7 does not exist")
	call(t, e, "POST", "/v1/requests/7/approve", "", "", "bob").refused(t, http.StatusNotFound, api.CodeNotFound, "request 7 does not exist")
	call(t, e, "GET", "/v1/requests/x", "", "", "").refused(t, http.StatusBadRequest, api.CodeBadRequest, "not a number")
	call(t, e, "POST", "/v1/requests", `{"scope":"app/","ops":[{"op":"put","key":"app/x","value":"2"}]}`, "", "alice").request(t)
	call(t, e, "POST", "/v1/requests/1/merge", "", "", "bob").refused(t, http.StatusNotFound, api.CodeNotFound, "no such action")
	call(t, e, "POST", "/v1/requests/1/comment", `{"text":" "}`, "", "bob").refused(t, http.StatusBadRequest, api.CodeBadRequest, "needs some text")
	call(t, e, "PUT", "/v1/policies", `{"prefix":"app/","approvals":11}`, "", "root").refused(t, http.StatusBadRequest, api.CodeBadRequest, "want 0 to 10")
	call(t, e, "POST", "/v1/requests/1/close", `{"text":"not now"}`, "", "bob").request(t)
	call(t, e, "POST", "/v1/requests/1/approve", "", "", "bob").refused(t, http.StatusConflict, api.CodeConflict, "request 1 is closed")
	call(t, e, "GET", "/v1/requests?state=done", "", "", "").refused(t, http.StatusBadRequest, api.CodeBadRequest, "want open")
	if value(t, e, "app/x") != "1" {
		t.Errorf("app/x: %s", value(t, e, "app/x"))
	}
}

func TestChangeRequestsWithAuthentication(t *testing.T) {
	e := configdtest.AuthEnv(t)
	body := `{"scope":"app/","ops":[{"op":"put","key":"app/x","value":"2"}]}`
	call(t, e, "POST", "/v1/requests", body, "reader-db", "").refused(t, http.StatusForbidden, api.CodeForbidden, "reader-db")
	// A reader proposes; the author is the token.
	if rq := call(t, e, "POST", "/v1/requests", body, "reader-app", "").request(t); rq.Author != "reader-app" {
		t.Fatalf("author %q", rq.Author)
	}
	call(t, e, "PUT", "/v1/policies", `{"prefix":"app/","approvals":1}`, "writer-all", "").refused(t, http.StatusForbidden, api.CodeForbidden, "writer-all")
	call(t, e, "PUT", "/v1/policies", `{"prefix":"app/","approvals":1}`, "admin", "").ok(t)

	call(t, e, "GET", "/v1/requests/1", "", "reader-db", "").refused(t, http.StatusForbidden, api.CodeForbidden, "reader-db")
	var list api.RequestsResponse
	if c := call(t, e, "GET", "/v1/requests", "", "reader-db", ""); c.status != http.StatusOK || json.Unmarshal(c.body, &list) != nil || len(list.Requests) != 0 {
		t.Fatalf("reader-db lists %d %s", c.status, c.body)
	}
	// Approving needs write on the request's keys, and is the token's own.
	call(t, e, "POST", "/v1/requests/1/approve", "", "reader-all", "").refused(t, http.StatusForbidden, api.CodeForbidden, "reader-all")
	call(t, e, "POST", "/v1/requests/1/approve", "", "writer-all", "writer-app").refused(t, http.StatusForbidden, api.CodeForbidden, `--as "writer-app"`)
	call(t, e, "POST", "/v1/requests/1/publish", "", "reader-app", "").refused(t, http.StatusForbidden, api.CodeForbidden, "reader-app")
	call(t, e, "POST", "/v1/requests/1/publish", "", "writer-app", "").refused(t, http.StatusConflict, api.CodeNotApproved, "0 of the 1")
	if rq := call(t, e, "POST", "/v1/requests/1/approve", "", "writer-app", "").request(t); rq.State != api.RequestApproved || rq.Approvals[0].Actor != "writer-app" {
		t.Fatalf("approved: %+v", rq)
	}
	rq := call(t, e, "POST", "/v1/requests/1/publish", "", "writer-all", "").request(t)
	if rev, err := e.Store.Revision(t.Context(), rq.PublishedRev); err != nil || rev.Actor != "writer-all" || value(t, e, "app/x") != "2" {
		t.Fatalf("published rev %d: %+v %v, app/x %s", rq.PublishedRev, rev, err, value(t, e, "app/x"))
	}

	// The author may not approve their own request, whatever their rights.
	call(t, e, "POST", "/v1/requests", body, "writer-app", "").request(t)
	call(t, e, "POST", "/v1/requests/2/approve", "", "writer-app", "").refused(t, http.StatusForbidden, api.CodeSelfApproval, "writer-app wrote request 2")
}

func TestPolicyThatRequiresRequestsRefusesDirectWritesAndRollbacks(t *testing.T) {
	e := configdtest.NewEnv(t, configdtest.WithSeed(audit.Put("app/x", []byte("1"), ""), audit.Put("db/x", []byte("1"), "")))
	first := e.Store.Rev()
	call(t, e, "PUT", "/v1/policies", `{"prefix":"app/","approvals":0,"require":true}`, "", "root").ok(t)
	before := e.Store.Rev()
	const want = "the policy of app/ takes changes only through change requests: propose it (configctl propose app/ -f change.yaml)"
	call(t, e, "PUT", "/v1/kv/app/x", "2", "", "alice").refused(t, http.StatusForbidden, api.CodeRequestRequired, "app/x: "+want)
	call(t, e, "DELETE", "/v1/kv/app/x", "", "", "alice").refused(t, http.StatusForbidden, api.CodeRequestRequired, want)
	call(t, e, "POST", "/v1/txn", `{"ops":[{"op":"put","key":"db/x","value":"2"},{"op":"put","key":"app/y","value":"2"}]}`, "", "alice").
		refused(t, http.StatusForbidden, api.CodeRequestRequired, "app/y: "+want)
	call(t, e, "POST", "/v1/rollback", `{"prefix":"app/","to":1}`, "", "alice").refused(t, http.StatusForbidden, api.CodeRequestRequired, want)
	call(t, e, "POST", "/v1/rollback", `{"all":true,"to":1}`, "", "alice").refused(t, http.StatusForbidden, api.CodeRequestRequired, want)
	call(t, e, "PUT", "/v1/kv/.configd/policies", "{}", "", "alice").refused(t, http.StatusForbidden, api.CodeRequestRequired, "configd's own keys")
	if e.Store.Rev() != before {
		t.Fatalf("a refused direct write wrote revision %d", e.Store.Rev())
	}
	// A write that changes nothing is no change: configctl apply of a
	// whole keyspace exported as it is still works.
	pols, err := e.Store.Get(t.Context(), keyspace.PoliciesKey)
	if err != nil {
		t.Fatal(err)
	}
	same := fmt.Sprintf(`{"ops":[{"op":"put","key":"app/x","value":"1"},{"op":"put","key":%q,"value":%q,"content_type":"application/json"},{"op":"delete","key":"app/none"}]}`,
		keyspace.PoliciesKey, pols.Value)
	if c := call(t, e, "POST", "/v1/txn", same, "", "alice"); c.status != http.StatusOK || !strings.Contains(string(c.body), `"changed":false`) {
		t.Errorf("a transaction that changes nothing: %d %s", c.status, c.body)
	}
	if c := call(t, e, "POST", "/v1/rollback", `{"prefix":"app/","to":1,"dry_run":true}`, "", "alice"); c.status != http.StatusOK {
		t.Errorf("a dry run: %d %s", c.status, c.body)
	}
	if c := call(t, e, "PUT", "/v1/kv/db/x", "2", "", "alice"); c.status != http.StatusOK {
		t.Errorf("a write outside the policy's prefix: %d %s", c.status, c.body)
	}
	// gRPC writes are refused alike.
	_, err = configdpb.NewConfigClient(e.GRPCConn("")).Put(t.Context(), &configdpb.PutRequest{Key: "app/x", Value: []byte("2")})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), want) {
		t.Errorf("gRPC Put: %v", err)
	}
	// A request goes through; so do writes again once the policy is gone.
	call(t, e, "POST", "/v1/requests", `{"scope":"app/","ops":[{"op":"put","key":"app/x","value":"2"}]}`, "", "alice").request(t)
	call(t, e, "POST", "/v1/requests/1/publish", "", "", "alice").request(t)
	if value(t, e, "app/x") != "2" {
		t.Fatalf("app/x after publishing: %s", value(t, e, "app/x"))
	}
	call(t, e, "PUT", "/v1/policies", `{"prefix":"app/","approvals":0}`, "", "root").ok(t)
	call(t, e, "POST", "/v1/rollback", fmt.Sprintf(`{"prefix":"app/","to":%d}`, first), "", "alice").ok(t)
	if value(t, e, "app/x") != "1" {
		t.Fatalf("app/x after the rollback: %s", value(t, e, "app/x"))
	}
}

func TestChangeRequestKeepsASecretsDraftSecret(t *testing.T) {
	pw := audit.Put("app/pw", []byte("hunter2"), "")
	pw.Secret = true
	e := secretEnv(t, nil, pw)
	call(t, e, "POST", "/v1/requests", `{"scope":"app/","ops":[{"op":"put","key":"app/pw","value":"hunter3"}]}`, "", "alice").request(t)
	c := call(t, e, "GET", "/v1/requests/1", "", "", "")
	rq := c.request(t)
	if strings.Contains(string(c.body), "hunter") || len(rq.Diff) != 1 {
		t.Fatalf("the request shows a secret's value: %s", c.body)
	}
	if d := rq.Diff[0]; d.Old == nil || d.New == nil || d.Old.Hash == "" || d.New.Hash == "" || d.Old.Hash == d.New.Hash || !d.New.Secret {
		t.Errorf("the diff of a secret: %+v → %+v, want digests that differ", d.Old, d.New)
	}
	if kv, err := e.Store.Get(t.Context(), keyspace.RequestKey(1)); err != nil || !kv.Secret {
		t.Errorf("the request's record holds a secret's draft and is not secret: %+v %v", kv, err)
	}
	call(t, e, "POST", "/v1/requests/1/publish", "", "", "alice").request(t)
	if kv, err := e.Store.Get(t.Context(), "app/pw"); err != nil || string(kv.Value) != "hunter3" || !kv.Secret {
		t.Errorf("app/pw after publishing: %+v %v", kv, err)
	}
}

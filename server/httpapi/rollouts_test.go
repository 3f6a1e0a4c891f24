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
)

func (c reqCall) rollout(t *testing.T) api.Rollout {
	t.Helper()
	if c.status != http.StatusOK {
		t.Fatalf("status %d: %s", c.status, c.body)
	}
	var r api.Rollout
	if err := json.Unmarshal(c.body, &r); err != nil {
		t.Fatalf("%v: %s", err, c.body)
	}
	return r
}

// reportZone makes n clients of zone that watch app/ report at rev to e.
func reportZone(e *configdtest.Env, zone string, n int, rev int64) {
	for i := range n {
		e.Clients.Report("", api.ClientReport{Instance: fmt.Sprintf("%s-pod-%d", zone, i), Labels: map[string]string{"zone": zone},
			Prefixes: []string{"app/"}, Rev: rev})
	}
}

// TestRolloutIsStartedPromotedAndCompletedOverHTTP: a request rolled out
// to a step shows its step's clients; the store keeps the old value until
// the rollout completes; the request says which rollout published it.
func TestRolloutIsStartedPromotedAndCompletedOverHTTP(t *testing.T) {
	e := configdtest.NewEnv(t, configdtest.WithSeed(audit.Put("app/limits", []byte(`{"rps":10}`), "application/json")))
	call(t, e, "POST", "/v1/requests", `{"scope":"app/","ops":[{"op":"put","key":"app/limits","value":"{\"rps\":100}","content_type":"application/json"}]}`, "", "alice").request(t)
	reportZone(e, "eu-1", 3, 0)
	reportZone(e, "us-1", 2, 0)
	ro := call(t, e, "POST", "/v1/rollouts", `{"request":1,"steps":["zone=eu-1","50%","100%"],"bake":"10m","abort_on_errors":1,"reason":"canary"}`, "", "alice").rollout(t)
	if ro.ID != 1 || ro.State != api.RolloutActive || ro.Step != 0 || ro.Bake != "10m0s" || ro.Author != "alice" || len(ro.Steps) != 3 || ro.Steps[0] != "zone=eu-1" {
		t.Fatalf("started: %+v", ro)
	}
	if ro.Status == nil || ro.Status.Clients != 5 || ro.Status.InStep != 3 || ro.Status.Applied != 0 || len(ro.Status.Behind) != 3 {
		t.Fatalf("status at the start: %+v", ro.Status)
	}
	if len(ro.Changes) != 1 || ro.Changes[0].Old.Value != `{"rps":10}` || ro.Changes[0].New.Value != `{"rps":100}` {
		t.Fatalf("changes: %+v", ro.Changes)
	}
	if value(t, e, "app/limits") != `{"rps":10}` {
		t.Fatalf("the store moved at the start: %s", value(t, e, "app/limits"))
	}
	if rq := call(t, e, "GET", "/v1/requests/1", "", "", "").request(t); rq.State != api.RequestPublished || rq.Rollout != 1 || rq.PublishedRev != ro.Rev {
		t.Fatalf("the request: %+v", rq)
	}
	reportZone(e, "eu-1", 3, ro.Rev)
	if got := call(t, e, "GET", "/v1/rollouts/1", "", "", "").rollout(t); got.Status.Applied != 3 || got.Status.Steps[0].Applied != 3 {
		t.Fatalf("status once eu-1 applied: %+v", got.Status)
	}
	var list api.RolloutsResponse
	if c := call(t, e, "GET", "/v1/rollouts", "", "", ""); c.status != http.StatusOK || json.Unmarshal(c.body, &list) != nil || len(list.Rollouts) != 1 {
		t.Fatalf("list: %d %s", c.status, c.body)
	}
	p := call(t, e, "POST", "/v1/rollouts/1/promote", `{"text":"eu-1 is fine"}`, "", "bob").rollout(t)
	if p.Step != 1 || p.Log[len(p.Log)-1].Text != "eu-1 is fine" || p.Log[len(p.Log)-1].Actor != "bob" {
		t.Fatalf("promoted: %+v", p)
	}
	call(t, e, "POST", "/v1/rollouts/1/pause", "", "", "bob").rollout(t)
	call(t, e, "POST", "/v1/rollouts/1/resume", "", "", "bob").rollout(t)
	c := call(t, e, "POST", "/v1/rollouts/1/complete", "", "", "bob").rollout(t)
	if c.State != api.RolloutComplete || c.Status != nil || value(t, e, "app/limits") != `{"rps":100}` {
		t.Fatalf("completed: %+v, app/limits %s", c, value(t, e, "app/limits"))
	}
	call(t, e, "POST", "/v1/rollouts/1/abort", "", "", "bob").refused(t, http.StatusConflict, api.CodeConflict, "rollout 1 is complete: it cannot be aborted")
	call(t, e, "POST", "/v1/rollouts/1/rewind", "", "", "bob").refused(t, http.StatusNotFound, api.CodeNotFound, "no such action on a rollout")
	call(t, e, "GET", "/v1/rollouts/7", "", "", "").refused(t, http.StatusNotFound, api.CodeNotFound, "rollout 7 does not exist")
}

// TestRolloutRefusalsOverHTTP: each refusal of a start has its code, and
// a running rollout's keys refuse direct writes through every door.
func TestRolloutRefusalsOverHTTP(t *testing.T) {
	e := configdtest.NewEnv(t, configdtest.WithSeed(audit.Put("app/a", []byte("1"), ""), audit.Put("app/b", []byte("1"), "")))
	propose := func(key, v string) {
		call(t, e, "POST", "/v1/requests", fmt.Sprintf(`{"scope":"app/","ops":[{"op":"put","key":%q,"value":%q}]}`, key, v), "", "alice").request(t)
	}
	propose("app/a", "2") // 1
	reportZone(e, "us-1", 4, 0)
	before := e.Store.Rev()
	call(t, e, "POST", "/v1/rollouts", `{"request":1,"steps":["150%"]}`, "", "alice").refused(t, http.StatusBadRequest, api.CodeBadRequest, "a percentage must be above 0 and at most 100")
	call(t, e, "POST", "/v1/rollouts", `{"request":1,"steps":["10%"],"bake":"soon"}`, "", "alice").refused(t, http.StatusBadRequest, api.CodeBadRequest, "bake")
	call(t, e, "POST", "/v1/rollouts", `{"request":1,"steps":["zone=eu-1"]}`, "", "alice").
		refused(t, http.StatusConflict, api.CodeEmptySelection, "selects none of the 4 connected client(s)")
	if e.Store.Rev() != before {
		t.Fatalf("refused starts wrote revision %d", e.Store.Rev())
	}
	call(t, e, "POST", "/v1/rollouts", `{"request":1,"steps":["zone=eu-1"],"allow_empty":true}`, "", "alice").rollout(t)
	propose("app/a", "3") // 2
	call(t, e, "POST", "/v1/rollouts", `{"request":2,"steps":["100%"]}`, "", "alice").refused(t, http.StatusConflict, api.CodeRolloutConflict, "key app/a is in running rollout 1")
	propose("app/b", "2") // 3
	e.Put("app/b", "5")
	call(t, e, "POST", "/v1/rollouts", `{"request":3,"steps":["100%"]}`, "", "alice").refused(t, http.StatusConflict, api.CodeStale, "request 3 is stale")

	const want = "app/a is in rollout 1: configctl rollout abort 1 or complete it first"
	before = e.Store.Rev()
	call(t, e, "PUT", "/v1/kv/app/a", "9", "", "").refused(t, http.StatusConflict, api.CodeRolloutActive, want)
	call(t, e, "POST", "/v1/txn", `{"ops":[{"op":"put","key":"app/b","value":"9"},{"op":"delete","key":"app/a"}]}`, "", "").refused(t, http.StatusConflict, api.CodeRolloutActive, want)
	call(t, e, "POST", "/v1/rollback", `{"prefix":"app/","to":1}`, "", "").refused(t, http.StatusConflict, api.CodeRolloutActive, want)
	_, err := configdpb.NewConfigClient(e.GRPCConn("")).Put(t.Context(), &configdpb.PutRequest{Key: "app/a", Value: []byte("9")})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), want) {
		t.Errorf("gRPC Put: %v", err)
	}
	if e.Store.Rev() != before {
		t.Fatalf("a refused direct write wrote revision %d", e.Store.Rev())
	}
	propose("app/a", "4")
	before = e.Store.Rev() // 4
	call(t, e, "POST", "/v1/requests/4/publish", "", "", "alice").refused(t, http.StatusConflict, api.CodeRolloutActive, want)
	if e.Store.Rev() != before {
		t.Fatalf("a refused publish wrote revision %d", e.Store.Rev())
	}
	call(t, e, "POST", "/v1/rollouts/1/abort", "", "", "bob").rollout(t)
	call(t, e, "PUT", "/v1/kv/app/a", "9", "", "").ok(t)
}

// TestRolloutsWithAuthentication: starting needs what publishing the
// request needs, an action write on the rollout's scope, a read read on
// it; each action is the token's own.
func TestRolloutsWithAuthentication(t *testing.T) {
	e := configdtest.AuthEnv(t)
	call(t, e, "POST", "/v1/requests", `{"scope":"app/","ops":[{"op":"put","key":"app/x","value":"2"}]}`, "reader-app", "").request(t)
	start := `{"request":1,"steps":["10%"],"allow_empty":true}`
	call(t, e, "POST", "/v1/rollouts", start, "reader-app", "").refused(t, http.StatusForbidden, api.CodeForbidden, "reader-app")
	call(t, e, "POST", "/v1/rollouts", start, "writer-all", "writer-app").refused(t, http.StatusForbidden, api.CodeForbidden, `--as "writer-app"`)
	if ro := call(t, e, "POST", "/v1/rollouts", start, "writer-app", "").rollout(t); ro.Author != "writer-app" {
		t.Fatalf("author %q", ro.Author)
	}
	call(t, e, "GET", "/v1/rollouts/1", "", "reader-db", "").refused(t, http.StatusForbidden, api.CodeForbidden, "reader-db")
	call(t, e, "GET", "/v1/rollouts/1", "", "reader-app", "").rollout(t)
	var list api.RolloutsResponse
	if c := call(t, e, "GET", "/v1/rollouts", "", "reader-db", ""); c.status != http.StatusOK || json.Unmarshal(c.body, &list) != nil || len(list.Rollouts) != 0 {
		t.Fatalf("reader-db lists %d %s", c.status, c.body)
	}
	call(t, e, "POST", "/v1/rollouts/1/abort", "", "reader-app", "").refused(t, http.StatusForbidden, api.CodeForbidden, "reader-app")
	if ro := call(t, e, "POST", "/v1/rollouts/1/abort", "", "writer-all", "").rollout(t); ro.Log[len(ro.Log)-1].Actor != "writer-all" {
		t.Fatalf("abort: %+v", ro.Log)
	}
}

// TestRolloutActionOnAVersionIsTakenOnce: two people who press promote on
// the same version of a rollout (its rev) promote once; the second is
// refused with a conflict and writes nothing. Without a rev an action
// takes the newest version, as before.
func TestRolloutActionOnAVersionIsTakenOnce(t *testing.T) {
	e := configdtest.NewEnv(t, configdtest.WithSeed(audit.Put("app/limits", []byte("1"), "")))
	call(t, e, "POST", "/v1/requests", `{"scope":"app/","ops":[{"op":"put","key":"app/limits","value":"2"}]}`, "", "alice").request(t)
	reportZone(e, "eu-1", 2, 0)
	ro := call(t, e, "POST", "/v1/rollouts", `{"request":1,"steps":["zone=eu-1","50%","100%"]}`, "", "alice").rollout(t)
	seen := fmt.Sprintf(`{"rev":%d}`, ro.Rev)
	p := call(t, e, "POST", "/v1/rollouts/1/promote", seen, "", "bob").rollout(t)
	if p.Step != 1 || p.Rev <= ro.Rev {
		t.Fatalf("promoted on rev %d: %+v", ro.Rev, p)
	}
	before := e.Store.Rev()
	call(t, e, "POST", "/v1/rollouts/1/promote", seen, "", "carol").
		refused(t, http.StatusConflict, api.CodeConflict, fmt.Sprintf("rollout 1 moved on (revision %d) since revision %d: it was not promoted", p.Rev, ro.Rev))
	call(t, e, "POST", "/v1/rollouts/1/promote", `{"rev":-3}`, "", "carol").refused(t, http.StatusBadRequest, api.CodeBadRequest, "rev -3 is not a revision")
	if e.Store.Rev() != before {
		t.Fatalf("refused actions wrote revision %d", e.Store.Rev())
	}
	if got := call(t, e, "GET", "/v1/rollouts/1", "", "", "").rollout(t); got.Step != 1 {
		t.Fatalf("promoted twice: step %d", got.Step)
	}
	if a := call(t, e, "POST", "/v1/rollouts/1/pause", fmt.Sprintf(`{"rev":%d,"text":"wait"}`, p.Rev), "", "carol").rollout(t); a.State != api.RolloutPaused {
		t.Fatalf("pause on the newest rev: %+v", a)
	}
}

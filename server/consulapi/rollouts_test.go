package consulapi_test

import (
	"strings"
	"testing"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/rollout"
	"github.com/configd/configd/server/requests"
	"github.com/configd/configd/server/rollouts"
)

// TestAWriteOfARunningRolloutsKeyIsRefused: the Consul door is a door
// like the others: while a rollout runs, a PUT, DELETE or txn that
// changes one of its keys is refused naming the rollout, and writes
// nothing.
func TestAWriteOfARunningRolloutsKeyIsRefused(t *testing.T) {
	d := newDoor(t)
	d.put(t, "app/limits", "1")
	reqs := requests.New(d.c.Store)
	rq, err := reqs.Propose(t.Context(), requests.Draft{Scope: "app/", Author: "alice", Ops: []audit.Op{audit.Put("app/limits", []byte("2"), "")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rollouts.New(d.c.Store, reqs).Start(t.Context(), rollouts.Plan{Request: rq.ID, Steps: []rollout.Step{{Percent: 10}}, Actor: "alice", AllowEmpty: true}); err != nil {
		t.Fatal(err)
	}
	before := d.c.Store.Rev()
	const want = "app/limits is in rollout 1: configctl rollout abort 1 or complete it first"
	for _, w := range []struct{ method, path, body string }{
		{"PUT", "/v1/kv/app/limits", "9"},
		{"DELETE", "/v1/kv/app/limits", ""},
		{"DELETE", "/v1/kv/app/?recurse", ""},
		{"PUT", "/v1/txn", `[{"KV":{"Verb":"set","Key":"app/limits","Value":"OQ=="}}]`},
	} {
		if status, body := d.do(t, w.method, w.path, w.body); status != 409 || !strings.Contains(body, want) {
			t.Errorf("%s %s: %d %s, want 409 saying %q", w.method, w.path, status, body, want)
		}
	}
	if d.c.Store.Rev() != before {
		t.Fatal("a refused write made a revision")
	}
}

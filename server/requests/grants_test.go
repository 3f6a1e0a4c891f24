package requests_test

import (
	"slices"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/server/requests"
)

// TestNeeds: the grants each action on a request asks of a token, the
// same for every door.
func TestNeeds(t *testing.T) {
	r := requests.Request{Scope: "app/", Author: "alice", Ops: []requests.Op{{Key: "app/a"}, {Key: "app/b", Delete: true}}}
	keys := []string{"app/a", "app/b"}
	for _, tc := range []struct {
		actor, action string
		want          requests.Need
	}{
		{"bob", "comment", requests.Need{Perm: api.PermissionRead, Targets: []string{"app/"}}},
		{"bob", "approve", requests.Need{Perm: api.PermissionWrite, Targets: keys}},
		{"alice", "approve", requests.Need{Perm: api.PermissionWrite, Targets: keys}}, // the book refuses it
		{"bob", "publish", requests.Need{Perm: api.PermissionWrite, Targets: keys}},
		{"alice", "publish", requests.Need{Perm: api.PermissionWrite, Targets: keys}},
		{"bob", "rebase", requests.Need{Perm: api.PermissionWrite, Targets: keys}},
		{"bob", "close", requests.Need{Perm: api.PermissionWrite, Targets: keys}},
		{"alice", "rebase", requests.Need{}},
		{"alice", "close", requests.Need{}},
		{"bob", "merge", requests.Need{}},
	} {
		got := requests.Needs(r, tc.actor, tc.action)
		if got.Perm != tc.want.Perm || !slices.Equal(got.Targets, tc.want.Targets) {
			t.Errorf("Needs(%s, %s) = %+v, want %+v", tc.actor, tc.action, got, tc.want)
		}
	}
}

package record

import (
	"errors"
	"testing"

	"github.com/configd/configd/keyspace"
)

// TestRollbackScopeAndValidate: the one check of what a rollback asks for,
// which the API and the web UI both use.
func TestRollbackScopeAndValidate(t *testing.T) {
	for _, tc := range []struct {
		key, prefix string
		all         bool
		want        Scope
		err         error
	}{
		{key: "app/a", want: Scope{Key: "app/a"}},
		{prefix: "app", want: Scope{Prefix: "app/"}},
		{all: true, want: Scope{}},
		{err: ErrBadRequest},                               // nothing
		{key: "app/a", prefix: "app/", err: ErrBadRequest}, // two
		{prefix: "app/", all: true, err: ErrBadRequest},
		{prefix: "/", err: ErrBadRequest}, // the whole keyspace, by a prefix
		{key: "a//b", err: keyspace.ErrInvalidKey},
		{prefix: "a//b", err: keyspace.ErrInvalidKey},
	} {
		got, err := RollbackScope(tc.key, tc.prefix, tc.all)
		if !errors.Is(err, tc.err) || (tc.err == nil && got != tc.want) {
			t.Errorf("RollbackScope(%q, %q, %v) = %+v, %v; want %+v, %v", tc.key, tc.prefix, tc.all, got, err, tc.want, tc.err)
		}
	}
	for _, tc := range []struct {
		req RollbackRequest
		err error
	}{
		{RollbackRequest{To: 1}, nil},
		{RollbackRequest{To: 0}, ErrRevisionGone},
		{RollbackRequest{To: 2, ExpectRev: -1}, ErrBadRequest},
		{RollbackRequest{Scope: Scope{Key: "k", Prefix: "p/"}, To: 1}, ErrBadRequest},
		{RollbackRequest{Scope: Scope{Key: "/k"}, To: 1}, keyspace.ErrInvalidKey},
	} {
		if err := tc.req.Validate(); !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("%+v.Validate() = %v, want %v", tc.req, err, tc.err)
		}
	}
}

package record

import (
	"fmt"

	"github.com/configd/configd/keyspace"
)

// RollbackScope is the scope of a rollback asked for by one of a key, a
// prefix or all (the whole keyspace): exactly one must be given, and a
// prefix that names the whole keyspace must be asked for as all, so that
// rolling back everything is never an accident. The key and prefix are
// checked (keyspace), and the prefix made canonical.
func RollbackScope(key, prefix string, all bool) (Scope, error) {
	n := 0
	for _, set := range []bool{key != "", prefix != "", all} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return Scope{}, fmt.Errorf("%w: give exactly one of a key, a prefix or all (the whole keyspace)", ErrBadRequest)
	case key != "":
		if err := keyspace.Validate(key); err != nil {
			return Scope{}, err
		}
		return Scope{Key: key}, nil
	case prefix != "":
		p, err := keyspace.Prefix(prefix)
		if err != nil {
			return Scope{}, err
		}
		if p == "" {
			return Scope{}, fmt.Errorf("%w: prefix %q is the whole keyspace: ask for all instead", ErrBadRequest, prefix)
		}
		return Scope{Prefix: p}, nil
	}
	return Scope{}, nil
}

// Validate checks what a rollback asks for before it is planned: a scope
// that selects keys (Scope), a target revision To from 1
// (ErrRevisionGone below), and an ExpectRev that is not negative.
func (r RollbackRequest) Validate() error {
	if _, err := r.Scope.Canonical(); err != nil {
		return err
	}
	if r.To < 1 {
		return fmt.Errorf("%w: revision %d; revisions start at 1", ErrRevisionGone, r.To)
	}
	if r.ExpectRev < 0 {
		return fmt.Errorf("%w: expect_rev %d is negative", ErrBadRequest, r.ExpectRev)
	}
	return nil
}

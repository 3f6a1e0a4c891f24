package record

import (
	"errors"
	"fmt"
)

// StoreLayer is the name of the writable layer: what Commit and Rollback
// write. The other layers are sources, fed with ApplySource.
const StoreLayer = "store"

// ErrOwned: a write or a rollback touches a key that a layer above the
// store layer defines, so the store layer cannot change its effective
// value. The error is an *OwnedError.
var ErrOwned = errors.New("key is owned by a higher layer")

// OwnedError names the key and the layer above the store that defines it.
type OwnedError struct {
	Key, Layer string
}

func (e *OwnedError) Error() string {
	return fmt.Sprintf("key %q comes from source %q, which is above the store layer: change it in that source (or place the store layer above it)", e.Key, e.Layer)
}

// Unwrap makes errors.Is(err, ErrOwned) true.
func (e *OwnedError) Unwrap() error { return ErrOwned }

// LayerValue is a layer's raw value for a key. A tombstone (store layer
// only) hides the key from the layers below.
type LayerValue struct {
	Value       []byte
	ContentType string
	Tombstone   bool
	// Secret, Hash and Length are as in KeyValue: the store layer's value
	// of a secret key is encrypted at rest, and Stack and Revision
	// withhold it.
	Secret bool
	Hash   string
	Length int
}

// Equal reports whether v and w (either may be nil: no value) hold the
// same value.
func (v *LayerValue) Equal(w *LayerValue) bool {
	switch {
	case v == nil || w == nil:
		return v == nil && w == nil
	case v.Tombstone || w.Tombstone:
		return v.Tombstone == w.Tombstone
	}
	return v.ContentType == w.ContentType && string(v.Value) == string(w.Value) && v.Secret == w.Secret
}

// LayerChange is what a revision did to one layer's raw value of a key;
// Old or New is nil when the layer did not define the key.
type LayerChange struct {
	Layer, Key string
	Old, New   *LayerValue
}

// IsSecret reports whether either side of lc is a secret's value: its row
// holds ciphertext.
func (lc *LayerChange) IsSecret() bool {
	return lc.Old != nil && lc.Old.Secret || lc.New != nil && lc.New.Secret
}

// LayerEntry is one layer's value in the stack of a key.
type LayerEntry struct {
	Layer string
	Value LayerValue
	// Effective is true for the entry the key's value comes from (or the
	// tombstone that hides the key).
	Effective bool
}

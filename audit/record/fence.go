package record

import (
	"errors"
	"fmt"
)

// ErrFenced: a write carried a Fence that no longer holds (the etcd key it
// names is gone, or was created again): the writer lost the role the fence
// stands for, and nothing of the write was recorded.
var ErrFenced = errors.New("fenced: the role this write was made under is no longer held")

// Fence is a condition that a replicated commit log checks in the same
// etcd transaction that records a write: the write is recorded only if Key
// exists with the creation revision Rev. A source's replica gives its
// election key (server/sourcelead), so that a replica that lost the role
// without knowing it yet (paused while its lease ran out) records nothing.
// The zero Fence is no fence.
type Fence struct {
	Key string
	Rev int64
}

// IsZero reports whether f is no fence.
func (f Fence) IsZero() bool { return f.Key == "" }

func (f Fence) String() string { return fmt.Sprintf("%s (created at etcd revision %d)", f.Key, f.Rev) }

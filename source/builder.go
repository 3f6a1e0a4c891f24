package source

import (
	"fmt"

	"github.com/configd/configd/keyspace"
)

// Builder collects a snapshot, enforcing what the Update contract promises
// about it: every key valid, also once mounted, every value within the size
// limit, each key given once. What breaks a rule is left out and becomes a
// Warning. Sources use it; it is exported for sources outside this tree.
type Builder struct {
	mount    string
	maxSize  int
	snap     map[string]Value
	from     map[string]string // key -> where it came from, for duplicate reports
	warnings []Warning
}

// NewBuilder returns a Builder for a source mounted at mount (a canonical
// prefix, Config.MountPrefix) that refuses values over maxValueSize bytes
// (no limit when <= 0).
func NewBuilder(mount string, maxValueSize int) *Builder {
	return &Builder{mount: mount, maxSize: maxValueSize, snap: map[string]Value{}, from: map[string]string{}}
}

// Add puts key (relative to the mount) with value v, read from where. It
// reports whether the key was taken: an invalid key, an oversize value or a
// key already added is refused with a warning. The first of two entries
// with the same key wins, so callers add in a deterministic order.
func (b *Builder) Add(where, key string, v Value) bool {
	if err := keyspace.ValidateNew(key); err != nil {
		b.Warn(where, fmt.Sprintf("left out: %v", err))
		return false
	}
	if b.mount != "" {
		if err := keyspace.ValidateNew(b.mount + key); err != nil {
			b.Warn(where, fmt.Sprintf("left out: once mounted at %q: %v", b.mount, err))
			return false
		}
	}
	if b.maxSize > 0 && len(v.Data) > b.maxSize {
		b.Warn(where, fmt.Sprintf("left out: key %q: value is %d bytes, the limit is %d", key, len(v.Data), b.maxSize))
		return false
	}
	if prev, dup := b.from[key]; dup {
		b.Warn(where, fmt.Sprintf("left out: key %q is already given by %s, which wins", key, prev))
		return false
	}
	b.snap[key] = v
	b.from[key] = where
	return true
}

// Warn records a problem that leaves something out of the snapshot.
func (b *Builder) Warn(where, problem string) {
	b.warnings = append(b.warnings, Warning{Where: where, Problem: problem})
}

// Len is the number of keys taken so far.
func (b *Builder) Len() int { return len(b.snap) }

// Result returns the snapshot and the warnings. The Builder must not be
// used afterwards.
func (b *Builder) Result() (map[string]Value, []Warning) {
	return b.snap, b.warnings
}

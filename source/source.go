// Package source defines where configd's read-only layers come from: a
// Source reads one scope of an outside system (a file or a directory, the
// environment, a Consul KV prefix, an etcd prefix) and hands configd a full
// snapshot of it every time it changes.
//
// Each type lives in a sub-package that declares the type's own config
// (file.Config, env.Config, consul.Config, etcd.Config): a plugin module
// of namespace source (see package plugin). Config holds what every source
// has (name, type, mount) and that config; New builds the source:
//
//	cfg := source.Config{Name: "shared", Type: "consul", Mount: "app/",
//		TypeConfig: consul.Config{Address: "127.0.0.1:8500", Prefix: "micro/config/"}}
//	src, err := source.New(cfg, source.WithLogger(log))
//	go src.Run(ctx, func(u source.Update) { ... })
//
// A config file's entries are decoded with a Catalog of the types it may
// name (source/all.Types has the ones that ship with configd):
//
//	cfg, err := source.DecodeConfig(node, all.Types())
//
// Adding a type needs no edit of this package: write its package (a
// config struct with PluginInfo, Validate and NewSource) and add it to
// source/all.
//
// # Why snapshots
//
// Every Update carries the whole scope, not a delta. The receiver diffs it
// against the previous snapshot to find puts and deletes. That makes
// deletes propagate by construction (a key missing from the snapshot is
// gone) and makes recovery after an outage, a Consul restart or an etcd
// compaction the same code path as the first load. A source that cannot
// read its scope sends an Update with Err set and no snapshot: the receiver
// keeps the last good snapshot, so a source that is away never deletes its
// keys. Diff turns two snapshots into puts and deletes; keys are relative
// to the source's mount (Config.MountPrefix), which the receiver prepends.
//
// source/memory is a Source whose content a test sets, for tests of what
// consumes sources; source/all lists every type that ships with configd.
package source

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"
)

// Content types of the values that sources produce. They are the ones
// configd's store accepts.
const (
	TypeText   = "text/plain"
	TypeJSON   = "application/json"
	TypeBinary = "application/octet-stream"
)

// Value is one value as a source read it.
type Value struct {
	Data []byte
	// ContentType is TypeText (scalars of a document, UTF-8 values of
	// Consul, etcd and the environment), TypeJSON (lists of a document) or
	// TypeBinary (Consul and etcd values that are not valid UTF-8).
	ContentType string
}

// Equal reports whether v and w hold the same bytes with the same type.
func (v Value) Equal(w Value) bool {
	return v.ContentType == w.ContentType && string(v.Data) == string(w.Data)
}

// String returns the value for logs: its text, or its size when binary.
func (v Value) String() string {
	if v.ContentType == TypeBinary {
		return fmt.Sprintf("<%d bytes>", len(v.Data))
	}
	return string(v.Data)
}

// Source is one read-only layer of configd's configuration.
//
// Contract, for the receiver (configd's merge):
//
//   - Run is called once. It reads the scope, calls emit with the first
//     Update as soon as it has one (a snapshot, or an error when the backend
//     cannot be reached), then keeps the scope current until ctx is done or
//     Close is called, and returns nil. It returns an error only when called
//     a second time or after Close.
//   - emit is called from one goroutine at a time, never concurrently, in
//     the order the source observed the changes. Each snapshot is complete
//     and newer than the one before it. emit may block: the source waits,
//     and what it emits next is current as of that time (changes in
//     between are folded into it, never lost).
//   - Two successive snapshots always differ, except that the first
//     snapshot after an error is sent even when it equals the last good
//     one, so the receiver learns that the source is healthy again.
//   - Run never emits an empty snapshot because the backend is unreachable:
//     only a successful read produces a snapshot.
//
// Name and Status may be called from any goroutine at any time. Close may be
// called at any time, more than once; it ends Run and frees the source's
// connections.
type Source interface {
	// Name is the source's name from its Config: configd records its
	// changes as made by "source:<name>".
	Name() string
	// Run reads and watches the scope; see the contract above.
	Run(ctx context.Context, emit func(Update)) error
	// Status is the source's state now: what /readyz and `configctl
	// sources` show. Every Update carries the Status as of its sending.
	Status() Status
	// Close stops Run and releases the source's resources.
	Close() error
}

// Update is what a Source emits: either a snapshot of its whole scope, or
// an error.
type Update struct {
	// Snapshot maps keys, relative to the source's mount, to their values.
	// It is non-nil (possibly empty) when Err is nil, and nil when Err is
	// set. Every key is valid, and stays valid once the mount is prepended
	// (keyspace.Validate(mount+key) == nil). The receiver may keep the map
	// but must not modify it.
	Snapshot map[string]Value
	// Err is set when the source could not read its scope: the backend is
	// down, a file does not parse. The receiver keeps the last good
	// snapshot and shows the source as degraded.
	Err error
	// Warnings are problems that did not stop the snapshot: a key that is
	// not valid, a value over the size limit, two entries that give the same
	// key. The offending entries are left out of Snapshot, the rest is
	// applied. Set only with a snapshot.
	Warnings []Warning
	// Status is the source's status when it sent the Update.
	Status Status
}

// Warning is one problem that a snapshot left out.
type Warning struct {
	// Where names the input in the source's own terms: a Consul or etcd
	// key, an environment variable, a file and the path in it.
	Where string
	// Problem says what is wrong and what was done about it.
	Problem string
}

func (w Warning) String() string { return w.Where + ": " + w.Problem }

// State is a source's health, as /readyz shows it.
type State string

const (
	// StateStarting: Run has not finished its first read yet.
	StateStarting State = "starting"
	// StateOK: the last read succeeded.
	StateOK State = "ok"
	// StateDegraded: the last read failed; configd serves the source's last
	// good snapshot, if it had one.
	StateDegraded State = "degraded"
	// StateClosed: the source was closed.
	StateClosed State = "closed"
)

// Status describes a source for /readyz and `configctl sources`.
type Status struct {
	State State `json:"state"`
	// LastError is the text of the latest error, kept after recovery so
	// that a flapping source can be diagnosed; LastErrorAt says when.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// LastSync is when the source last read its scope successfully, or
	// confirmed that it had not changed (a blocking query that timed out,
	// an etcd progress check).
	LastSync time.Time `json:"last_sync,omitzero"`
	// LastChange is when the source last sent a snapshot.
	LastChange time.Time `json:"last_change,omitzero"`
	// Revision is the last revision of the backend seen: Consul's
	// X-Consul-Index, etcd's store revision. The file source counts its
	// successful reads; the env source has none (0).
	Revision int64 `json:"revision"`
	// Keys is the number of keys in the last snapshot.
	Keys int `json:"keys"`
	// Warnings is the number of warnings of the last snapshot.
	Warnings int `json:"warnings"`
}

// Errors the package returns; check them with errors.Is.
var (
	// ErrConfig is wrapped by every error about a source's Config.
	ErrConfig = errors.New("invalid source config")
	// ErrUnknownType: the catalog that decodes a config has no such type.
	ErrUnknownType = errors.New("unknown source type")
	// ErrRunning: Run was called a second time, or after Close.
	ErrRunning = errors.New("source already run or closed")
)

// Clone returns a copy of a snapshot that the caller may modify.
func Clone(snapshot map[string]Value) map[string]Value {
	return maps.Clone(snapshot)
}

// Equal reports whether two snapshots hold the same keys and values.
func Equal(a, b map[string]Value) bool {
	return maps.EqualFunc(a, b, Value.Equal)
}

// WarningsText joins warnings into one line for a log or an audit record.
func WarningsText(ws []Warning) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.String()
	}
	return strings.Join(parts, "; ")
}

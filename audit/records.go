package audit

import "github.com/configd/configd/audit/record"

// The records of the store, defined in package record (see there for
// each one's documentation) and given here under audit's name, so that
// callers import audit only.
type (
	// OpType says whether a change puts or deletes a key.
	OpType = record.OpType
	// KeyValue is a key's value and revisions at some revision.
	KeyValue = record.KeyValue
	// Op is one operation of a transaction. Build it with Put or Delete.
	Op = record.Op
	// Txn is a set of operations committed together as one revision.
	Txn = record.Txn
	// Change is what a revision, or a diff, did to one key.
	Change = record.Change
	// Revision is one committed revision and, when loaded, its changes.
	Revision = record.Revision
	// Scope selects keys: one key, or every key under a prefix.
	Scope = record.Scope
	// HistoryQuery selects revisions for History.
	HistoryQuery = record.HistoryQuery
	// HistoryPage is one page of history, newest first.
	HistoryPage = record.HistoryPage
	// RollbackRequest asks for one new revision that makes a scope equal
	// to what it was at revision To.
	RollbackRequest = record.RollbackRequest
	// LayerValue is a layer's raw value for a key.
	LayerValue = record.LayerValue
	// LayerChange is what a revision did to one layer's raw value of a key.
	LayerChange = record.LayerChange
	// LayerEntry is one layer's value in the stack of a key.
	LayerEntry = record.LayerEntry
	// ConflictError says which key failed its compare-and-set.
	ConflictError = record.ConflictError
	// SchemaError says which rule of which prefix's JSON Schema a write
	// breaks, and where.
	SchemaError = record.SchemaError
	// OwnedError names the key and the layer above the store that defines
	// it.
	OwnedError = record.OwnedError
	// Fence is a condition a replica's commit checks in etcd: see
	// ApplySource's Fenced.
	Fence = record.Fence
)

// The operations.
const (
	OpPut    = record.OpPut
	OpDelete = record.OpDelete
)

// Content types the store accepts.
const (
	TypeText   = record.TypeText
	TypeJSON   = record.TypeJSON
	TypeYAML   = record.TypeYAML
	TypeBinary = record.TypeBinary
)

// StoreLayer is the name of the writable layer: what Commit and Rollback
// write. The other layers are sources, fed with ApplySource.
const StoreLayer = record.StoreLayer

// Put returns an operation that sets key to value. An empty contentType
// means text/plain.
func Put(key string, value []byte, contentType string) Op { return record.Put(key, value, contentType) }

// Delete returns an operation that deletes key. Deleting a key that does not
// exist changes nothing.
func Delete(key string) Op { return record.Delete(key) }

// NormalizeContentType returns the canonical form of ct (see
// record.NormalizeContentType); any type the store does not know is
// ErrContentType.
func NormalizeContentType(ct string) (string, error) { return record.NormalizeContentType(ct) }

// RollbackScope is the scope of a rollback asked for by one of a key, a
// prefix or all (the whole keyspace): see record.RollbackScope.
func RollbackScope(key, prefix string, all bool) (Scope, error) {
	return record.RollbackScope(key, prefix, all)
}

package httpapi

import (
	"context"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/web"
)

// Store is what the HTTP API reads from and writes to: audit.Store. It
// holds what the web UI reads (web.Store), which the API mounts.
type Store interface {
	web.Store
	List(ctx context.Context, prefix string, opts ...audit.ReadOption) ([]audit.KeyValue, int64, error)
	Commit(ctx context.Context, txn audit.Txn) (audit.Revision, error)
	// The JSON Schemas per prefix (docs/schemas.md).
	SetSchema(ctx context.Context, prefix string, doc []byte, ch audit.SchemaChange) (audit.Revision, error)
	DeleteSchema(ctx context.Context, prefix string, ch audit.SchemaChange) (audit.Revision, error)
	GetSchema(ctx context.Context, prefix string) (audit.Schema, error)
	Schemas(ctx context.Context) ([]audit.Schema, error)
	SchemaHistory(ctx context.Context, prefix string, q audit.HistoryQuery) (audit.HistoryPage, error)
	// MaxValueSize is the largest value the store takes, in bytes.
	MaxValueSize() int
	// SecretsEnabled reports whether the store has a master key.
	SecretsEnabled() bool
	// Withhold returns a secret's value replaced by its digest and length.
	Withhold(kv audit.KeyValue) (audit.KeyValue, error)
	// Layers are the store's layers, lowest first (a rollout's keys).
	Layers() []string
	Verify(ctx context.Context) (audit.VerifyResult, error)
	TempBackup(ctx context.Context) (path string, info audit.BackupInfo, remove func(), err error)
	Ping(ctx context.Context) error
	DiskFullErrors() int64
	SourceEvents(ctx context.Context, source string, limit int) ([]audit.SourceEvent, error)
	// WaitRev and Sync wait for a replica to catch up (core.ReadFence).
	WaitRev(ctx context.Context, rev int64) error
	Sync(ctx context.Context) (int64, error)
	// Replication reports whether a replica follows its cluster's log
	// (/readyz, /metrics).
	Replication() audit.Replication
}

var _ Store = (*audit.Store)(nil)

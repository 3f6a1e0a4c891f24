package api

import "time"

// SourceStatus is one layer of the effective configuration, as GET
// /v1/sources shows it: a source, or the writable store layer.
type SourceStatus struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Mount string `json:"mount,omitempty"`
	// Precedence is the layer's position, 0 for the lowest: a higher layer
	// wins where two define a key.
	Precedence int `json:"precedence"`
	// State is starting, ok, degraded or closed (the store layer is ok),
	// or standby: another replica of the cluster syncs the source.
	State       string     `json:"state"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	LastSync    *time.Time `json:"last_sync,omitempty"`
	// SourceRevision is the last revision of the backend seen (Consul's
	// index, etcd's revision, the file source's read count).
	SourceRevision int64 `json:"source_revision,omitempty"`
	// Rev is configd's revision that last applied the source's snapshot.
	Rev      int64    `json:"rev,omitempty"`
	Keys     int      `json:"keys"`
	Warnings []string `json:"warnings,omitempty"`
}

// SourcesResponse answers GET /v1/sources: the layers, highest precedence
// first, and the newest source events.
type SourcesResponse struct {
	Sources []SourceStatus `json:"sources"`
	Events  []SourceEvent  `json:"events,omitempty"`
}

// SourceEvent is a change in a source's health, kept in the audit trail: a
// failed read ("degraded", with the error), a refused snapshot ("refused"),
// a recovery ("ok"), or, on a replica of a cluster, the end of its role of
// syncing the source ("lost", with why: its session with the cluster
// ended, or its snapshot was refused because the role was gone).
type SourceEvent struct {
	Time    time.Time `json:"time"`
	Source  string    `json:"source"`
	State   string    `json:"state"`
	Message string    `json:"message,omitempty"`
}

// LayerValue is one layer's raw value of a key.
type LayerValue struct {
	Layer       string `json:"layer"`
	Value       string `json:"value,omitempty"`
	Encoding    string `json:"encoding,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	// Tombstone: the store layer hides the key from the layers below.
	Tombstone bool `json:"tombstone,omitempty"`
	// Effective marks the layer the key's value comes from.
	Effective bool `json:"effective,omitempty"`
	// Secret, Hash and Length: a secret key's value is withheld, as in
	// KeyValue.
	Secret bool   `json:"secret,omitempty"`
	Hash   string `json:"hash,omitempty"`
	Length int    `json:"length,omitempty"`
}

// LayersResponse answers GET /v1/layers/{key}: every layer that defines
// the key, highest precedence first.
type LayersResponse struct {
	Key    string       `json:"key"`
	Layers []LayerValue `json:"layers"`
}

// CodeOwned: a write or rollback touches a key that a source above the
// store layer defines (409).
const CodeOwned = "owned"

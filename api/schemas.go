package api

import "encoding/json"

// Schema is a prefix's JSON Schema (docs/schemas.md): GET
// /v1/schemas/{prefix}, and each entry of GET /v1/schemas.
type Schema struct {
	// Prefix is canonical: "" is the whole keyspace, otherwise it ends in
	// '/'.
	Prefix string `json:"prefix"`
	// Schema is the schema's JSON, as it was set.
	Schema    json.RawMessage `json:"schema"`
	CreateRev int64           `json:"create_rev"`
	ModRev    int64           `json:"mod_rev"`
	Version   int64           `json:"version"`
}

// SchemasResponse answers GET /v1/schemas: every schema the token may
// read, sorted by prefix.
type SchemasResponse struct {
	Schemas []Schema `json:"schemas"`
}

// CodeSchema: a write, rollback or source snapshot would leave the merged
// view under a prefix breaking that prefix's JSON Schema, or a new schema
// is broken by the current state (422). Nothing was written; the message
// names the key, the JSON pointer inside its value, the rule and the
// schema's prefix.
const CodeSchema = "schema"

// QueryForce is the query parameter of PUT /v1/schemas/{prefix} that sets
// a schema the current state breaks (configctl schema set --force).
const QueryForce = "force"

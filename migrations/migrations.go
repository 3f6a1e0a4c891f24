// Package migrations holds configd's SQLite schema as numbered .sql files,
// embedded into the binary, and applies them: Up brings a database to the
// newest schema, applying the files it lacks, in order, inside one
// transaction (audit.Open calls it).
//
// A released file is never edited: a change to the schema is a new file
// with the next number (NNNN_what.sql).
package migrations

import "embed"

// FS holds the migration files, named NNNN_description.sql.
//
//go:embed *.sql
var FS embed.FS

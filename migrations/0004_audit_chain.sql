-- The tamper-evident audit chain: each revision's hash is SHA-256 over the
-- previous revision's hash and the revision's canonical content (its row,
-- its changes, its layer changes); audit.Store.Verify recomputes it.
ALTER TABLE revisions ADD COLUMN hash BLOB;

-- One row. legacy_through is the newest revision written before this
-- migration: those revisions had no hash, and audit.Open hashes them, in
-- order, the first time it opens the database (then sets backfilled), so
-- the chain covers every revision from 1. Their hashes attest their content
-- as of that upgrade, not as of their commit.
CREATE TABLE audit_chain (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    legacy_through INTEGER NOT NULL,
    backfilled     INTEGER NOT NULL DEFAULT 0
);
INSERT INTO audit_chain (id, legacy_through) SELECT 1, coalesce(max(rev), 0) FROM revisions;

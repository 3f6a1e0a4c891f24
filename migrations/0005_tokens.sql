-- Bearer tokens for authentication. Only the SHA-256 hash of a token is
-- kept: the token itself is shown once, when it is created. A name is
-- unique among the tokens that are not revoked; a revoked token's row stays
-- so that its name and grants remain on record.
CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    hash       BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,          -- Unix nanoseconds, UTC
    revoked_at INTEGER                    -- NULL while the token is valid
);
CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;

-- What a token may do: a permission on a key prefix ('' is every key).
-- admin implies write, write implies read.
CREATE TABLE token_grants (
    token_id   INTEGER NOT NULL REFERENCES tokens (id),
    permission TEXT    NOT NULL CHECK (permission IN ('read', 'write', 'admin')),
    prefix     TEXT    NOT NULL,
    PRIMARY KEY (token_id, permission, prefix)
);

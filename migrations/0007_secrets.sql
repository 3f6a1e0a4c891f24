-- Secrets (issue 7). A key marked secret has its values encrypted at rest
-- (AES-256-GCM, package secrets): the value columns of its rows hold the
-- ciphertext and the row's secret column is 1. The mark is per key (kv) and
-- per recorded row (changes, layer_kv, layer_changes, history_base), so
-- that a reader knows which bytes to decrypt; a row with secret = 1 holds
-- ciphertext in every value column it has.

-- data_keys: one data key per prefix (the first path segment of a key,
-- "app/"), wrapped (sealed) by the master key, which is never stored; only
-- its fingerprint is, so that a wrong master key is named as such.
-- Rotating the master key re-wraps these rows and touches no value.
CREATE TABLE data_keys (
    id            INTEGER PRIMARY KEY,
    prefix        TEXT    NOT NULL,
    master_key_id TEXT    NOT NULL,
    wrapped       BLOB    NOT NULL,
    created_at    INTEGER NOT NULL   -- Unix nanoseconds, UTC
);
CREATE INDEX data_keys_prefix ON data_keys (prefix, id);

ALTER TABLE kv            ADD COLUMN secret INTEGER NOT NULL DEFAULT 0;
ALTER TABLE changes       ADD COLUMN secret INTEGER NOT NULL DEFAULT 0;
ALTER TABLE layer_kv      ADD COLUMN secret INTEGER NOT NULL DEFAULT 0;
ALTER TABLE layer_changes ADD COLUMN secret INTEGER NOT NULL DEFAULT 0;
ALTER TABLE history_base  ADD COLUMN secret INTEGER NOT NULL DEFAULT 0;

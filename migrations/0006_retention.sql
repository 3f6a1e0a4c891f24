-- History retention (audit.WithRetention, audit.Store.Compact). A
-- compaction removes the oldest revisions with their changes and layer
-- changes; it never removes the newest revision, the current state (kv,
-- layer_kv) or anything needed to read the state at a retained revision.

-- compactions: one row per compaction, newest last. horizon is the oldest
-- revision retained after it: revisions before it are gone. A compaction
-- that runs in several steps (bounded transactions) updates its row at each
-- step. anchor is the chain hash of revision horizon-1, which the first
-- retained revision follows; base_hash is the digest of history_base; hash
-- chains the rows (SHA-256 over the previous row's hash and this row), so
-- that audit.Store.Verify notices an edited, removed or forged record.
CREATE TABLE compactions (
    id                INTEGER PRIMARY KEY,
    ts                INTEGER NOT NULL,   -- Unix nanoseconds, UTC, of its last step
    from_horizon      INTEGER NOT NULL,   -- the horizon before it (0: none)
    horizon           INTEGER NOT NULL,
    revisions_removed INTEGER NOT NULL,
    rows_removed      INTEGER NOT NULL,   -- revisions, changes and layer changes
    keep_revisions    INTEGER NOT NULL,   -- the retention it applied (0: no limit)
    keep_age          INTEGER NOT NULL,   -- nanoseconds (0: no limit)
    anchor            BLOB    NOT NULL,
    base_hash         BLOB    NOT NULL,
    hash              BLOB    NOT NULL
);

-- history_base: the value, as of horizon-1, of every key that was live
-- then and whose last change before the horizon was compacted away. With
-- the retained changes it answers reads at any revision from the horizon
-- on (a key unchanged since its base row still has that value).
CREATE TABLE history_base (
    key          TEXT    PRIMARY KEY,
    value        BLOB,
    content_type TEXT    NOT NULL,
    create_rev   INTEGER NOT NULL,
    mod_rev      INTEGER NOT NULL,
    version      INTEGER NOT NULL
);

-- Revisions: one row per commit. rev is the global revision counter.
CREATE TABLE revisions (
    rev         INTEGER PRIMARY KEY,
    ts          INTEGER NOT NULL,            -- commit time, Unix nanoseconds, UTC
    actor       TEXT    NOT NULL,
    reason      TEXT    NOT NULL DEFAULT '',
    origin      TEXT    NOT NULL,            -- 'api', 'source:<name>'
    rollback_to INTEGER NOT NULL DEFAULT 0,  -- the revision a rollback restored, or 0
    num_changes INTEGER NOT NULL
);
CREATE INDEX revisions_actor ON revisions (actor, rev);

-- Changes: what each revision did to each key, with the old and new value.
-- op: 1 put, 2 delete. old_* are NULL when the key did not exist before;
-- new_* are NULL on delete.
CREATE TABLE changes (
    rev            INTEGER NOT NULL REFERENCES revisions (rev),
    key            TEXT    NOT NULL,
    op             INTEGER NOT NULL,
    old_value      BLOB,
    old_type       TEXT,
    old_create_rev INTEGER,
    old_mod_rev    INTEGER,
    old_version    INTEGER,
    new_value      BLOB,
    new_type       TEXT,
    new_create_rev INTEGER,
    new_version    INTEGER,
    PRIMARY KEY (rev, key)
);
CREATE INDEX changes_key ON changes (key, rev);

-- kv: the current state, one row per live key.
CREATE TABLE kv (
    key          TEXT    PRIMARY KEY,
    value        BLOB    NOT NULL,
    content_type TEXT    NOT NULL,
    create_rev   INTEGER NOT NULL,
    mod_rev      INTEGER NOT NULL,
    version      INTEGER NOT NULL
);

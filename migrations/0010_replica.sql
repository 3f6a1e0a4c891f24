-- A replica of a configd cluster on etcd (issue 15, audit.WithEtcd): its
-- database is a local copy of the shared commit log, which holds every
-- revision. One row, written when an empty database first joins a log:
-- cluster is the log's identity (kept in etcd beside it) and prefix the
-- etcd prefix it lives under. A database with this row is refused by the
-- SQLite-only mode, and by a log of another identity; a database without
-- it that holds revisions is refused by the etcd mode.
CREATE TABLE replica (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    cluster   TEXT    NOT NULL,
    prefix    TEXT    NOT NULL,
    joined_at INTEGER NOT NULL   -- Unix nanoseconds, UTC
);

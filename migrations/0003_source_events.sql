-- Source events: a source that fails to read (a file that does not parse,
-- a server that is down), whose snapshot is refused, or that recovers. These
-- change no key, so they are not revisions; they are kept for the audit
-- trail and shown by `configctl sources`.
CREATE TABLE source_events (
    id      INTEGER PRIMARY KEY,
    ts      INTEGER NOT NULL,   -- Unix nanoseconds, UTC
    source  TEXT    NOT NULL,
    state   TEXT    NOT NULL,   -- degraded, ok, refused
    message TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX source_events_source ON source_events (source, id);

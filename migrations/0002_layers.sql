-- Layers: the raw values of every layer that feeds the effective view in kv:
-- the writable store layer ('store', what the API writes) and one layer per
-- source (a file, the environment, Consul, etcd), named after the source.
-- A tombstone (content_type '', value NULL; only in the store layer) hides
-- what lower layers define.
CREATE TABLE layer_kv (
    layer        TEXT NOT NULL,
    key          TEXT NOT NULL,
    value        BLOB,
    content_type TEXT NOT NULL,
    PRIMARY KEY (layer, key)
);
CREATE INDEX layer_kv_key ON layer_kv (key, layer);

-- Layer changes: what each revision did to each layer's raw values,
-- including changes hidden by a higher layer (they change no key in kv).
-- *_type NULL: absent; '': a tombstone.
CREATE TABLE layer_changes (
    rev       INTEGER NOT NULL REFERENCES revisions (rev),
    layer     TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    old_value BLOB,
    old_type  TEXT,
    new_value BLOB,
    new_type  TEXT,
    PRIMARY KEY (rev, layer, key)
);

-- Until now every value was written through the API: the store layer.
INSERT INTO layer_kv (layer, key, value, content_type)
    SELECT 'store', key, value, content_type FROM kv;

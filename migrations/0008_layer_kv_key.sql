-- layer_kv_key indexed layer_kv by (key, layer), for reading a key's rows in
-- every layer. That read now looks each configured layer up in the primary
-- key (layer, key) instead, and the index went: it cost every write to a
-- layer one more page in the WAL, at a place that depends on the key.
DROP INDEX layer_kv_key;

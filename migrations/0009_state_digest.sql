-- The audit chain commits to the state (issue 13). Each revision written
-- from now on records in state the SHA-256 of an LtHash of the state it
-- produced: every row of kv and layer_kv, as stored (a secret's ciphertext
-- and its secret flag included). The chain folds state into the revision's
-- hash when it is not NULL, so the revisions written before this migration
-- (state NULL) hash as they always did. audit.Open and audit.Store.Verify
-- compare the current tables with the newest revision's state.
ALTER TABLE revisions ADD COLUMN state BLOB;

-- state_from: the first revision that must record state (the ones before
-- it were written before this migration). high_water: the newest revision
-- ever committed, raised in the transaction of every batch of commits, so
-- that a history whose newest revisions were removed is refused instead of
-- handing their numbers out again.
ALTER TABLE audit_chain ADD COLUMN state_from INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_chain ADD COLUMN high_water INTEGER NOT NULL DEFAULT 0;
UPDATE audit_chain SET state_from = coalesce((SELECT max(rev) FROM revisions), 0) + 1,
                       high_water = coalesce((SELECT max(rev) FROM revisions), 0);

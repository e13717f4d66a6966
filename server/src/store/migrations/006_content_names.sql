-- Content names (SHA-256, 64 hex digits) of what phones download: each document's
-- snapshot (a phone that lacks a document downloads it by this name, resuming with
-- `Range` where a cut download stopped) and each criteria set's JSON (a phone that lacks a
-- set downloads it and checks it against this name). Written with every snapshot and set;
-- the relay fills them for older rows when it opens the store.
ALTER TABLE documents ADD COLUMN snapshot_hash TEXT;
ALTER TABLE criteria_sets ADD COLUMN sha256 TEXT;

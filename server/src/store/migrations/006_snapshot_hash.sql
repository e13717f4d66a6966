-- The SHA-256 of each document's snapshot (64 hex digits): phones that lack a document
-- download its snapshot by this name, resuming with `Range` where a cut download stopped.
-- Written with every snapshot; the relay fills it for older rows when it opens the store.
ALTER TABLE documents ADD COLUMN snapshot_hash TEXT;

-- The SHA-256 of each criteria set's JSON (64 hex digits): the listing on the sync
-- connection names a set by it, and a phone checks the set it downloads against it.
-- Written with every set; the relay fills it for older rows when it opens the store.
ALTER TABLE criteria_sets ADD COLUMN sha256 TEXT;

-- Relay schema version 4: who is uploading what, for the quotas and the expiry of
-- unfinished uploads (`blobs/partial/`). A row is made before the first byte of an upload
-- is written and removed when the upload completes, fails or expires; `total` is the
-- declared `Upload-Length`, what the upload may yet take on disk.
CREATE TABLE partial_uploads (
    hash        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    total       INTEGER NOT NULL,
    touched_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX partial_uploads_by_owner ON partial_uploads(owner, touched_at);
CREATE INDEX partial_uploads_by_touch ON partial_uploads(touched_at);

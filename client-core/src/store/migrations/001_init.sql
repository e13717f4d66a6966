-- wardcheck local store, schema version 1.

-- Assessment documents: a compacted snapshot plus the incremental change chunks written
-- since. Loading is the snapshot followed by every chunk in `seq` order.
CREATE TABLE documents (
    id          TEXT PRIMARY KEY,   -- DocumentId, bs58check
    unit_id     TEXT NOT NULL,
    period      TEXT NOT NULL,
    snapshot    BLOB NOT NULL,
    updated_at  INTEGER NOT NULL    -- ms since the epoch
) STRICT;

CREATE TABLE document_chunks (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id  TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    data         BLOB NOT NULL
) STRICT;
CREATE INDEX document_chunks_by_document ON document_chunks(document_id, seq);

-- Photo blobs, content-addressed by SHA-256.
CREATE TABLE blobs (
    hash        TEXT PRIMARY KEY,   -- 64 hex digits
    kind        TEXT NOT NULL CHECK (kind IN ('evidence', 'thumbnail')),
    size        INTEGER NOT NULL,
    data        BLOB NOT NULL,
    uploaded    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX blobs_to_upload ON blobs(uploaded, kind);

-- Automerge sync state per (peer, document), so a sync resumes where it stopped.
CREATE TABLE sync_states (
    peer         TEXT NOT NULL,
    document_id  TEXT NOT NULL,
    state        BLOB NOT NULL,
    PRIMARY KEY (peer, document_id)
) STRICT;

-- This device: its id and its ed25519 key pair (the secret never leaves the store).
CREATE TABLE device (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    device_id   TEXT NOT NULL,
    secret_key  BLOB NOT NULL,
    public_key  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- Criteria templates installed on this device, as their JSON.
CREATE TABLE templates (
    id       TEXT NOT NULL,
    version  INTEGER NOT NULL,
    json     TEXT NOT NULL,
    PRIMARY KEY (id, version)
) STRICT;

-- Small settings: the signed-in user, and later the relay and its token.
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) STRICT;

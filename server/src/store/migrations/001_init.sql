-- wardcheck relay store, schema version 1.
-- Timestamps are milliseconds since the Unix epoch, like the core's store.

-- The unit tree: a ward's parent is a city (or, since the 2025 two-tier reform, directly
-- a province); a city's parent is a province; a province has none.
CREATE TABLE units (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('ward', 'city', 'province')),
    parent_id   TEXT REFERENCES units(id),
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX units_by_parent ON units(parent_id);

-- People. An officer belongs to a ward, a supervisor to a city or a province. The
-- password (for the console, later) is stored only as an argon2 PHC string.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    display_name   TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'admin')),
    unit_id        TEXT NOT NULL REFERENCES units(id),
    password_hash  TEXT,
    created_at     INTEGER NOT NULL
) STRICT;

-- Enrolled phones. The bearer token is stored only as its SHA-256.
CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    token_hash  BLOB NOT NULL UNIQUE,
    public_key  TEXT NOT NULL,          -- ed25519, 64 hex digits
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER,
    revoked_at  INTEGER
) STRICT;
CREATE INDEX devices_revoked ON devices(revoked_at) WHERE revoked_at IS NOT NULL;

-- One-time enrolment codes, stored only as their SHA-256.
CREATE TABLE enrolment_codes (
    code_hash   BLOB PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    device_id   TEXT REFERENCES devices(id)
) STRICT;

-- Assessment documents, as in the core: a snapshot plus the change chunks written since.
-- Loading is the snapshot followed by every chunk in `seq` order.
CREATE TABLE documents (
    id          TEXT PRIMARY KEY,       -- DocumentId, bs58check
    unit_id     TEXT NOT NULL REFERENCES units(id),   -- the ward
    snapshot    BLOB NOT NULL,
    heads       BLOB NOT NULL,          -- opaque to the store; written by the sync code
    updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX documents_by_unit ON documents(unit_id);

CREATE TABLE document_chunks (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id  TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    data         BLOB NOT NULL
) STRICT;
CREATE INDEX document_chunks_by_document ON document_chunks(document_id, seq);

-- Which documents reference which photo blobs: a blob is visible to whoever may read
-- one of them.
CREATE TABLE blob_refs (
    hash         TEXT NOT NULL,         -- 64 hex digits
    document_id  TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    PRIMARY KEY (hash, document_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX blob_refs_by_document ON blob_refs(document_id);

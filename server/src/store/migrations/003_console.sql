-- Relay schema version 3: the supervisors' web console.

-- Signed-in browser sessions. The cookie's token is stored only as its SHA-256; `csrf` is
-- the per-session token every console form must carry back.
CREATE TABLE console_sessions (
    token_hash  BLOB PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX console_sessions_by_expiry ON console_sessions(expires_at);

-- Failed sign-ins, each counted twice: under the user name typed (known or not, so a
-- lock-out says nothing about who exists) and under `ip:` and the client's address. Old
-- rows are pruned when new ones are written.
CREATE TABLE console_sign_in_failures (
    name  TEXT NOT NULL,
    at    INTEGER NOT NULL
) STRICT;
CREATE INDEX console_sign_in_failures_by_name ON console_sign_in_failures(name, at);

-- Where a unit is, to tell whether a photo's GPS lies inside it: a centre and a radius.
ALTER TABLE units ADD COLUMN lat REAL;
ALTER TABLE units ADD COLUMN lon REAL;
ALTER TABLE units ADD COLUMN radius_m REAL;

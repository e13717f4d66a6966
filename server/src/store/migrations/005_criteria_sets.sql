-- Criteria sets (assessment templates) published by the relay, for phones to receive at
-- their sync. A published (id, version) never changes: publishing other content under it
-- is refused. A retired set takes no new assessments; it is never deleted, because the
-- assessments made from it carry it and are read against it.

CREATE TABLE criteria_sets (
    id            TEXT NOT NULL,        -- the template's id, e.g. "model-ward-antt"
    version       INTEGER NOT NULL,     -- its version, 1 and up
    json          TEXT NOT NULL,        -- canonical (the core's Template::to_json)
    published_at  INTEGER NOT NULL,     -- ms since the Unix epoch
    published_by  TEXT NOT NULL,        -- "admin" (the command line) or a user id
    retired_at    INTEGER,              -- ms since the Unix epoch; NULL while in use
    PRIMARY KEY (id, version)
) STRICT;

-- wardcheck local store, schema version 2: a cache of each document's last built view.
--
-- Opening a long-edited assessment means loading its whole Automerge history; a screen
-- that only shows it can use the view built last time instead, as long as the document
-- has not changed since: `heads` (the document's change hashes) decide.

ALTER TABLE documents ADD COLUMN heads BLOB NOT NULL DEFAULT x'';

CREATE TABLE document_views (
    document_id  TEXT PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    heads        BLOB NOT NULL,
    view         TEXT NOT NULL   -- AssessmentView as JSON
) STRICT;

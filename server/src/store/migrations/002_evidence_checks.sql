-- Relay schema version 2: the relay's verdict on each evidence record's signature.
--
-- Every evidence record a device sends is checked against the public key registered for a
-- device of the officer it names. A record that fails stays in the document (nothing is
-- silently dropped) but is flagged here for supervisors.
CREATE TABLE evidence_checks (
    document_id  TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    criterion    TEXT NOT NULL,
    photo        TEXT NOT NULL,   -- the evidence blob's SHA-256
    verdict      TEXT NOT NULL CHECK (verdict IN ('verified', 'unknown_device', 'bad_signature')),
    checked_at   INTEGER NOT NULL,
    PRIMARY KEY (document_id, criterion, photo)
) STRICT;

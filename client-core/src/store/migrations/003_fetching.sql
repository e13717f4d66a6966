-- wardcheck local store, schema version 3: documents and blobs being fetched, kept as
-- they arrive.
--
-- A phone fetching an assessment it lacks over a link that drops every few KB gets it in
-- many bounded sync messages, over many connections and `sync` calls, maybe across a
-- restart of the app. Each message's changes are kept here as they arrive, so the next
-- attempt resumes from them; once the document reads whole it moves to `documents`, in
-- the same transaction that deletes its rows here.

CREATE TABLE fetching_chunks (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id  TEXT NOT NULL,     -- DocumentId, bs58check; not in `documents` yet
    data         BLOB NOT NULL      -- a sync message's changes, joined
) STRICT;
CREATE INDEX fetching_chunks_by_document ON fetching_chunks(document_id, seq);

-- Photos and thumbnails being downloaded: the bytes that arrived, in pieces, so a download
-- cut short goes on with a `Range` request from where it stopped. Once the blob is whole
-- and matches its hash it moves to `blobs`, in the same transaction that deletes its
-- pieces here.
CREATE TABLE fetching_blobs (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    hash  TEXT NOT NULL,                -- 64 hex digits; not in `blobs` yet
    data  BLOB NOT NULL
) STRICT;
CREATE INDEX fetching_blobs_by_hash ON fetching_blobs(hash, seq);

//! The local store: SQLite (bundled, WAL) holding documents, blobs, sync states, the
//! device's keys, templates and settings.
//!
//! Writes go through [`Store::write`], one `IMMEDIATE` transaction per call, with
//! `synchronous = FULL`: when it returns, the data is on disk and survives a crash or a
//! power cut. Callers put everything one user action changes (a document chunk and the
//! photo blobs it references) in one `write`, so it lands whole or not at all.

mod schema;

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::blob::{BlobHash, BlobKind};
use crate::doc::DocumentId;
use crate::error::{Error, Result};

/// A document as stored: the snapshot and the chunks written after it, in order.
pub(crate) struct StoredDocument {
    pub snapshot: Vec<u8>,
    pub chunks: Vec<Vec<u8>>,
}

/// What the store knows of a blob, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// Its address.
    pub hash: BlobHash,
    /// Evidence or thumbnail.
    pub kind: BlobKind,
    /// Size in bytes.
    pub size: u64,
    /// Whether the relay has confirmed it holds the blob.
    pub uploaded: bool,
}

/// This device's identity as stored.
pub(crate) struct DeviceRow {
    pub device_id: String,
    pub secret_key: Vec<u8>,
}

/// The SQLite database of one workspace.
pub(crate) struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self> {
        Self::setup(Connection::open(path)?)
    }

    /// An in-memory database, for tests.
    #[cfg(test)]
    pub fn open_in_memory() -> Result<Self> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self> {
        // WAL must be set outside a transaction; FULL makes every commit durable.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate(&mut conn)?;
        Ok(Self { conn })
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`, rolled back otherwise.
    pub fn write<T>(&mut self, f: impl FnOnce(&Writer<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&Writer(&tx))?;
        tx.commit()?;
        Ok(out)
    }

    /// Checks the database file (`PRAGMA integrity_check`).
    pub fn integrity_check(&self) -> Result<()> {
        let verdict: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
        if verdict == "ok" {
            Ok(())
        } else {
            Err(Error::Malformed(format!("database integrity: {verdict}")))
        }
    }

    /// The stored document, or `None`.
    pub fn document(&self, id: &DocumentId) -> Result<Option<StoredDocument>> {
        let id = id.to_string();
        let Some(snapshot) = self
            .conn
            .query_row(
                "SELECT snapshot FROM documents WHERE id = ?1",
                [&id],
                |row| row.get(0),
            )
            .optional()?
        else {
            return Ok(None);
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT data FROM document_chunks WHERE document_id = ?1 ORDER BY seq",
        )?;
        let chunks = stmt
            .query_map([&id], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<Vec<u8>>>>()?;
        Ok(Some(StoredDocument { snapshot, chunks }))
    }

    /// The cached view of a document, if it was built at the document's current heads.
    pub fn cached_view(&self, id: &DocumentId) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT v.view FROM document_views v JOIN documents d ON d.id = v.document_id
                 WHERE v.document_id = ?1 AND v.heads = d.heads",
                [id.to_string()],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Whether the document is stored.
    pub fn has_document(&self, id: &DocumentId) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM documents WHERE id = ?1",
                [id.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Ids of every stored document.
    pub fn document_ids(&self) -> Result<Vec<DocumentId>> {
        let mut stmt = self.conn.prepare("SELECT id FROM documents ORDER BY id")?;
        let ids = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        ids.iter()
            .map(|id| {
                id.parse()
                    .map_err(|_| Error::Malformed(format!("stored document id {id:?}")))
            })
            .collect()
    }

    /// How many chunks a document has on top of its snapshot.
    pub fn chunk_count(&self, id: &DocumentId) -> Result<usize> {
        let count: i64 = self.conn.query_row(
            "SELECT count(*) FROM document_chunks WHERE document_id = ?1",
            [id.to_string()],
            |row| row.get(0),
        )?;
        Ok(count as usize)
    }

    /// A blob's bytes, or `None`.
    pub fn blob(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT data FROM blobs WHERE hash = ?1",
                [hash.to_hex()],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Blobs not yet confirmed by the relay, thumbnails first, then oldest first.
    pub fn pending_uploads(&self) -> Result<Vec<BlobInfo>> {
        self.blob_infos(
            "SELECT hash, kind, size, uploaded FROM blobs WHERE uploaded = 0
             ORDER BY kind = 'evidence', created_at, hash",
        )
    }

    /// What the store knows of a blob.
    pub fn blob_info(&self, hash: &BlobHash) -> Result<Option<BlobInfo>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hash, kind, size, uploaded FROM blobs WHERE hash = ?1")?;
        let mut rows = stmt.query([hash.to_hex()])?;
        rows.next()?.map(blob_info_of).transpose()
    }

    fn blob_infos(&self, sql: &str) -> Result<Vec<BlobInfo>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(blob_info_of(row)?);
        }
        Ok(out)
    }

    /// This device's stored identity, if created.
    pub fn device(&self) -> Result<Option<DeviceRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT device_id, secret_key FROM device WHERE singleton = 1",
                [],
                |row| {
                    Ok(DeviceRow {
                        device_id: row.get(0)?,
                        secret_key: row.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// The JSON of every installed template.
    pub fn templates(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT json FROM templates ORDER BY id, version")?;
        let rows = stmt
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(rows)
    }

    /// A setting, or `None`.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?)
    }

    /// The changes kept of a document being fetched, in the order they arrived.
    pub fn fetching_chunks(&self, id: &DocumentId) -> Result<Vec<Vec<u8>>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT data FROM fetching_chunks WHERE document_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([id.to_string()], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The documents being fetched: those with changes kept.
    pub fn fetching_documents(&self) -> Result<Vec<DocumentId>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT document_id FROM fetching_chunks")?;
        let ids = stmt.query_map([], |row| row.get::<_, String>(0))?;
        let mut documents = Vec::new();
        for id in ids {
            // Only ids that parsed are ever written.
            if let Ok(id) = id?.parse() {
                documents.push(id);
            }
        }
        Ok(documents)
    }

    /// The bytes that arrived of a blob being downloaded.
    pub fn fetching_blob_len(&self, hash: &BlobHash) -> Result<u64> {
        let bytes: i64 = self.conn.query_row(
            "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM fetching_blobs WHERE hash = ?1",
            [hash.to_hex()],
            |row| row.get(0),
        )?;
        Ok(bytes as u64)
    }

    /// The bytes kept of a document being fetched.
    pub fn fetching_bytes(&self, id: &DocumentId) -> Result<u64> {
        let bytes: i64 = self.conn.query_row(
            "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM fetching_chunks WHERE document_id = ?1",
            [id.to_string()],
            |row| row.get(0),
        )?;
        Ok(bytes as u64)
    }

    /// The bytes that arrived of a blob being downloaded, joined; empty if none.
    pub fn fetching_blob(&self, hash: &BlobHash) -> Result<Vec<u8>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT data FROM fetching_blobs WHERE hash = ?1 ORDER BY seq")?;
        let pieces = stmt.query_map([hash.to_hex()], |row| row.get::<_, Vec<u8>>(0))?;
        let mut bytes = Vec::new();
        for piece in pieces {
            bytes.extend_from_slice(&piece?);
        }
        Ok(bytes)
    }

    /// The bytes kept of every blob being downloaded.
    pub fn fetching_blob_bytes(&self) -> Result<u64> {
        let bytes: i64 = self.conn.query_row(
            "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM fetching_blobs",
            [],
            |row| row.get(0),
        )?;
        Ok(bytes as u64)
    }

    /// The saved sync state with `peer` for a document, or `None`.
    pub fn sync_state(&self, peer: &str, id: &DocumentId) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT state FROM sync_states WHERE peer = ?1 AND document_id = ?2",
                params![peer, id.to_string()],
                |row| row.get(0),
            )
            .optional()?)
    }
}

fn blob_info_of(row: &rusqlite::Row<'_>) -> Result<BlobInfo> {
    let hash: String = row.get(0)?;
    let kind: String = row.get(1)?;
    Ok(BlobInfo {
        hash: hash
            .parse()
            .map_err(|_| Error::Malformed("stored blob hash".into()))?,
        kind: BlobKind::parse(&kind).ok_or_else(|| Error::Malformed("stored blob kind".into()))?,
        size: row.get::<_, i64>(2)? as u64,
        uploaded: row.get(3)?,
    })
}

/// The writes of one transaction (see [`Store::write`]).
pub(crate) struct Writer<'a>(&'a rusqlite::Transaction<'a>);

impl Writer<'_> {
    /// Stores a new document's first snapshot; fails if it exists.
    pub fn insert_document(
        &self,
        id: &DocumentId,
        unit_id: &str,
        period: &str,
        snapshot: &[u8],
        heads: &[u8],
        now_ms: i64,
    ) -> Result<()> {
        let inserted = self.0.execute(
            "INSERT INTO documents (id, unit_id, period, snapshot, heads, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
            params![id.to_string(), unit_id, period, snapshot, heads, now_ms],
        )?;
        if inserted == 0 {
            return Err(Error::DocumentExists(*id));
        }
        Ok(())
    }

    /// Appends an incremental chunk of changes to a stored document, whose heads are now
    /// `heads`.
    pub fn append_chunk(
        &self,
        id: &DocumentId,
        chunk: &[u8],
        heads: &[u8],
        now_ms: i64,
    ) -> Result<()> {
        let id = id.to_string();
        self.0.execute(
            "INSERT INTO document_chunks (document_id, data) VALUES (?1, ?2)",
            params![id, chunk],
        )?;
        self.0.execute(
            "UPDATE documents SET heads = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, heads, now_ms],
        )?;
        Ok(())
    }

    /// Keeps changes that arrived for a document being fetched.
    pub fn append_fetching_chunk(&self, id: &DocumentId, chunk: &[u8]) -> Result<()> {
        self.0.execute(
            "INSERT INTO fetching_chunks (document_id, data) VALUES (?1, ?2)",
            params![id.to_string(), chunk],
        )?;
        Ok(())
    }

    /// Forgets what was kept of a document being fetched: it is stored whole now, or what
    /// arrived was broken.
    pub fn delete_fetching_chunks(&self, id: &DocumentId) -> Result<()> {
        self.0.execute(
            "DELETE FROM fetching_chunks WHERE document_id = ?1",
            [id.to_string()],
        )?;
        Ok(())
    }

    /// Keeps a piece that arrived of a blob being downloaded.
    pub fn append_fetching_blob(&self, hash: &BlobHash, piece: &[u8]) -> Result<()> {
        self.0.execute(
            "INSERT INTO fetching_blobs (hash, data) VALUES (?1, ?2)",
            params![hash.to_hex(), piece],
        )?;
        Ok(())
    }

    /// Forgets the pieces of a blob being downloaded: it is stored whole now, or what
    /// arrived was broken.
    pub fn delete_fetching_blob(&self, hash: &BlobHash) -> Result<()> {
        self.0.execute(
            "DELETE FROM fetching_blobs WHERE hash = ?1",
            [hash.to_hex()],
        )?;
        Ok(())
    }

    /// Forgets the pieces of every blob being downloaded but `hash`, to make room.
    pub fn delete_other_fetching_blobs(&self, hash: &BlobHash) -> Result<()> {
        self.0.execute(
            "DELETE FROM fetching_blobs WHERE hash <> ?1",
            [hash.to_hex()],
        )?;
        Ok(())
    }

    /// Caches the view built at `heads`.
    pub fn put_view(&self, id: &DocumentId, heads: &[u8], view_json: &str) -> Result<()> {
        self.0.execute(
            "INSERT INTO document_views (document_id, heads, view) VALUES (?1, ?2, ?3)
             ON CONFLICT (document_id) DO UPDATE SET heads = excluded.heads, view = excluded.view",
            params![id.to_string(), heads, view_json],
        )?;
        Ok(())
    }

    /// Replaces a document's snapshot and drops its chunks: compaction. The caller must
    /// pass a snapshot that contains every stored chunk.
    pub fn replace_snapshot(&self, id: &DocumentId, snapshot: &[u8]) -> Result<()> {
        let id = id.to_string();
        self.0.execute(
            "UPDATE documents SET snapshot = ?2 WHERE id = ?1",
            params![id, snapshot],
        )?;
        self.0
            .execute("DELETE FROM document_chunks WHERE document_id = ?1", [id])?;
        Ok(())
    }

    /// Stores a blob; storing one that exists is a no-op.
    pub fn put_blob(
        &self,
        hash: &BlobHash,
        kind: BlobKind,
        data: &[u8],
        now_ms: i64,
    ) -> Result<()> {
        self.0.execute(
            "INSERT INTO blobs (hash, kind, size, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (hash) DO NOTHING",
            params![
                hash.to_hex(),
                kind.as_str(),
                data.len() as i64,
                data,
                now_ms
            ],
        )?;
        Ok(())
    }

    /// Records that the relay holds a blob.
    pub fn mark_uploaded(&self, hash: &BlobHash) -> Result<()> {
        self.0.execute(
            "UPDATE blobs SET uploaded = 1 WHERE hash = ?1",
            [hash.to_hex()],
        )?;
        Ok(())
    }

    /// Stores this device's identity (once).
    pub fn set_device(
        &self,
        device_id: &str,
        secret: &[u8],
        public: &str,
        now_ms: i64,
    ) -> Result<()> {
        self.0.execute(
            "INSERT INTO device (singleton, device_id, secret_key, public_key, created_at)
             VALUES (1, ?1, ?2, ?3, ?4)",
            params![device_id, secret, public, now_ms],
        )?;
        Ok(())
    }

    /// Installs (or replaces) a template's JSON.
    pub fn put_template(&self, id: &str, version: u32, json: &str) -> Result<()> {
        self.0.execute(
            "INSERT INTO templates (id, version, json) VALUES (?1, ?2, ?3)
             ON CONFLICT (id, version) DO UPDATE SET json = excluded.json",
            params![id, version, json],
        )?;
        Ok(())
    }

    /// Sets a setting.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.0.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Deletes a setting (nothing if there is none).
    pub fn delete_setting(&self, key: &str) -> Result<()> {
        self.0
            .execute("DELETE FROM settings WHERE key = ?1", [key])?;
        Ok(())
    }

    /// Saves the sync state with `peer` for a document.
    pub fn set_sync_state(&self, peer: &str, id: &DocumentId, state: &[u8]) -> Result<()> {
        self.0.execute(
            "INSERT INTO sync_states (peer, document_id, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (peer, document_id) DO UPDATE SET state = excluded.state",
            params![peer, id.to_string(), state],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_id() -> DocumentId {
        DocumentId::for_assessment("unit", "2025")
    }

    #[test]
    fn documents_keep_snapshot_and_chunks_in_order() {
        let mut store = Store::open_in_memory().unwrap();
        let id = doc_id();
        store
            .write(|w| {
                w.insert_document(&id, "unit", "2025", b"snap", b"h0", 1)?;
                w.append_chunk(&id, b"one", b"h1", 2)?;
                w.append_chunk(&id, b"two", b"h2", 3)
            })
            .unwrap();
        let stored = store.document(&id).unwrap().unwrap();
        assert_eq!(stored.snapshot, b"snap");
        assert_eq!(stored.chunks, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(store.chunk_count(&id).unwrap(), 2);
        store.write(|w| w.replace_snapshot(&id, b"all")).unwrap();
        let stored = store.document(&id).unwrap().unwrap();
        assert_eq!((stored.snapshot, stored.chunks.len()), (b"all".to_vec(), 0));
        assert_eq!(store.document_ids().unwrap(), vec![id]);
        assert!(matches!(
            store.write(|w| w.insert_document(&id, "unit", "2025", b"x", b"h", 4)),
            Err(Error::DocumentExists(_))
        ));
    }

    #[test]
    fn a_cached_view_is_only_served_at_the_same_heads() {
        let mut store = Store::open_in_memory().unwrap();
        let id = doc_id();
        store
            .write(|w| {
                w.insert_document(&id, "unit", "2025", b"snap", b"h0", 1)?;
                w.put_view(&id, b"h0", "{view at h0}")
            })
            .unwrap();
        assert_eq!(
            store.cached_view(&id).unwrap().as_deref(),
            Some("{view at h0}")
        );
        store
            .write(|w| w.append_chunk(&id, b"c", b"h1", 2))
            .unwrap();
        assert_eq!(store.cached_view(&id).unwrap(), None);
        store
            .write(|w| w.put_view(&id, b"h1", "{view at h1}"))
            .unwrap();
        assert_eq!(
            store.cached_view(&id).unwrap().as_deref(),
            Some("{view at h1}")
        );
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let mut store = Store::open_in_memory().unwrap();
        let id = doc_id();
        let hash = BlobHash::of(b"photo");
        let result: Result<()> = store.write(|w| {
            w.insert_document(&id, "unit", "2025", b"snap", b"h", 1)?;
            w.put_blob(&hash, BlobKind::Evidence, b"photo", 1)?;
            Err(Error::InvalidInput("stop".into()))
        });
        assert!(result.is_err());
        assert!(store.document(&id).unwrap().is_none());
        assert!(store.blob(&hash).unwrap().is_none());
    }

    #[test]
    fn blobs_are_idempotent_and_thumbnails_upload_first() {
        let mut store = Store::open_in_memory().unwrap();
        let evidence = BlobHash::of(b"evidence");
        let thumb = BlobHash::of(b"thumb");
        store
            .write(|w| {
                w.put_blob(&evidence, BlobKind::Evidence, b"evidence", 1)?;
                w.put_blob(&evidence, BlobKind::Evidence, b"evidence", 2)?;
                w.put_blob(&thumb, BlobKind::Thumbnail, b"thumb", 3)
            })
            .unwrap();
        let pending: Vec<_> = store
            .pending_uploads()
            .unwrap()
            .into_iter()
            .map(|b| b.hash)
            .collect();
        assert_eq!(pending, vec![thumb, evidence]);
        store.write(|w| w.mark_uploaded(&thumb)).unwrap();
        assert_eq!(store.pending_uploads().unwrap().len(), 1);
        assert!(store.blob_info(&thumb).unwrap().unwrap().uploaded);
        assert_eq!(store.blob(&evidence).unwrap().unwrap(), b"evidence");
    }

    #[test]
    fn settings_templates_and_sync_states_round_trip() {
        let mut store = Store::open_in_memory().unwrap();
        let id = doc_id();
        store
            .write(|w| {
                w.set_setting("user", "a")?;
                w.set_setting("user", "b")?;
                w.put_template("t", 1, "{}")?;
                w.set_sync_state("relay", &id, b"state")
            })
            .unwrap();
        assert_eq!(store.setting("user").unwrap().as_deref(), Some("b"));
        assert_eq!(store.templates().unwrap(), vec!["{}".to_string()]);
        assert_eq!(store.sync_state("relay", &id).unwrap().unwrap(), b"state");
        assert!(store.sync_state("other", &id).unwrap().is_none());
        store.integrity_check().unwrap();
    }

    #[test]
    fn store_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Store>();
    }
}

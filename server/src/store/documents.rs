//! Assessment documents (snapshot + chunks, as in the core) and the photo blobs they
//! reference. The sync endpoint fills these; the blob routes read the references.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Savepoint, TransactionBehavior, params};
use serde::Serialize;
use wardcheck_core::blob::BlobHash;
use wardcheck_core::doc::DocumentId;

use super::evidence::add_checks;
use super::{
    EvidenceCheck, RelayStore, StoreError, StoreResult, is_unique_violation, lock, now_ms,
};
use crate::auth::Principal;

/// A document as stored: load the snapshot, then apply every chunk in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// The ward it belongs to.
    pub unit_id: String,
    /// The last compacted state (`Automerge::save`).
    pub snapshot: Vec<u8>,
    /// Its heads as last written by [`RelayStore::insert_document`] or
    /// [`RelayStore::append_chunk`] (opaque to the store).
    pub heads: Vec<u8>,
    /// Change chunks written after the snapshot, oldest first.
    pub chunks: Vec<Vec<u8>>,
    /// The `seq` of the last chunk, to pass to [`RelayStore::replace_snapshot`]; `None`
    /// when there are no chunks.
    pub last_seq: Option<i64>,
}

/// One line of a document listing (as `GET /v1/documents` sends it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DocumentSummary {
    /// The document id (bs58check).
    #[schema(value_type = String)]
    pub id: DocumentId,
    /// Its ward.
    pub unit_id: String,
    /// Last write, ms since the Unix epoch.
    pub updated_at: i64,
    /// Its bytes as stored (the compacted state and the changes written since): about
    /// what a device that lacks it fetches.
    pub bytes: u64,
    /// The SHA-256 of its snapshot (64 hex digits), the name a device downloads it by
    /// (`null` until the relay has named it: see `RelayStore::open`).
    #[schema(value_type = Option<String>)]
    pub snapshot_sha256: Option<BlobHash>,
    /// The snapshot's bytes.
    pub snapshot_bytes: u64,
}

/// What a device that lacks a document needs to know of its stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The ward the document belongs to.
    pub unit_id: String,
    /// The SHA-256 of the snapshot.
    pub hash: BlobHash,
    /// Its size.
    pub bytes: u64,
}

impl RelayStore {
    /// The stored document, or `None` if there is none with this id.
    pub fn document(&self, id: &DocumentId) -> StoreResult<Option<StoredDocument>> {
        let id = id.to_string();
        self.read(|tx| {
            let Some((unit_id, snapshot, heads)) = tx
                .query_row(
                    "SELECT unit_id, snapshot, heads FROM documents WHERE id = ?1",
                    [&id],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?
            else {
                return Ok(None);
            };
            let mut stmt = tx.prepare_cached(
                "SELECT seq, data FROM document_chunks WHERE document_id = ?1 ORDER BY seq",
            )?;
            let mut chunks = Vec::new();
            let mut last_seq = None;
            let mut rows = stmt.query([&id])?;
            while let Some(row) = rows.next()? {
                last_seq = Some(row.get(0)?);
                chunks.push(row.get(1)?);
            }
            Ok(Some(StoredDocument {
                unit_id,
                snapshot,
                heads,
                chunks,
                last_seq,
            }))
        })
    }

    /// The ward a document belongs to, or `None` if there is no such document. Cheaper
    /// than [`RelayStore::document`] for access checks.
    pub fn document_unit(&self, id: &DocumentId) -> StoreResult<Option<String>> {
        self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT unit_id FROM documents WHERE id = ?1",
                    [id.to_string()],
                    |row| row.get(0),
                )
                .optional()?)
        })
    }

    /// The document's ward and the name and size of its snapshot (not its bytes), or
    /// `None` if there is no such document.
    pub fn snapshot_info(&self, id: &DocumentId) -> StoreResult<Option<SnapshotInfo>> {
        self.read(|tx| {
            let row = tx
                .query_row(
                    "SELECT unit_id, snapshot_hash, length(snapshot) FROM documents
                     WHERE id = ?1 AND snapshot_hash IS NOT NULL",
                    [id.to_string()],
                    |row| Ok((row.get(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?)),
                )
                .optional()?;
            row.map(|(unit_id, hash, bytes)| {
                Ok(SnapshotInfo {
                    unit_id,
                    hash: parse_snapshot_hash(&hash)?,
                    bytes: bytes.max(0) as u64,
                })
            })
            .transpose()
        })
    }

    /// `length` bytes of the document's snapshot from byte `start` on, while it is the
    /// one named `hash`; `None` once another replaced it.
    pub fn snapshot_range(
        &self,
        id: &DocumentId,
        hash: &BlobHash,
        start: u64,
        length: u64,
    ) -> StoreResult<Option<Vec<u8>>> {
        self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT substr(snapshot, ?3, ?4) FROM documents
                     WHERE id = ?1 AND snapshot_hash = ?2",
                    params![
                        id.to_string(),
                        hash.to_string(),
                        i64::try_from(start + 1).unwrap_or(i64::MAX),
                        i64::try_from(length).unwrap_or(i64::MAX)
                    ],
                    |row| row.get(0),
                )
                .optional()?)
        })
    }

    /// Stores a new document of ward `unit_id` with its first snapshot, heads and the
    /// blobs it references, in one transaction.
    ///
    /// Errors: [`StoreError::Duplicate`] if the id exists, [`StoreError::UnknownUnit`],
    /// [`StoreError::Invalid`] if the unit is not a ward.
    pub fn insert_document(
        &self,
        id: &DocumentId,
        unit_id: &str,
        snapshot: &[u8],
        heads: &[u8],
        blob_refs: &[BlobHash],
        checks: &[EvidenceCheck],
    ) -> StoreResult<()> {
        let id = id.to_string();
        self.write(|tx| {
            let kind: Option<String> = tx
                .query_row("SELECT kind FROM units WHERE id = ?1", [unit_id], |row| {
                    row.get(0)
                })
                .optional()?;
            match kind.as_deref() {
                None => return Err(StoreError::UnknownUnit),
                Some("ward") => {}
                Some(_) => return Err(StoreError::Invalid("a document belongs to a ward")),
            }
            tx.execute(
                "INSERT INTO documents (id, unit_id, snapshot, snapshot_hash, heads, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    unit_id,
                    snapshot,
                    BlobHash::of(snapshot).to_string(),
                    heads,
                    now_ms()
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Duplicate("document")
                } else {
                    e.into()
                }
            })?;
            add_refs(tx, &id, blob_refs)?;
            add_checks(tx, &id, checks)
        })
    }

    /// Appends a change chunk, sets the document's heads, adds the blobs the chunk
    /// references and the verdicts of its new evidence records, atomically and durably.
    /// Returns the chunk's `seq`.
    ///
    /// **Group commit**: appends that arrive while another write holds the writer wait
    /// in a queue; whoever gets the writer next commits the whole queue in one
    /// transaction (each append in its own savepoint, so one failing does not undo the
    /// others), one fsync for all. Each call returns once the transaction holding its
    /// append has committed, so what it returns `Ok` for is on disk.
    ///
    /// Errors: [`StoreError::UnknownDocument`]; [`StoreError::Commit`] if the shared
    /// transaction failed.
    pub fn append_chunk(
        &self,
        id: &DocumentId,
        chunk: &[u8],
        heads: &[u8],
        blob_refs: &[BlobHash],
        checks: &[EvidenceCheck],
    ) -> StoreResult<i64> {
        let done = Arc::new(Mutex::new(None));
        lock(&self.appends).push(QueuedAppend {
            id: id.to_string(),
            chunk: chunk.to_vec(),
            heads: heads.to_vec(),
            blob_refs: blob_refs.to_vec(),
            checks: checks.to_vec(),
            done: done.clone(),
        });
        let mut conn = lock(&self.writer);
        // The writer before us may have committed ours with its batch.
        if let Some(result) = lock(&done).take() {
            return result;
        }
        // Ours is still queued (whoever takes the queue fills every result before
        // releasing the writer): commit the queue.
        let batch = std::mem::take(&mut *lock(&self.appends));
        let results = commit_appends(&mut conn, &batch);
        for (append, result) in batch.iter().zip(results) {
            *lock(&append.done) = Some(result);
        }
        drop(conn);
        lock(&done)
            .take()
            .unwrap_or_else(|| Err(StoreError::Commit("the append was lost".into())))
    }

    /// Compaction: replaces the snapshot named `replacing` (the one it was built on) with
    /// `snapshot` and deletes the chunks up to and including `through_seq` (the
    /// [`StoredDocument::last_seq`] it was built from), in one transaction. Chunks
    /// appended meanwhile are kept, so a concurrent [`RelayStore::append_chunk`] is never
    /// lost; and if another compaction replaced `replacing` meanwhile, nothing changes
    /// (`Ok(None)`): it may hold changes this one lacks. Heads and `updated_at` do not
    /// change (the document's content does not). Returns how many chunks went.
    ///
    /// Errors: [`StoreError::UnknownDocument`].
    pub fn replace_snapshot(
        &self,
        id: &DocumentId,
        replacing: &BlobHash,
        snapshot: &[u8],
        through_seq: Option<i64>,
    ) -> StoreResult<Option<usize>> {
        let id = id.to_string();
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE documents SET snapshot = ?2, snapshot_hash = ?3
                 WHERE id = ?1 AND snapshot_hash = ?4",
                params![
                    id,
                    snapshot,
                    BlobHash::of(snapshot).to_string(),
                    replacing.to_string()
                ],
            )?;
            if changed == 0 {
                let exists = tx
                    .query_row("SELECT 1 FROM documents WHERE id = ?1", [&id], |_| Ok(()))
                    .optional()?;
                return match exists {
                    Some(()) => Ok(None),
                    None => Err(StoreError::UnknownDocument),
                };
            }
            let Some(through) = through_seq else {
                return Ok(Some(0));
            };
            Ok(Some(tx.execute(
                "DELETE FROM document_chunks WHERE document_id = ?1 AND seq <= ?2",
                params![id, through],
            )?))
        })
    }

    /// The documents of these wards, by ward then id.
    pub fn documents_for_wards(&self, wards: &[String]) -> StoreResult<Vec<DocumentSummary>> {
        let wards = serde_json::to_string(wards).map_err(|_| StoreError::Malformed("wards"))?;
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT id, unit_id, updated_at, length(snapshot)
                        + (SELECT COALESCE(SUM(length(data)), 0) FROM document_chunks
                           WHERE document_id = documents.id),
                        snapshot_hash, length(snapshot)
                 FROM documents
                 WHERE unit_id IN (SELECT value FROM json_each(?1))
                 ORDER BY unit_id, id",
            )?;
            let rows = stmt.query_map([&wards], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, i64>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, unit_id, updated_at, bytes, hash, snapshot_bytes) = row?;
                out.push(DocumentSummary {
                    id: id
                        .parse()
                        .map_err(|_| StoreError::Malformed("document id"))?,
                    unit_id,
                    updated_at,
                    bytes: bytes.max(0) as u64,
                    snapshot_sha256: hash.as_deref().map(parse_snapshot_hash).transpose()?,
                    snapshot_bytes: snapshot_bytes.max(0) as u64,
                });
            }
            Ok(out)
        })
    }

    /// How many documents ward `unit_id` has.
    pub fn ward_document_count(&self, unit_id: &str) -> StoreResult<usize> {
        self.read(|tx| {
            let count: i64 = tx.query_row(
                "SELECT count(*) FROM documents WHERE unit_id = ?1",
                [unit_id],
                |row| row.get(0),
            )?;
            Ok(count.max(0) as usize)
        })
    }

    /// Whether a document in `principal`'s scope references `hash`: the rule for
    /// reading and uploading a blob.
    pub fn blob_referenced_in_scope(
        &self,
        principal: &Principal,
        hash: &BlobHash,
    ) -> StoreResult<bool> {
        Ok(!self
            .blobs_referenced_in_scope(principal, std::slice::from_ref(hash))?
            .is_empty())
    }

    /// Those of `hashes` that a document in `principal`'s scope references.
    pub fn blobs_referenced_in_scope(
        &self,
        principal: &Principal,
        hashes: &[BlobHash],
    ) -> StoreResult<HashSet<BlobHash>> {
        let wards = self.wards_in_scope(principal)?;
        let to_json =
            |v: Vec<String>| serde_json::to_string(&v).map_err(|_| StoreError::Malformed("json"));
        let wards = to_json(wards)?;
        let hashes = to_json(hashes.iter().map(BlobHash::to_hex).collect())?;
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT DISTINCT r.hash FROM blob_refs r JOIN documents d ON d.id = r.document_id
                 WHERE r.hash IN (SELECT value FROM json_each(?1))
                   AND d.unit_id IN (SELECT value FROM json_each(?2))",
            )?;
            let rows = stmt.query_map([&hashes, &wards], |row| row.get::<_, String>(0))?;
            let mut out = HashSet::new();
            for row in rows {
                out.insert(
                    row?.parse()
                        .map_err(|_| StoreError::Malformed("blob hash"))?,
                );
            }
            Ok(out)
        })
    }
}

/// An append waiting for the writer, and where its result goes.
pub(super) struct QueuedAppend {
    id: String,
    chunk: Vec<u8>,
    heads: Vec<u8>,
    blob_refs: Vec<BlobHash>,
    checks: Vec<EvidenceCheck>,
    done: Arc<Mutex<Option<StoreResult<i64>>>>,
}

fn parse_snapshot_hash(hash: &str) -> StoreResult<BlobHash> {
    hash.parse()
        .map_err(|_| StoreError::Malformed("snapshot hash"))
}

/// Names the contents stored before their names were (schemas 6 and 7): the SHA-256 of each
/// row's `content` column into its `name` column where that is NULL, reading one row at
/// a time, in one transaction. (`table`, `content` and `name` are this crate's constants.)
pub(super) fn name_contents(
    conn: &mut Connection,
    table: &str,
    content: &str,
    name: &str,
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let rows: Vec<i64> = tx
        .prepare(&format!("SELECT rowid FROM {table} WHERE {name} IS NULL"))?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for row in rows {
        // Text and blobs alike: their bytes.
        let bytes: Vec<u8> = tx.query_row(
            &format!("SELECT CAST({content} AS BLOB) FROM {table} WHERE rowid = ?1"),
            [row],
            |row| row.get(0),
        )?;
        tx.execute(
            &format!("UPDATE {table} SET {name} = ?2 WHERE rowid = ?1"),
            params![row, BlobHash::of(&bytes).to_string()],
        )?;
    }
    tx.commit()
}

/// Commits `batch` in one transaction; one result per append, in order.
fn commit_appends(conn: &mut Connection, batch: &[QueuedAppend]) -> Vec<StoreResult<i64>> {
    let failed = |e: &rusqlite::Error| {
        batch
            .iter()
            .map(|_| Err(StoreError::Commit(e.to_string())))
            .collect()
    };
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return failed(&e),
    };
    let mut results = Vec::with_capacity(batch.len());
    for append in batch {
        let result = tx.savepoint().map_err(StoreError::from).and_then(|mut sp| {
            let seq = append_one(&mut sp, append)?;
            sp.commit()?;
            Ok(seq)
        });
        results.push(result);
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => failed(&e),
    }
}

fn append_one(tx: &mut Savepoint<'_>, append: &QueuedAppend) -> StoreResult<i64> {
    let changed = tx.execute(
        "UPDATE documents SET heads = ?2, updated_at = ?3 WHERE id = ?1",
        params![append.id, append.heads, now_ms()],
    )?;
    if changed == 0 {
        return Err(StoreError::UnknownDocument);
    }
    tx.execute(
        "INSERT INTO document_chunks (document_id, data) VALUES (?1, ?2)",
        params![append.id, append.chunk],
    )?;
    let seq = tx.last_insert_rowid();
    add_refs(tx, &append.id, &append.blob_refs)?;
    add_checks(tx, &append.id, &append.checks)?;
    Ok(seq)
}

fn add_refs(tx: &Connection, document_id: &str, hashes: &[BlobHash]) -> StoreResult<()> {
    let mut stmt =
        tx.prepare_cached("INSERT OR IGNORE INTO blob_refs (hash, document_id) VALUES (?1, ?2)")?;
    for hash in hashes {
        stmt.execute(params![hash.to_hex(), document_id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::store::accounts::tests::seed;
    use crate::store::tests::temp_store;

    fn doc(name: &str) -> DocumentId {
        DocumentId::for_assessment(name, "2025")
    }

    fn principal(role: Role, unit: &str) -> Principal {
        Principal {
            user_id: "u".into(),
            role,
            unit_id: unit.into(),
            device_id: None,
        }
    }

    #[test]
    fn snapshot_and_chunks_round_trip() {
        let (_dir, store) = temp_store();
        seed(&store);
        let id = doc("ngo-may");
        assert_eq!(store.document(&id).unwrap(), None);
        store
            .insert_document(&id, "ngo-may", b"snap", b"h0", &[], &[])
            .unwrap();
        assert!(matches!(
            store.insert_document(&id, "ngo-may", b"snap", b"h0", &[], &[]),
            Err(StoreError::Duplicate("document"))
        ));
        let first = store.append_chunk(&id, b"c1", b"h1", &[], &[]).unwrap();
        let second = store.append_chunk(&id, b"c2", b"h2", &[], &[]).unwrap();
        assert!(second > first);
        let stored = store.document(&id).unwrap().unwrap();
        assert_eq!(stored.unit_id, "ngo-may");
        assert_eq!(stored.snapshot, b"snap");
        assert_eq!(stored.heads, b"h2");
        assert_eq!(stored.chunks, [b"c1".to_vec(), b"c2".to_vec()]);
        assert_eq!(stored.last_seq, Some(second));
        assert_eq!(
            store.document_unit(&id).unwrap().as_deref(),
            Some("ngo-may")
        );
        assert!(matches!(
            store.append_chunk(&doc("other"), b"c", b"h", &[], &[]),
            Err(StoreError::UnknownDocument)
        ));
    }

    #[test]
    fn concurrent_appends_are_all_stored_and_answered_each() {
        let (_dir, store) = temp_store();
        seed(&store);
        let (a, b) = (doc("ngo-may"), doc("tran-hung-dao"));
        for (id, ward) in [(a, "ngo-may"), (b, "tran-hung-dao")] {
            store
                .insert_document(&id, ward, b"s", b"h", &[], &[])
                .unwrap();
        }
        // Many writers at once (some share a commit); one append names no document and
        // fails alone.
        let results: Vec<(usize, StoreResult<i64>)> = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..24)
                .map(|n| {
                    let store = &store;
                    let id = match n % 3 {
                        0 => a,
                        1 => b,
                        _ if n == 2 => doc("nowhere"),
                        _ => a,
                    };
                    scope.spawn(move || {
                        (
                            n,
                            store.append_chunk(&id, format!("c{n}").as_bytes(), b"h", &[], &[]),
                        )
                    })
                })
                .collect();
            writers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let mut seqs = HashSet::new();
        for (n, result) in &results {
            if *n == 2 {
                assert!(
                    matches!(result, Err(StoreError::UnknownDocument)),
                    "{result:?}"
                );
            } else {
                assert!(
                    seqs.insert(*result.as_ref().unwrap()),
                    "a seq answered twice"
                );
            }
        }
        let stored: Vec<Vec<u8>> = [a, b]
            .iter()
            .flat_map(|id| store.document(id).unwrap().unwrap().chunks)
            .collect();
        assert_eq!(stored.len(), 23);
        for (n, _) in results.iter().filter(|(n, _)| *n != 2) {
            assert!(stored.contains(&format!("c{n}").into_bytes()), "c{n} lost");
        }
    }

    #[test]
    fn contents_stored_before_their_names_are_named_when_the_store_opens() {
        let (dir, store) = temp_store();
        seed(&store);
        let id = doc("ngo-may");
        store
            .insert_document(&id, "ngo-may", b"snap", b"h0", &[], &[])
            .unwrap();
        let set = wardcheck_core::model::sample_templates().remove(0);
        store.publish_criteria_set(&set, "admin", 1).unwrap();
        // As a schema 5 database left them.
        store
            .write(|tx| {
                tx.execute("UPDATE documents SET snapshot_hash = NULL", [])?;
                Ok(tx.execute("UPDATE criteria_sets SET sha256 = NULL", [])?)
            })
            .unwrap();
        assert_eq!(store.snapshot_info(&id).unwrap(), None);
        assert_eq!(store.listed_criteria_sets().unwrap(), []);
        let listed = store.documents_for_wards(&["ngo-may".into()]).unwrap();
        assert_eq!(listed[0].snapshot_sha256, None);
        drop(store);
        let store = RelayStore::open(&dir.path().join("relay.sqlite3")).unwrap();
        let info = store.snapshot_info(&id).unwrap().unwrap();
        assert_eq!((info.hash, info.bytes), (BlobHash::of(b"snap"), 4));
        let part = store.snapshot_range(&id, &info.hash, 1, 2).unwrap();
        assert_eq!(part.as_deref(), Some(&b"na"[..]));
        let other = BlobHash::of(b"other");
        assert_eq!(store.snapshot_range(&id, &other, 0, 4).unwrap(), None);
        let sets = store.listed_criteria_sets().unwrap();
        assert_eq!(sets[0].hash, BlobHash::of(set.to_json().as_bytes()));
    }

    #[test]
    fn compaction_keeps_chunks_written_meanwhile() {
        let (_dir, store) = temp_store();
        seed(&store);
        let id = doc("ngo-may");
        store
            .insert_document(&id, "ngo-may", b"s0", b"h0", &[], &[])
            .unwrap();
        store.append_chunk(&id, b"c1", b"h1", &[], &[]).unwrap();
        let seen = store.document(&id).unwrap().unwrap().last_seq;
        // A chunk arrives between reading and compacting.
        store.append_chunk(&id, b"c2", b"h2", &[], &[]).unwrap();
        let s0 = BlobHash::of(b"s0");
        assert_eq!(
            store.replace_snapshot(&id, &s0, b"s1", seen).unwrap(),
            Some(1)
        );
        let stored = store.document(&id).unwrap().unwrap();
        assert_eq!(stored.snapshot, b"s1");
        assert_eq!(stored.chunks, [b"c2".to_vec()]);
        assert_eq!(stored.heads, b"h2");
        // A slower compaction built on the snapshot replaced meanwhile changes nothing:
        // it lacks what the other one holds.
        let last = stored.last_seq;
        assert_eq!(
            store.replace_snapshot(&id, &s0, b"stale", last).unwrap(),
            None
        );
        let stored = store.document(&id).unwrap().unwrap();
        assert_eq!((stored.snapshot, stored.chunks.len()), (b"s1".to_vec(), 1));
        assert!(matches!(
            store.replace_snapshot(&doc("x"), &s0, b"s", None),
            Err(StoreError::UnknownDocument)
        ));
    }

    #[test]
    fn documents_belong_to_known_wards() {
        let (_dir, store) = temp_store();
        seed(&store);
        assert!(matches!(
            store.insert_document(&doc("a"), "nowhere", b"s", b"h", &[], &[]),
            Err(StoreError::UnknownUnit)
        ));
        assert!(matches!(
            store.insert_document(&doc("a"), "kt-city", b"s", b"h", &[], &[]),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn listings_and_blob_refs_follow_scope() {
        let (_dir, store) = temp_store();
        seed(&store);
        let (a, b) = (BlobHash::of(b"a"), BlobHash::of(b"b"));
        let shared = BlobHash::of(b"shared");
        store
            .insert_document(&doc("ngo-may"), "ngo-may", b"s", b"h", &[a, shared], &[])
            .unwrap();
        store
            .insert_document(&doc("thd"), "tran-hung-dao", b"s", b"h", &[], &[])
            .unwrap();
        store
            .append_chunk(&doc("thd"), b"c", b"h", &[b, shared, b], &[])
            .unwrap();
        let listed = store
            .documents_for_wards(&["tran-hung-dao".to_string()])
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, doc("thd"));
        assert_eq!(store.documents_for_wards(&[]).unwrap(), []);

        let officer_a = principal(Role::Officer, "ngo-may");
        let province = principal(Role::Supervisor, "kt");
        let other_province = principal(Role::Supervisor, "th");
        assert!(store.blob_referenced_in_scope(&officer_a, &a).unwrap());
        assert!(store.blob_referenced_in_scope(&officer_a, &shared).unwrap());
        assert!(!store.blob_referenced_in_scope(&officer_a, &b).unwrap());
        assert!(store.blob_referenced_in_scope(&province, &b).unwrap());
        assert!(!store.blob_referenced_in_scope(&other_province, &a).unwrap());
        let unknown = BlobHash::of(b"unknown");
        assert_eq!(
            store
                .blobs_referenced_in_scope(&province, &[a, b, unknown])
                .unwrap(),
            HashSet::from([a, b])
        );
    }
}

//! One shared in-memory copy per document, bounded: [`DocCache`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use automerge::Automerge;
use wardcheck_core::blob::BlobHash;
use wardcheck_core::doc::{Assessment, DocumentId, untrusted};

use super::DocError;
use crate::store::RelayStore;

/// The default number of documents [`DocCache`] keeps in memory.
pub const DEFAULT_CACHED_DOCUMENTS: usize = 512;

/// Compact a document when it is loaded with more chunks than this (or when it is due, see
/// [`SharedDoc::compaction_due`]).
const COMPACT_AFTER_CHUNKS: usize = 64;

/// Never compact for fewer bytes of chunks than this (a compaction saves the whole
/// document).
const COMPACT_AFTER_BYTES: usize = 16 << 10;

/// One shared in-memory copy per document, loaded from the store on first use and
/// shared by every connection (and the console). Bounded: once more than its capacity
/// are loaded, the least recently used documents that no one is using at that moment are
/// dropped; the next use loads them again from the store, which holds everything they
/// had (a change is stored before the copy holding it is put in place).
pub struct DocCache {
    capacity: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    docs: HashMap<DocumentId, (Arc<SharedDoc>, u64)>,
    /// Bumped on every use: the entries' second field orders them by last use.
    clock: u64,
}

/// A document in the cache: its ward and its in-memory copy. Changes go in through
/// [`super::Intake`] only.
pub struct SharedDoc {
    unit: String,
    doc: Mutex<Assessment>,
    /// Bytes the store held of it when it was loaded and bytes of every chunk appended
    /// since (compactions do not lower it), bounded by the intake.
    stored_bytes: AtomicUsize,
    /// Its snapshot and chunks in the store, as this copy knows them.
    stored: Mutex<Stored>,
}

/// What the store holds of a document: its snapshot, and the chunks after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stored {
    /// The snapshot's name (SHA-256).
    pub snapshot: BlobHash,
    /// Its bytes.
    pub snapshot_bytes: usize,
    /// Bytes of the chunks after it.
    pub chunk_bytes: usize,
}

impl Stored {
    /// Whether the chunks outweigh the snapshot (and [`COMPACT_AFTER_BYTES`]): time to
    /// compact, so a device that lacks the document downloads a snapshot holding most of
    /// it. Compactions come further apart as the document grows.
    fn compaction_due(&self) -> bool {
        self.chunk_bytes > self.snapshot_bytes.max(COMPACT_AFTER_BYTES)
    }
}

impl SharedDoc {
    /// The ward the document belongs to.
    pub fn unit(&self) -> &str {
        &self.unit
    }

    /// Reads the document (its lock is held meanwhile: keep `f` short).
    pub fn read<T>(&self, f: impl FnOnce(&Assessment) -> T) -> T {
        f(&self.lock())
    }

    /// The document, locked: whoever holds it may replace it with a copy whose changes
    /// are stored, and nobody sees anything in between.
    pub(super) fn lock(&self) -> MutexGuard<'_, Assessment> {
        lock(&self.doc)
    }

    /// Bytes the store held of the document when it was loaded, and those appended since:
    /// what the intake bounds.
    pub(super) fn stored_bytes(&self) -> usize {
        self.stored_bytes.load(Ordering::Relaxed)
    }

    /// Counts a chunk appended to the store (under the document's lock).
    pub(super) fn stored_more(&self, bytes: usize) {
        self.stored_bytes.fetch_add(bytes, Ordering::Relaxed);
        lock(&self.stored).chunk_bytes += bytes;
    }

    /// Compacts the document if it is due (see [`Stored::compaction_due`]): `doc`, its
    /// current state (the caller holds its lock), becomes the snapshot in place of the
    /// one this copy knows, through chunk `through_seq`. A failed compaction changes
    /// nothing (the changes are stored either way): it is logged, and tried again later.
    pub(super) fn compact_if_due(
        &self,
        store: &RelayStore,
        id: &DocumentId,
        doc: &Assessment,
        through_seq: i64,
    ) {
        let known = *lock(&self.stored);
        if !known.compaction_due() {
            return;
        }
        let snapshot = doc.save();
        match store.replace_snapshot(id, &known.snapshot, &snapshot, Some(through_seq)) {
            Ok(Some(_)) => *lock(&self.stored) = Stored::compacted(&snapshot),
            Ok(None) => tracing::warn!(document = %id, "compaction raced another: skipped"),
            Err(e) => tracing::warn!(document = %id, "compaction failed: {e}"),
        }
    }
}

impl Stored {
    /// A document compacted into `snapshot`.
    pub(super) fn compacted(snapshot: &[u8]) -> Self {
        Self {
            snapshot: BlobHash::of(snapshot),
            snapshot_bytes: snapshot.len(),
            chunk_bytes: 0,
        }
    }
}

impl Default for DocCache {
    fn default() -> Self {
        Self::new(DEFAULT_CACHED_DOCUMENTS)
    }
}

impl DocCache {
    /// A cache that keeps about `capacity` documents in memory (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(CacheInner::default()),
        }
    }

    /// How many documents are in memory now.
    pub fn len(&self) -> usize {
        lock(&self.inner).docs.len()
    }

    /// Whether no document is in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The document if it is in memory now.
    pub fn get(&self, id: &DocumentId) -> Option<Arc<SharedDoc>> {
        let mut inner = lock(&self.inner);
        inner.clock += 1;
        let now = inner.clock;
        let (doc, used) = inner.docs.get_mut(id)?;
        *used = now;
        Some(doc.clone())
    }

    /// The document, from memory or loaded from `store`; `None` if there is none. No
    /// scope check: callers check [`SharedDoc::unit`].
    pub fn open(
        &self,
        store: &RelayStore,
        id: &DocumentId,
    ) -> Result<Option<Arc<SharedDoc>>, DocError> {
        if let Some(doc) = self.get(id) {
            return Ok(Some(doc));
        }
        let Some(stored) = store.document(id)? else {
            return Ok(None);
        };
        let assessment = untrusted(|| {
            let mut doc = Automerge::load(&stored.snapshot)?;
            for chunk in &stored.chunks {
                doc.load_incremental(chunk)?;
            }
            Assessment::from_automerge(doc)
        })
        .map_err(|e| DocError::Corrupt(e.to_string()))?;
        let mut known = Stored {
            snapshot: BlobHash::of(&stored.snapshot),
            snapshot_bytes: stored.snapshot.len(),
            chunk_bytes: stored.chunks.iter().map(Vec::len).sum(),
        };
        let stored_bytes = known.snapshot_bytes + known.chunk_bytes;
        if stored.chunks.len() > COMPACT_AFTER_CHUNKS || known.compaction_due() {
            // Only if no one compacted it since it was read: theirs may hold more.
            let snapshot = assessment.save();
            let replacing = &known.snapshot;
            if (store.replace_snapshot(id, replacing, &snapshot, stored.last_seq)?).is_some() {
                known = Stored::compacted(&snapshot);
            }
        }
        let unit = stored.unit_id;
        Ok(Some(self.insert(
            *id,
            unit,
            assessment,
            (stored_bytes, known),
        )))
    }

    /// The document if it exists and belongs to one of `wards`; `Ok(None)` if there is
    /// none; [`DocError::OutOfScope`] if it belongs to another ward. A document not in
    /// memory is looked up before it is loaded, so no one makes the relay load another
    /// ward's documents.
    pub fn open_in(
        &self,
        store: &RelayStore,
        id: &DocumentId,
        wards: &HashSet<String>,
    ) -> Result<Option<Arc<SharedDoc>>, DocError> {
        let shared = match self.get(id) {
            Some(shared) => shared,
            None => match store.document_unit(id)? {
                None => return Ok(None),
                Some(unit) if !wards.contains(&unit) => return Err(DocError::OutOfScope),
                Some(_) => match self.open(store, id)? {
                    Some(shared) => shared,
                    None => return Ok(None),
                },
            },
        };
        if wards.contains(shared.unit()) {
            Ok(Some(shared))
        } else {
            Err(DocError::OutOfScope)
        }
    }

    /// Adds a loaded (or newly stored) document, with the bytes the store held of it and
    /// what it holds now (if another thread loaded it meanwhile, that copy wins), then drops the least
    /// recently used unused documents beyond the capacity.
    pub(super) fn insert(
        &self,
        id: DocumentId,
        unit: String,
        doc: Assessment,
        (stored_bytes, stored): (usize, Stored),
    ) -> Arc<SharedDoc> {
        let mut inner = lock(&self.inner);
        inner.clock += 1;
        let now = inner.clock;
        let shared = inner
            .docs
            .entry(id)
            .or_insert_with(|| {
                let shared = SharedDoc {
                    unit,
                    doc: Mutex::new(doc),
                    stored_bytes: AtomicUsize::new(stored_bytes),
                    stored: Mutex::new(stored),
                };
                (Arc::new(shared), now)
            })
            .0
            .clone();
        if inner.docs.len() > self.capacity {
            // In use: held by a connection (or by the caller, `shared`).
            let mut idle: Vec<(u64, DocumentId)> = inner
                .docs
                .iter()
                .filter(|(_, (doc, _))| Arc::strong_count(doc) == 1)
                .map(|(id, (_, used))| (*used, *id))
                .collect();
            idle.sort_unstable();
            let excess = inner.docs.len() - self.capacity;
            for (_, id) in idle.into_iter().take(excess) {
                inner.docs.remove(&id);
            }
        }
        shared
    }

    /// Drops the in-memory copy (the next use loads what is stored).
    #[cfg(test)]
    pub(super) fn forget(&self, id: &DocumentId) {
        lock(&self.inner).docs.remove(id);
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wardcheck_core::model::{Author, Role};
    use wardcheck_core::policy::Writer;

    use super::*;
    use crate::documents::Intake;
    use crate::documents::testing::stored;
    use crate::store::accounts::tests::seed;
    use crate::store::tests::temp_store;

    fn note(doc: &SharedDoc) -> String {
        doc.read(|d| d.view().unwrap().criteria[0].note.clone())
    }

    const SUPERVISOR: Writer<'static> = Writer {
        user: "sup-city",
        role: Role::Supervisor,
    };

    #[test]
    fn an_evicted_document_reloads_from_the_store_with_every_edit() {
        let (_dir, store) = temp_store();
        seed(&store);
        let (a, b) = (stored(&store, "ngo-may"), stored(&store, "tran-hung-dao"));
        let store = Arc::new(store);
        let cache = Arc::new(DocCache::new(1));
        let intake = Intake::new(store.clone(), cache.clone(), Default::default());
        let by = Author::new("sup-city", "console");
        assert!(cache.get(&a).is_none());
        let shared = cache.open(&store, &a).unwrap().unwrap();
        intake
            .change(&a, &shared, &SUPERVISOR, "console", |doc| {
                doc.set_note("c01", "kept", &by, 1)
            })
            .unwrap();
        let heads = shared.read(Assessment::heads);
        drop(shared);
        // Another document loads: `a`, which no one uses, is dropped.
        cache.open(&store, &b).unwrap().unwrap();
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&a).is_none());
        let reloaded = cache.open(&store, &a).unwrap().unwrap();
        assert_eq!(reloaded.read(Assessment::heads), heads);
        assert_eq!(note(&reloaded), "kept");
        assert!(cache.get(&b).is_none());
    }

    #[test]
    fn a_document_in_use_stays_and_edits_reach_its_users() {
        let (_dir, store) = temp_store();
        seed(&store);
        let ids = [
            stored(&store, "ngo-may"),
            stored(&store, "tran-hung-dao"),
            stored(&store, "an-hung"),
        ];
        let store = Arc::new(store);
        let cache = Arc::new(DocCache::new(1));
        let held = cache.open(&store, &ids[0]).unwrap().unwrap();
        cache.open(&store, &ids[1]).unwrap().unwrap();
        cache.open(&store, &ids[2]).unwrap().unwrap();
        // The held one stays (one copy for everyone); the idle ones go.
        assert_eq!(cache.len(), 2);
        assert!(Arc::ptr_eq(&cache.get(&ids[0]).unwrap(), &held));
        let intake = Intake::new(store.clone(), cache.clone(), Default::default());
        let by = Author::new("sup-city", "console");
        let shared = cache.open(&store, &ids[0]).unwrap().unwrap();
        intake
            .change(&ids[0], &shared, &SUPERVISOR, "console", |doc| {
                doc.set_note("c01", "seen", &by, 1)
            })
            .unwrap();
        assert_eq!(note(&held), "seen");
    }
}

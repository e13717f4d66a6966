//! New documents being pushed, not whole assessments yet: [`PendingPushes`].
//!
//! A phone on a link that keeps dropping pushes a new assessment in parts over several
//! connections; what arrived is kept under the pushing device's id until the document
//! reads as a whole assessment, then handed to the intake. Every push is bounded: bytes
//! per device and in all, a number of pushes, an age.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use automerge::sync::{Message, State};
use automerge::{Automerge, ChangeHash};
use wardcheck_core::doc::{Assessment, DocumentId, receive_untrusted};
use wardcheck_core::sync::{InflationError, generate_bounded};

use super::cache::lock;

/// Bytes of changes one device may have in unfinished pushes (a year's assessment with
/// 10,000 changes is under 1 MB).
pub const DEVICE_BYTES: usize = 4 << 20;
/// Bytes of changes in all unfinished pushes; beyond it the oldest are dropped.
pub const TOTAL_BYTES: usize = 64 << 20;
/// Unfinished pushes kept at once; beyond it the oldest are dropped.
pub const MAX_PUSHES: usize = 256;
/// An unfinished push untouched this long is dropped.
pub const EXPIRES_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Who pushes a new document (a device id), and which.
type Key = (String, DocumentId);

struct Pending {
    doc: Automerge,
    bytes: usize,
    touched: Instant,
}

/// Why a push's message was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The peer does not have the document either, or sent something that is not
    /// Automerge: nothing is kept.
    #[error("no such document")]
    Unavailable,
    /// The device's unfinished pushes would exceed [`DEVICE_BYTES`]: this one is dropped.
    #[error("a new document pushed in parts exceeds {DEVICE_BYTES} bytes")]
    TooLarge,
    /// The message would expand past [`wardcheck_core::doc::MAX_INFLATED_BYTES`]: refused
    /// before Automerge read it, and the push is dropped.
    #[error(transparent)]
    Inflation(InflationError),
}

/// The unfinished pushes (see the module docs).
#[derive(Default)]
pub struct PendingPushes {
    pushes: Mutex<HashMap<Key, Pending>>,
}

impl PendingPushes {
    /// The heads of `pusher`'s unfinished push of `id`, if there is one.
    pub fn heads(&self, pusher: &str, id: &DocumentId) -> Option<Vec<ChangeHash>> {
        let pushes = lock(&self.pushes);
        Some(pushes.get(&(pusher.to_owned(), *id))?.doc.get_heads())
    }

    /// The next messages to the pusher about its unfinished push of `id`, if there is one.
    pub fn generate(
        &self,
        pusher: &str,
        id: &DocumentId,
        state: &mut State,
        budget: usize,
    ) -> Option<Vec<Message>> {
        let pushes = lock(&self.pushes);
        let pending = pushes.get(&(pusher.to_owned(), *id))?;
        Some(generate_bounded(&pending.doc, state, budget))
    }

    /// Takes in a message of `pusher`'s push of `id`. Returns the document once it reads
    /// as a whole assessment (the push is then over), `None` while parts are missing.
    pub fn receive(
        &self,
        pusher: &str,
        id: &DocumentId,
        state: &mut State,
        message: Message,
    ) -> Result<Option<Automerge>, PushError> {
        self.receive_at(Instant::now(), pusher, id, state, message)
    }

    fn receive_at(
        &self,
        now: Instant,
        pusher: &str,
        id: &DocumentId,
        state: &mut State,
        message: Message,
    ) -> Result<Option<Automerge>, PushError> {
        let key = (pusher.to_owned(), *id);
        let mut pushes = lock(&self.pushes);
        pushes.retain(|_, p| now.duration_since(p.touched) < EXPIRES_AFTER);
        let size: usize = message.changes.iter().map(<[u8]>::len).sum();
        let mut pending = match pushes.remove(&key) {
            Some(pending) => pending,
            // Only a peer that has the document can push it.
            None if message.heads.is_empty() => return Err(PushError::Unavailable),
            None => Pending {
                doc: Automerge::new(),
                bytes: 0,
                touched: now,
            },
        };
        let device_bytes: usize = pushes
            .iter()
            .filter(|((device, _), _)| device == pusher)
            .map(|(_, p)| p.bytes)
            .sum();
        pending.bytes += size;
        pending.touched = now;
        if device_bytes + pending.bytes > DEVICE_BYTES {
            return Err(PushError::TooLarge);
        }
        // A failure (or a panic inside Automerge) drops the push: it may be broken.
        match receive_untrusted(&mut pending.doc, state, message) {
            Ok(()) => {}
            Err(wardcheck_core::Error::Inflation(e)) => return Err(PushError::Inflation(e)),
            Err(_) => return Err(PushError::Unavailable),
        }
        if Assessment::is_complete(&pending.doc) {
            return Ok(Some(pending.doc));
        }
        pushes.insert(key, pending);
        make_room(&mut pushes);
        Ok(None)
    }
}

/// Drops the oldest pushes until the bounds hold.
fn make_room(pushes: &mut HashMap<Key, Pending>) {
    loop {
        let total: usize = pushes.values().map(|p| p.bytes).sum();
        if total <= TOTAL_BYTES && pushes.len() <= MAX_PUSHES {
            return;
        }
        let Some(oldest) = pushes
            .iter()
            .min_by_key(|(_, p)| p.touched)
            .map(|(key, _)| key.clone())
        else {
            return;
        };
        pushes.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use automerge::sync::SyncDoc;
    use automerge::transaction::Transactable;
    use wardcheck_core::model::sample_templates;
    use wardcheck_core::sync::MIN_MESSAGE_BUDGET;
    use wardcheck_core::testing::sample_unit;

    use super::*;

    /// Pushes `doc` as document `id` from `device` in messages of `budget` bytes, until
    /// it is complete, refused, or nothing is left to send.
    fn push(
        pushes: &PendingPushes,
        now: Instant,
        device: &str,
        id: &DocumentId,
        doc: &Automerge,
        budget: usize,
    ) -> Result<Option<Automerge>, PushError> {
        let mut phone = doc.clone();
        let (mut ours, mut theirs) = (State::new(), State::new());
        for _ in 0..200 {
            let messages = generate_bounded(&phone, &mut ours, budget);
            if messages.is_empty() {
                return Ok(None);
            }
            for message in messages {
                if let Some(done) = pushes.receive_at(now, device, id, &mut theirs, message)? {
                    return Ok(Some(done));
                }
            }
            for reply in pushes
                .generate(device, id, &mut theirs, budget)
                .unwrap_or_default()
            {
                phone.receive_sync_message(&mut ours, reply).unwrap();
            }
        }
        panic!("the push did not settle");
    }

    #[test]
    fn a_push_in_parts_completes_once_whole() {
        let pushes = PendingPushes::default();
        let template = Arc::new(sample_templates().remove(1));
        let doc = Assessment::create(&sample_unit(), "2025", template).unwrap();
        let id = doc.id().unwrap();
        let done = push(
            &pushes,
            Instant::now(),
            "phone",
            &id,
            doc.automerge(),
            MIN_MESSAGE_BUDGET,
        );
        let done = done.unwrap();
        assert_eq!(done.map(|d| d.get_heads()), Some(doc.heads()));
        assert!(lock(&pushes.pushes).is_empty());
    }

    /// A document that never reads as an assessment, with `bytes` of random data.
    fn junk(bytes: usize, seed: u64) -> Automerge {
        let mut state = seed;
        let data: Vec<u8> = (0..bytes)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect();
        let mut doc = automerge::AutoCommit::new();
        doc.put(automerge::ROOT, "junk", automerge::ScalarValue::Bytes(data))
            .unwrap();
        doc.document().clone()
    }

    #[test]
    fn a_device_cannot_park_more_than_its_bytes_and_pushes_expire() {
        let pushes = PendingPushes::default();
        let now = Instant::now();
        let mut refused = 0;
        for n in 0..8 {
            let id = DocumentId::for_assessment(&format!("ward-{n}"), "2025");
            match push(&pushes, now, "phone", &id, &junk(1 << 20, n), 64 << 20) {
                Ok(None) => {}
                Err(PushError::TooLarge) => refused += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(refused, 5, "4 MiB hold three 1 MiB pushes");
        let parked: usize = lock(&pushes.pushes).values().map(|p| p.bytes).sum();
        assert!(parked <= DEVICE_BYTES, "{parked}");
        // Another device still has room.
        let id = DocumentId::for_assessment("ward-x", "2025");
        let other = push(&pushes, now, "other", &id, &junk(1 << 20, 99), 64 << 20);
        assert!(matches!(other, Ok(None)));
        // Old pushes go at the next message.
        let id = DocumentId::for_assessment("ward-y", "2025");
        let later = now + EXPIRES_AFTER;
        push(&pushes, later, "other", &id, &junk(10, 1), 64 << 20).unwrap();
        assert_eq!(lock(&pushes.pushes).len(), 1);
    }
}

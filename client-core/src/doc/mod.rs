//! The Automerge mapping: assessment documents, their views, edits, conflicts and history.
//!
//! # Why hand-written Automerge access, not autosurgeon
//!
//! autosurgeon maps a document onto Rust structs, which is pleasant until two offline edits
//! put different values on one field: hydration silently picks Automerge's winner and the
//! loser disappears from sight. Supervisors must *see and settle* those conflicts, and the
//! status must be derived from an append-only log rather than read from one field. Both need
//! `get_all`, op ids and list order, so this module reads and writes the document by hand,
//! in one place, against the schema below.
//!
//! # Schema (version 1)
//!
//! ```text
//! root
//! ├─ schema: 1
//! ├─ unit: { id, name, city, province }
//! ├─ period: "2025"
//! ├─ template: { id, version, parts,       the whole template, fixed for the document:
//! │              json: [ str ] }            its JSON cut into `parts` pieces (see below)
//! ├─ criteria: { <criterion id>: {
//! │     note: Text                          collaborative text
//! │     evidence: { <photo sha256>: { thumbnail, phash, width, height, caption,
//! │                 captured_at, lat, lon, accuracy, officer, device, device_key,
//! │                 signature, added_at, to_reconfirm, removed } }
//! │     log: [ { action, round, by, device, at, reason } ]   see model::status
//! │  } }
//! ├─ indicators: { <key>: int }             this period's values
//! ├─ indicators_previous: { <key>: int }    the previous period's, for comparison
//! └─ comments: [ { criterion, by, device, at, text } ]
//! ```
//!
//! The first changes (the *genesis*) are deterministic: the first puts everything but the
//! template's JSON, and each of the next appends one piece of at most
//! [`TEMPLATE_PIECE_BYTES`] to `template.json`, so no change is bigger than a sync message
//! (a 20 KB template in one change could not cross a link that drops every 8 KB). A
//! document reads as an assessment once all `parts` pieces are there. (Documents whose
//! `json` is one string, from before, still read.)
//!
//! Evidence is never deleted, only flagged `removed`, so no concurrent edit can lose a
//! photo. Every change carries a JSON message naming its author, device, what it did and
//! the criterion, which is what [`Assessment::history`] and [`Assessment::conflicts`] read.

mod foreign;
mod id;
pub(crate) mod read;
mod review;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ChangeHash, ObjId, ObjType, ROOT, ReadDoc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::blob::BlobHash;
use crate::error::{Error, Result};
use crate::model::{Action, Author, Template, Unit};
use crate::photo::{CaptureClaim, GeoPoint, PerceptualHash, ProvenanceError, PublicKey, Signature};

pub use foreign::{
    MAX_INFLATED_BYTES, load_incremental_untrusted, load_untrusted, receive_untrusted, untrusted,
};
pub use id::{DocumentId, InvalidDocumentId};
pub use read::{AssessmentView, Comment, CriterionView, Indicator};
pub use review::{Conflict, ConflictValue, FieldValue, HistoryEntry};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u64 = 1;

/// A photo attached to a criterion, with its signed capture record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// SHA-256 of the evidence JPEG (the blob's address).
    pub photo: BlobHash,
    /// SHA-256 of the thumbnail JPEG.
    pub thumbnail: BlobHash,
    /// Perceptual hash, to find the same picture used elsewhere.
    pub perceptual_hash: PerceptualHash,
    /// Evidence width in pixels.
    pub width: u32,
    /// Evidence height in pixels.
    pub height: u32,
    /// What the photo shows.
    pub caption: String,
    /// When it was taken (ISO 8601, from EXIF or the device clock).
    pub captured_at: String,
    /// Where it was taken, if known.
    pub location: Option<GeoPoint>,
    /// The officer who took it.
    pub officer: String,
    /// The device it was taken on.
    pub device: String,
    /// That device's public key.
    pub device_key: PublicKey,
    /// The device's signature over [`Evidence::claim`].
    pub signature: Signature,
    /// When it was attached, in ms since the epoch.
    pub added_at_ms: i64,
    /// Carried over from the previous period: it must be confirmed again.
    pub to_reconfirm: bool,
}

impl Evidence {
    /// The signed part of the record.
    pub fn claim(&self) -> CaptureClaim {
        CaptureClaim {
            evidence_hash: self.photo,
            thumbnail_hash: self.thumbnail,
            captured_at: self.captured_at.clone(),
            location: self.location,
            officer: self.officer.clone(),
            device: self.device.clone(),
        }
    }

    /// Checks the signature with a trusted key of the device (for example the one the
    /// relay registered at enrolment) and, when given, that `photo_bytes` are the photo.
    pub fn verify(
        &self,
        trusted_key: &PublicKey,
        photo_bytes: Option<&[u8]>,
    ) -> Result<(), ProvenanceError> {
        match photo_bytes {
            Some(bytes) => {
                crate::photo::verify_photo(&self.claim(), &self.signature, trusted_key, bytes)
            }
            None => trusted_key.verify(&self.claim(), &self.signature),
        }
    }
}

/// What a change says about itself, stored as the change message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ChangeNote {
    pub(crate) by: String,
    pub(crate) dev: String,
    pub(crate) what: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) c: Option<String>,
}

/// One assessment: a unit's checklist for one period, as an Automerge document.
///
/// Edits are Automerge changes made by the actor set with [`Assessment::set_actor`]; each
/// call makes exactly one change (or none when it changes nothing).
#[derive(Debug, Clone)]
pub struct Assessment {
    doc: Automerge,
    template: Arc<Template>,
}

/// The largest piece of a template's JSON in one change of a new document, in bytes.
pub const TEMPLATE_PIECE_BYTES: usize = 2 * 1024;

/// `json` cut into pieces of at most [`TEMPLATE_PIECE_BYTES`] (at character boundaries).
fn template_pieces(json: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = json;
    while !rest.is_empty() {
        let mut end = rest.len().min(TEMPLATE_PIECE_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (piece, tail) = rest.split_at(end);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

impl Assessment {
    /// Creates the assessment of `unit` for `period` from `template`.
    ///
    /// The first changes are *deterministic*: the same unit, period and template give the
    /// same document id and byte-identical first changes on every device, so officers who
    /// create it offline at the same time end up with one document, not two. They are
    /// one change with the structure, then one per piece of the template's JSON (see the
    /// module docs), each smaller than a sync message.
    pub fn create(unit: &Unit, period: &str, template: Arc<Template>) -> Result<Self> {
        validate_unit(unit)?;
        validate_period(period)?;
        let id = DocumentId::for_assessment(&unit.id, period);
        let template_json = template.to_json();
        let genesis_actor = Sha256::new()
            .chain_update(b"wardcheck-genesis\0")
            .chain_update(id.as_bytes())
            .chain_update(template_json.as_bytes())
            .finalize();
        let mut doc = Automerge::new().with_actor(ActorId::from(&genesis_actor[..16]));
        let note = ChangeNote {
            by: String::new(),
            dev: String::new(),
            what: "create".into(),
            c: None,
        };
        let pieces = template_pieces(&template_json);
        let json = doc
            .transact_with(
                |_| commit_options(&note, 0),
                |tx| -> Result<ObjId> {
                    tx.put(ROOT, "schema", SCHEMA_VERSION)?;
                    let u = tx.put_object(ROOT, "unit", ObjType::Map)?;
                    tx.put(&u, "id", unit.id.as_str())?;
                    tx.put(&u, "name", unit.name.as_str())?;
                    tx.put(&u, "city", unit.city.as_str())?;
                    tx.put(&u, "province", unit.province.as_str())?;
                    tx.put(ROOT, "period", period)?;
                    let t = tx.put_object(ROOT, "template", ObjType::Map)?;
                    tx.put(&t, "id", template.id.as_str())?;
                    tx.put(&t, "version", u64::from(template.version))?;
                    tx.put(&t, "parts", pieces.len() as u64)?;
                    let json = tx.put_object(&t, "json", ObjType::List)?;
                    let criteria = tx.put_object(ROOT, "criteria", ObjType::Map)?;
                    for criterion in &template.criteria {
                        let c = tx.put_object(&criteria, criterion.id.as_str(), ObjType::Map)?;
                        tx.put_object(&c, "note", ObjType::Text)?;
                        tx.put_object(&c, "evidence", ObjType::Map)?;
                        tx.put_object(&c, "log", ObjType::List)?;
                    }
                    tx.put_object(ROOT, "indicators", ObjType::Map)?;
                    tx.put_object(ROOT, "indicators_previous", ObjType::Map)?;
                    tx.put_object(ROOT, "comments", ObjType::List)?;
                    Ok(json)
                },
            )
            .map_err(|failure| failure.error)?
            .result;
        // One change per piece: same actor, time 0, so these too are the same bytes on
        // every device. No message: they are part of the creation, not history entries.
        for (n, piece) in pieces.iter().enumerate() {
            doc.transact_with(
                |_| CommitOptions::default().with_time(0),
                |tx| -> Result<()> {
                    tx.insert(&json, n, *piece)?;
                    Ok(())
                },
            )
            .map_err(|failure| failure.error)?;
        }
        doc.set_actor(ActorId::random());
        Ok(Self { doc, template })
    }

    /// Creates `unit`'s assessment for `period` from the previous period's one, so a unit
    /// that must keep its title starts from what it had: evidence of criteria that the new
    /// template still has is linked and marked "to re-confirm", and this period's
    /// indicators start with the previous values for comparison.
    pub fn create_next(
        previous: &Assessment,
        period: &str,
        template: Arc<Template>,
        by: &Author,
        now_ms: i64,
    ) -> Result<Self> {
        let before = previous.view()?;
        if period == before.period {
            return Err(Error::InvalidInput(
                "the next period must differ from the previous one".into(),
            ));
        }
        let mut next = Self::create(&before.unit, period, template)?;
        next.edit(by, now_ms, "carry_over", None, |tx, a| {
            for old in &before.criteria {
                let Ok(evidence) = a.criterion_child(tx, &old.criterion.id, "evidence") else {
                    continue; // the new template dropped this criterion
                };
                for item in &old.evidence {
                    write_evidence(
                        tx,
                        &evidence,
                        &Evidence {
                            to_reconfirm: true,
                            ..item.clone()
                        },
                    )?;
                }
            }
            let previous_values = a.map(tx, &ROOT, "indicators_previous")?;
            for indicator in &before.indicators {
                if let Some(value) = indicator.value {
                    tx.put(&previous_values, indicator.key.as_str(), value)?;
                }
            }
            Ok(())
        })?;
        Ok(next)
    }

    /// Loads an assessment from saved bytes that came from elsewhere (a snapshot,
    /// optionally followed by chunks), bounded as [`load_untrusted`] bounds them.
    pub fn load(bytes: &[u8]) -> Result<Self> {
        let doc = load_untrusted(bytes)?;
        untrusted(|| Self::from_automerge(doc))
    }

    /// Wraps a document received from elsewhere, checking that it is an assessment.
    pub fn from_automerge(mut doc: Automerge) -> Result<Self> {
        let template = Arc::new(read::template_of(&doc)?);
        doc.set_actor(ActorId::random());
        let assessment = Self { doc, template };
        read::check_schema(&assessment.doc)?;
        Ok(assessment)
    }

    /// Sets the actor that future edits are made as. Each process that edits a document
    /// must use its own actor; a random one is chosen when a document is created or loaded.
    pub fn set_actor(&mut self, actor: ActorId) {
        self.doc.set_actor(actor);
    }

    /// The document id (derived from the unit and period).
    pub fn id(&self) -> Result<DocumentId> {
        let unit = read::string(&self.doc, &self.map(&self.doc, &ROOT, "unit")?, "id")?;
        let period = read::string(&self.doc, &ROOT, "period")?;
        Ok(DocumentId::for_assessment(&unit, &period))
    }

    /// The template the document was created from.
    pub fn template(&self) -> &Arc<Template> {
        &self.template
    }

    /// The underlying Automerge document, for syncing.
    pub fn automerge(&self) -> &Automerge {
        &self.doc
    }

    /// The current heads.
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// The current heads as bytes (sorted change hashes, concatenated): equal bytes mean
    /// an equal document, which is what the store's view cache relies on.
    pub fn heads_key(&self) -> Vec<u8> {
        let mut heads = self.doc.get_heads();
        heads.sort();
        heads.iter().flat_map(|hash| hash.0).collect()
    }

    /// The whole document, compacted.
    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }

    /// The changes made since `heads`, as an incremental chunk.
    pub fn save_after(&self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    /// Applies changes received from another replica (chunks or a whole document),
    /// bounded as [`load_incremental_untrusted`] bounds them. Returns how many changes
    /// were new.
    pub fn apply(&mut self, bytes: &[u8]) -> Result<usize> {
        let mut incoming = self.doc.fork();
        let added = load_incremental_untrusted(&mut incoming, bytes)?;
        // Refuse to take in something that no longer reads as an assessment.
        read::check_schema(&incoming)?;
        self.doc = incoming.with_actor(self.doc.get_actor().clone());
        Ok(added)
    }

    /// Our next sync messages for a peer (see [`crate::sync`]), each carrying at most
    /// about `budget` bytes of changes as sent ([`crate::sync::DEFAULT_MESSAGE_BUDGET`]
    /// unless the link asks for less); empty when there is nothing to send.
    pub fn generate_sync_messages(
        &self,
        state: &mut automerge::sync::State,
        budget: usize,
    ) -> Vec<automerge::sync::Message> {
        crate::sync::generate_bounded(&self.doc, state, budget)
    }

    /// Applies a peer's sync message. Like [`Assessment::apply`], a message whose changes
    /// would expand past [`MAX_INFLATED_BYTES`], or leave something that is no longer an
    /// assessment, is refused whole.
    pub fn receive_sync_message(
        &mut self,
        state: &mut automerge::sync::State,
        message: automerge::sync::Message,
    ) -> Result<()> {
        use automerge::sync::SyncDoc;
        if message.changes.is_empty() {
            // Nothing to check: only heads and filters, which update `state`.
            self.doc.receive_sync_message(state, message)?;
            return Ok(());
        }
        let mut incoming_state = state.clone();
        let mut incoming = self.doc.fork();
        receive_untrusted(&mut incoming, &mut incoming_state, message)?;
        read::check_schema(&incoming)?;
        self.doc = incoming.with_actor(self.doc.get_actor().clone());
        *state = incoming_state;
        Ok(())
    }

    /// Applies a peer's sync message as it comes (bounded as every message is, see
    /// [`receive_untrusted`]), checking nothing of what it does: for a copy that the
    /// caller checks next and drops if it refuses it (the relay runs the change policy,
    /// which says why, where [`Assessment::receive_sync_message`] only knows that the
    /// result no longer reads). On error the copy may hold part of the message, or be
    /// broken (see [`untrusted`]): drop it.
    pub fn receive_sync_message_unchecked(
        &mut self,
        state: &mut automerge::sync::State,
        message: automerge::sync::Message,
    ) -> Result<()> {
        receive_untrusted(&mut self.doc, state, message)
    }

    /// Whether `doc` holds a whole assessment: the schema and every piece of the template
    /// (a document arriving in parts does not until its last genesis change is in).
    pub fn is_complete(doc: &Automerge) -> bool {
        read::check_schema(doc).is_ok() && read::template_of(doc).is_ok()
    }

    /// Merges another replica of the same assessment into this one. Like
    /// [`Assessment::apply`], a merge that would leave something that is no longer an
    /// assessment is refused whole.
    pub fn merge(&mut self, other: &Assessment) -> Result<()> {
        let mut incoming = self.doc.fork();
        incoming.merge(&mut other.doc.clone())?;
        read::check_schema(&incoming)?;
        self.doc = incoming.with_actor(self.doc.get_actor().clone());
        Ok(())
    }

    /// An officer's step in the lifecycle (start, submit) or a supervisor's review
    /// (approve, return). Returns the status after the step.
    ///
    /// Fails with [`Error::NotAllowed`] if the lifecycle forbids it from the status this
    /// replica sees, [`Error::NotEnoughEvidence`] when submitting with fewer photos than
    /// the template asks, and [`Error::InvalidInput`] for a return without a reason.
    /// Whether the author may review at all is for the caller to decide (roles live with
    /// the relay's accounts).
    pub fn step(
        &mut self,
        criterion: &str,
        action: Action,
        reason: Option<&str>,
        by: &Author,
        now_ms: i64,
    ) -> Result<crate::model::Status> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if action == Action::Return && reason.is_none() {
            return Err(Error::InvalidInput("a return needs a reason".into()));
        }
        let view = self.criterion_view(criterion)?;
        if !action.allowed_from(view.status) {
            return Err(Error::NotAllowed {
                action,
                status: view.status,
            });
        }
        if action == Action::Submit {
            let have = view.evidence.len() as u32;
            let required = view.criterion.min_photos;
            if have < required {
                return Err(Error::NotEnoughEvidence { required, have });
            }
        }
        let what = format!("status:{}", action.as_str());
        self.edit(by, now_ms, &what, Some(criterion), |tx, a| {
            let log = a.criterion_child(tx, criterion, "log")?;
            let entry = tx.insert_object(&log, tx.length(&log), ObjType::Map)?;
            tx.put(&entry, "action", action.as_str())?;
            tx.put(&entry, "round", view.round)?;
            tx.put(&entry, "by", by.user.as_str())?;
            tx.put(&entry, "device", by.device.as_str())?;
            tx.put(&entry, "at", now_ms)?;
            if let Some(reason) = reason {
                tx.put(&entry, "reason", reason)?;
            }
            Ok(())
        })?;
        Ok(action.status())
    }

    /// Replaces a criterion's note with `text`, as the smallest edit, so that concurrent
    /// edits of other parts of the note merge.
    pub fn set_note(
        &mut self,
        criterion: &str,
        text: &str,
        by: &Author,
        now_ms: i64,
    ) -> Result<()> {
        self.edit(by, now_ms, "note", Some(criterion), |tx, a| {
            let note = a.criterion_child(tx, criterion, "note")?;
            tx.update_text(&note, text)?;
            Ok(())
        })
    }

    /// Attaches evidence to a criterion. Attaching the same photo again is a no-op, or
    /// restores it if it had been removed.
    pub fn add_evidence(
        &mut self,
        criterion: &str,
        evidence: &Evidence,
        by: &Author,
        now_ms: i64,
    ) -> Result<()> {
        self.edit(by, now_ms, "evidence:add", Some(criterion), |tx, a| {
            let map = a.criterion_child(tx, criterion, "evidence")?;
            match tx.get(&map, evidence.photo.to_hex())? {
                Some((_, existing)) => tx.put(&existing, "removed", false)?,
                None => write_evidence(tx, &map, evidence)?,
            }
            Ok(())
        })
    }

    /// Changes a photo's caption.
    pub fn set_caption(
        &mut self,
        criterion: &str,
        photo: &BlobHash,
        caption: &str,
        by: &Author,
        now_ms: i64,
    ) -> Result<()> {
        self.edit_evidence(criterion, photo, by, now_ms, "evidence:caption", |tx, e| {
            tx.put(e, "caption", caption)
        })
    }

    /// Confirms that a photo carried over from the previous period still holds.
    pub fn confirm_evidence(
        &mut self,
        criterion: &str,
        photo: &BlobHash,
        by: &Author,
        now_ms: i64,
    ) -> Result<()> {
        self.edit_evidence(criterion, photo, by, now_ms, "evidence:confirm", |tx, e| {
            tx.put(e, "to_reconfirm", false)
        })
    }

    /// Detaches a photo. The record stays in the document, flagged, so a concurrent edit
    /// never loses it and it can be attached again.
    pub fn remove_evidence(
        &mut self,
        criterion: &str,
        photo: &BlobHash,
        by: &Author,
        now_ms: i64,
    ) -> Result<()> {
        self.edit_evidence(criterion, photo, by, now_ms, "evidence:remove", |tx, e| {
            tx.put(e, "removed", true)
        })
    }

    /// Sets this period's value of an indicator such as `incidents`.
    pub fn set_indicator(&mut self, key: &str, value: i64, by: &Author, now_ms: i64) -> Result<()> {
        validate_key(key)?;
        self.edit(by, now_ms, &format!("indicator:{key}"), None, |tx, a| {
            let indicators = a.map(tx, &ROOT, "indicators")?;
            tx.put(&indicators, key, value)?;
            Ok(())
        })
    }

    /// Adds a comment, on a criterion or on the whole assessment.
    pub fn add_comment(
        &mut self,
        criterion: Option<&str>,
        text: &str,
        by: &Author,
        now_ms: i64,
    ) -> Result<()> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::InvalidInput("a comment needs text".into()));
        }
        if let Some(id) = criterion {
            self.criterion_child(&self.doc, id, "log")?;
        }
        self.edit(by, now_ms, "comment", criterion, |tx, a| {
            let comments = a.map(tx, &ROOT, "comments")?;
            let entry = tx.insert_object(&comments, tx.length(&comments), ObjType::Map)?;
            if let Some(id) = criterion {
                tx.put(&entry, "criterion", id)?;
            }
            tx.put(&entry, "by", by.user.as_str())?;
            tx.put(&entry, "device", by.device.as_str())?;
            tx.put(&entry, "at", now_ms)?;
            tx.put(&entry, "text", text)?;
            Ok(())
        })
    }

    fn edit_evidence(
        &mut self,
        criterion: &str,
        photo: &BlobHash,
        by: &Author,
        now_ms: i64,
        what: &str,
        f: impl FnOnce(
            &mut automerge::transaction::Transaction<'_>,
            &ObjId,
        ) -> Result<(), automerge::AutomergeError>,
    ) -> Result<()> {
        self.edit(by, now_ms, what, Some(criterion), |tx, a| {
            let map = a.criterion_child(tx, criterion, "evidence")?;
            match tx.get(&map, photo.to_hex())? {
                Some((automerge::Value::Object(ObjType::Map), record)) => Ok(f(tx, &record)?),
                _ => Err(Error::UnknownEvidence(*photo)),
            }
        })
    }

    /// Runs `f` in one Automerge transaction committed as one change with a note naming the
    /// author; on error nothing is kept.
    fn edit<T>(
        &mut self,
        by: &Author,
        now_ms: i64,
        what: &str,
        criterion: Option<&str>,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>, &Shape) -> Result<T>,
    ) -> Result<T> {
        if let Some(id) = criterion {
            self.criterion_child(&self.doc, id, "log")?;
        }
        let note = ChangeNote {
            by: by.user.clone(),
            dev: by.device.clone(),
            what: what.into(),
            c: criterion.map(str::to_owned),
        };
        let shape = Shape;
        self.doc
            .transact_with(|_| commit_options(&note, now_ms), |tx| f(tx, &shape))
            .map(|success| success.result)
            .map_err(|failure| failure.error)
    }

    fn map(&self, doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Result<ObjId> {
        Shape.map(doc, obj, key)
    }

    fn criterion_child(&self, doc: &impl ReadDoc, criterion: &str, key: &str) -> Result<ObjId> {
        Shape.criterion_child(doc, criterion, key)
    }
}

/// Navigation through the schema's fixed objects, usable on the document and inside a
/// transaction alike.
struct Shape;

impl Shape {
    fn map(&self, doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Result<ObjId> {
        match doc.get(obj, key)? {
            Some((automerge::Value::Object(_), id)) => Ok(id),
            _ => Err(Error::Malformed(format!("missing object {key:?}"))),
        }
    }

    fn criterion_child(&self, doc: &impl ReadDoc, criterion: &str, key: &str) -> Result<ObjId> {
        let criteria = self.map(doc, &ROOT, "criteria")?;
        let c = match doc.get(&criteria, criterion)? {
            Some((automerge::Value::Object(ObjType::Map), id)) => id,
            _ => return Err(Error::UnknownCriterion(criterion.into())),
        };
        self.map(doc, &c, key)
    }
}

fn write_evidence(
    tx: &mut automerge::transaction::Transaction<'_>,
    evidence_map: &ObjId,
    e: &Evidence,
) -> Result<()> {
    let m = tx.put_object(evidence_map, e.photo.to_hex(), ObjType::Map)?;
    tx.put(&m, "thumbnail", e.thumbnail.to_hex())?;
    tx.put(&m, "phash", e.perceptual_hash.to_string())?;
    tx.put(&m, "width", u64::from(e.width))?;
    tx.put(&m, "height", u64::from(e.height))?;
    tx.put(&m, "caption", e.caption.as_str())?;
    tx.put(&m, "captured_at", e.captured_at.as_str())?;
    if let Some(at) = e.location {
        tx.put(&m, "lat", at.lat)?;
        tx.put(&m, "lon", at.lon)?;
        if let Some(accuracy) = at.accuracy_m {
            tx.put(&m, "accuracy", accuracy)?;
        }
    }
    tx.put(&m, "officer", e.officer.as_str())?;
    tx.put(&m, "device", e.device.as_str())?;
    tx.put(&m, "device_key", e.device_key.to_string())?;
    tx.put(&m, "signature", e.signature.to_string())?;
    tx.put(&m, "added_at", e.added_at_ms)?;
    tx.put(&m, "to_reconfirm", e.to_reconfirm)?;
    tx.put(&m, "removed", false)?;
    Ok(())
}

fn commit_options(note: &ChangeNote, now_ms: i64) -> CommitOptions {
    // Automerge's change time is in seconds, as automerge-js writes it.
    CommitOptions::default()
        .with_message(serde_json::to_string(note).unwrap_or_default())
        .with_time(now_ms.div_euclid(1000))
}

/// The longest unit id, name, city or province, in characters.
pub const UNIT_FIELD_CHARS: usize = 200;

fn validate_unit(unit: &Unit) -> Result<()> {
    for (field, value) in [("id", &unit.id), ("name", &unit.name)] {
        if value.trim().is_empty() {
            return Err(Error::InvalidInput(format!("the unit needs a {field}")));
        }
    }
    for (field, value) in [
        ("id", &unit.id),
        ("name", &unit.name),
        ("city", &unit.city),
        ("province", &unit.province),
    ] {
        // Shown on every screen: no control characters (bidirectional overrides
        // included), a bounded length.
        if value.chars().count() > UNIT_FIELD_CHARS
            || value.chars().any(|c| {
                c.is_control()
                    || ('\u{202a}'..='\u{202e}').contains(&c)
                    || ('\u{2066}'..='\u{2069}').contains(&c)
            })
        {
            return Err(Error::InvalidInput(format!(
                "the unit's {field} must be at most {UNIT_FIELD_CHARS} printable characters"
            )));
        }
    }
    Ok(())
}

fn validate_period(period: &str) -> Result<()> {
    let ok = !period.is_empty()
        && period.len() <= 32
        && period
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(
            "a period is 1 to 32 letters, digits, '-' or '_' (e.g. 2025 or 2025-H1)".into(),
        ))
    }
}

/// Whether `key` names an indicator: 1 to 64 lowercase letters, digits or '_'.
pub(crate) fn is_indicator_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn validate_key(key: &str) -> Result<()> {
    if is_indicator_key(key) {
        Ok(())
    } else {
        Err(Error::InvalidInput(
            "an indicator key is 1 to 64 lowercase letters, digits or '_'".into(),
        ))
    }
}

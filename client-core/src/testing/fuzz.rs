//! The fuzz targets' bodies, and their seed inputs.
//!
//! Each target is a function of the fuzzer's bytes that must never panic, abort or hang,
//! whatever the bytes. `fuzz/fuzz_targets/<name>.rs` hands libFuzzer's input to it, and
//! `tests/fuzz_crashers.rs` replays every input kept in `tests/fuzz-crashers/<name>/`
//! through it, so a crash, once fixed, stays fixed. [`write_seeds`] makes each target's
//! first corpus from real inputs.
//!
//! A new target is a function here, listed in [`TARGETS`], and its file in
//! `fuzz/fuzz_targets/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use automerge::sync::{Message, State};
use automerge::{ActorId, Automerge, ChangeHash};

use crate::Workspace;
use crate::doc::{Assessment, DocumentId};
use crate::model::Role;
use crate::model::{Action, Template, TemplateKey, sample_templates};
use crate::photo::{self, PhotoConfig};
use crate::policy::{self, Writer};
use crate::sync::wire::{PeerMetadata, WireMessage};
use crate::sync::{
    DEFAULT_MESSAGE_BUDGET, HostError, Session, SyncHost, WorkspaceHost, generate_bounded,
};
use crate::testing::{ExifSpec, jpeg_with_exif, png, sample_unit};

/// A target's body: takes any bytes, and panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/` and `tests/fuzz-crashers/` name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("wire", wire),
    ("session", session),
    ("template", template),
    ("photo", photo),
    ("document", document),
    ("policy", policy),
];

/// The change policy over a hostile officer's writes decoded from `data`
/// ([`super::hostile::writes_from_bytes`]): whatever it takes is harmless
/// ([`super::hostile::check_writes`]), and nothing panics.
pub fn policy(data: &[u8]) {
    static BEFORE: OnceLock<Assessment> = OnceLock::new();
    let before = BEFORE.get_or_init(super::hostile::reviewed);
    let (changes, actor) = super::hostile::writes_from_bytes(data);
    if let Err(harm) = super::hostile::check_writes(before, &changes, actor) {
        panic!("the policy let harm through: {harm}");
    }
}

/// The wire decoder: any frame decodes or is refused, and what decodes encodes back to
/// the same message.
pub fn wire(data: &[u8]) {
    if let Ok(message) = WireMessage::decode(data) {
        assert_eq!(WireMessage::decode(&message.encode()), Ok(message));
    }
}

/// A sync session on the relay's side (the acceptor), fed the frames of `data` as
/// [`frames`] splits them, as a modified phone could send them, over a [`MemoryHost`]
/// that holds one assessment (the same for every input). Reading what it took in is the
/// `document` target's part.
pub fn session(data: &[u8]) {
    let mut host = MemoryHost::relay();
    let mut session = Session::accept("relay", PeerMetadata::default());
    for frame in frames(data) {
        if session.receive(frame, &mut host).is_err() {
            // The relay closes the connection on a protocol error.
            break;
        }
        session.take_outgoing();
    }
}

/// Assessments served and taken in as the relay's host does it, in memory: changes to a
/// document it has are applied to a copy and taken whole or refused by the change policy
/// (as an officer's); a document a peer pushes is kept once it reads as a whole
/// assessment under the id it came with and passes the policy for new documents.
struct MemoryHost {
    documents: HashMap<DocumentId, Assessment>,
    arriving: HashMap<DocumentId, Automerge>,
}

impl MemoryHost {
    /// A host holding the assessment that [`write_seeds`] makes its sessions about.
    fn relay() -> Self {
        static HELD: OnceLock<Assessment> = OnceLock::new();
        let held = HELD.get_or_init(|| {
            let template = Arc::new(sample_templates().remove(1));
            let mut assessment =
                Assessment::create(&sample_unit(), "2025", template).expect("an assessment");
            assessment.set_actor(ActorId::from(b"relay".as_slice()));
            assessment
        });
        let id = held.id().expect("an id");
        Self {
            documents: HashMap::from([(id, held.clone())]),
            arriving: HashMap::new(),
        }
    }
}

impl SyncHost for MemoryHost {
    fn has(&mut self, doc: &DocumentId) -> bool {
        self.documents.contains_key(doc)
    }

    fn heads(&mut self, doc: &DocumentId) -> Option<Vec<ChangeHash>> {
        match self.documents.get(doc) {
            Some(assessment) => Some(assessment.heads()),
            None => self.arriving.get(doc).map(Automerge::get_heads),
        }
    }

    fn generate(&mut self, doc: &DocumentId, state: &mut State) -> Result<Vec<Message>, HostError> {
        Ok(match self.documents.get(doc) {
            Some(assessment) => assessment.generate_sync_messages(state, DEFAULT_MESSAGE_BUDGET),
            None => generate_bounded(
                self.arriving.entry(*doc).or_default(),
                state,
                DEFAULT_MESSAGE_BUDGET,
            ),
        })
    }

    fn receive(
        &mut self,
        doc: &DocumentId,
        state: &mut State,
        message: Message,
    ) -> Result<(), HostError> {
        let writer = Writer {
            user: "officer-1",
            role: Role::Officer,
        };
        if let Some(assessment) = self.documents.get_mut(doc) {
            // As the relay's intake: on a copy, unchecked, then the change policy.
            let (mut copy, mut next) = (assessment.clone(), state.clone());
            copy.receive_sync_message_unchecked(&mut next, message)
                .map_err(|_| HostError::Unavailable)?;
            policy::check(&copy, &assessment.heads(), &writer)
                .map_err(|refusal| HostError::Refused(refusal.to_string()))?;
            *assessment = copy;
            *state = next;
            return Ok(());
        }
        let arriving = self.arriving.entry(*doc).or_default();
        if crate::doc::receive_untrusted(arriving, state, message).is_err() {
            self.arriving.remove(doc);
            return Err(HostError::Unavailable);
        }
        if !Assessment::is_complete(arriving) {
            return Ok(());
        }
        let whole = self.arriving.remove(doc).unwrap_or_default();
        let assessment = Assessment::from_automerge(whole).map_err(|_| HostError::Unavailable)?;
        if assessment.id().ok() != Some(*doc) {
            return Err(HostError::Unavailable);
        }
        policy::check_new(&assessment, &writer)
            .map_err(|refusal| HostError::Refused(refusal.to_string()))?;
        self.documents.insert(*doc, assessment);
        Ok(())
    }
}

/// Template JSON: any text parses or is refused, and a template that parses survives
/// being written out and read again.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(template) = Template::from_json(text) {
        let again = Template::from_json(&template.to_json()).expect("a written template reads");
        assert_eq!(again, template);
    }
}

/// Photo decoding with EXIF (orientation, time, GPS), resizing and JPEG encoding, with
/// limits small enough that every input is done in milliseconds.
pub fn photo(data: &[u8]) {
    let _ = photo::process(data, &small_photos());
}

/// A saved assessment loaded, then read every way the apps and the console read it.
pub fn document(data: &[u8]) {
    let Ok(assessment) = Assessment::load(data) else {
        return;
    };
    let _ = assessment.id();
    let _ = assessment.view();
    let _ = assessment.history(None);
    for criterion in assessment.template().criteria.iter().take(2) {
        let _ = assessment.history(Some(&criterion.id));
    }
    let _ = assessment.conflicts();
}

/// The frames of a session input: each a 2-byte big-endian length and that many bytes;
/// a last frame shorter than its length is taken as it is.
pub fn frames(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (length, rest) = data.split_first_chunk::<2>()?;
        let (frame, rest) = rest.split_at(usize::from(u16::from_be_bytes(*length)).min(rest.len()));
        data = rest;
        Some(frame)
    })
}

/// The inverse of [`frames`].
pub fn join_frames(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        let length = u16::try_from(frame.len()).expect("a seed frame under 64 KiB");
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(frame);
    }
    out
}

/// The photo limits of [`photo`]: small outputs, inputs up to a quarter megapixel.
fn small_photos() -> PhotoConfig {
    PhotoConfig {
        evidence_long_side: 128,
        thumbnail_long_side: 32,
        max_input_bytes: 1 << 20,
        max_pixels: 1 << 18,
        max_side: 2048,
        max_whole_decode_pixels: 1 << 16,
        ..PhotoConfig::default()
    }
}

fn template_key() -> TemplateKey {
    sample_templates().remove(1).key()
}

/// A folder removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    /// A new empty folder under the system's temporary folder.
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wardcheck-fuzz-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes each target's seeds into `dir/<target>/`: frames of real sessions, the sample
/// templates, small photos with and without EXIF, and saved assessments (with a photo, a
/// submitted criterion, a comment and a conflict).
pub fn write_seeds(dir: &Path) -> std::io::Result<()> {
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    let (phone_dir, phone) = workspace("officer-1");
    let (other_dir, other) = workspace("officer-2");
    let id = phone
        .create_assessment(&sample_unit(), "2025", &template_key())
        .expect("an assessment");
    assert_eq!(Some(&id), MemoryHost::relay().documents.keys().next());
    let exif = ExifSpec {
        orientation: Some(6),
        gps: Some((14.3545, 108.0076)),
        taken_at: Some("2025:05:01 10:20:30"),
    };
    let camera = jpeg_with_exif(96, 64, 1, &exif);
    phone
        .add_photo(&id, "c05", &camera, "Bảng nội quy", None)
        .expect("a photo");
    phone
        .set_note(&id, "c01", "Chi bộ họp định kỳ")
        .expect("a note");
    phone
        .step(&id, "c01", Action::Submit, None)
        .expect("a step");
    seeds.push((
        "document",
        "plain".into(),
        phone.export_document(&id).expect("saved"),
    ));

    // A concurrent edit of the same note: a conflict once merged.
    other
        .import_document(&phone.export_document(&id).expect("saved"))
        .expect("imported");
    other.set_note(&id, "c02", "từ máy khác").expect("a note");
    phone
        .set_note(&id, "c02", "from this phone")
        .expect("a note");
    phone
        .add_comment(&id, Some("c02"), "ý kiến")
        .expect("a comment");
    phone
        .import_document(&other.export_document(&id).expect("saved"))
        .expect("merged");
    seeds.push((
        "document",
        "conflict".into(),
        phone.export_document(&id).expect("saved"),
    ));

    // Whole sessions with a relay, as the relay hears them: a phone pushing a document
    // the relay lacks, and one syncing edits into a copy the relay already has.
    let (_empty_dir, empty) = workspace("relay");
    for (name, relay) in [("push", &empty), ("merge", &other)] {
        let frames = phone_frames(&phone, relay, id);
        seeds.push(("session", name.into(), join_frames(&frames)));
        for (i, frame) in frames.into_iter().enumerate() {
            seeds.push(("wire", format!("{name}-{i}"), frame));
        }
    }
    let unavailable = WireMessage::DocUnavailable {
        sender_id: "a".into(),
        target_id: "b".into(),
        document_id: id,
        reason: Some("refused".into()),
    };
    seeds.push(("wire", "doc-unavailable".into(), unavailable.encode()));

    // A hostile device's writes: runs of pseudo-random bytes (xorshift), from which the
    // fuzzer finds its way to the objects and operations that matter.
    for n in 1..=8u64 {
        let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let bytes = (0..61)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        seeds.push(("policy", format!("writes-{n}"), bytes));
    }

    for template in sample_templates() {
        seeds.push((
            "template",
            template.key().to_string(),
            template.to_json().into_bytes(),
        ));
    }
    seeds.push(("photo", "exif".into(), camera));
    seeds.push((
        "photo",
        "plain".into(),
        jpeg_with_exif(40, 30, 2, &ExifSpec::default()),
    ));
    seeds.push(("photo", "png".into(), png(24, 16, 3)));

    for (target, name, bytes) in seeds {
        let folder = dir.join(target);
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join(format!("seed-{name}")), bytes)?;
    }
    drop((phone, other, phone_dir, other_dir));
    Ok(())
}

/// The frames `phone` sends while it syncs document `id` with `relay`, in memory.
fn phone_frames(phone: &Workspace, relay: &Workspace, id: DocumentId) -> Vec<Vec<u8>> {
    let (mut phone_host, mut relay_host) = (WorkspaceHost::new(phone), WorkspaceHost::new(relay));
    let mut ours = Session::initiate(phone.device_id(), PeerMetadata::default());
    let mut theirs = Session::accept("relay", PeerMetadata::default());
    ours.add_document(id, State::new(), &mut phone_host)
        .expect("a document");
    let mut sent = Vec::new();
    for _ in 0..100 {
        let frames = ours.take_outgoing();
        if frames.is_empty() && ours.is_settled() {
            break;
        }
        for frame in &frames {
            theirs
                .receive(frame, &mut relay_host)
                .expect("a good frame");
        }
        sent.extend(frames);
        for frame in theirs.take_outgoing() {
            ours.receive(&frame, &mut phone_host).expect("a good frame");
        }
    }
    sent
}

fn workspace(user: &str) -> (Scratch, Workspace) {
    let dir = Scratch::new();
    let workspace = Workspace::open(&dir.0).expect("a new workspace");
    workspace.set_user(user).expect("a user");
    (dir, workspace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_join() {
        let frames_in = vec![b"ab".to_vec(), Vec::new(), b"c".to_vec()];
        let data = join_frames(&frames_in);
        assert_eq!(frames(&data).collect::<Vec<_>>(), [&b"ab"[..], b"", b"c"]);
        assert_eq!(frames(&[0, 9, 1]).collect::<Vec<_>>(), [&[1u8][..]]);
        assert_eq!(frames(&[7]).count(), 0);
    }

    #[test]
    fn every_target_takes_its_seeds() {
        let dir = Scratch::new();
        write_seeds(&dir.0).unwrap();
        for (name, target) in TARGETS {
            let seeds: Vec<_> = std::fs::read_dir(dir.0.join(name)).unwrap().collect();
            assert!(!seeds.is_empty(), "{name} has no seeds");
            for seed in seeds {
                target(&std::fs::read(seed.unwrap().path()).unwrap());
            }
        }
    }
}

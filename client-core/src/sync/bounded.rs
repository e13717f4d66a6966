//! Bounded sync messages: a link that drops every few KB still makes progress.
//!
//! Automerge's sync sends everything a peer lacks in one message (after many offline edits,
//! or for a new document, the whole history). If the connection breaks during that
//! message, nothing arrives and the next attempt starts over. [`generate_bounded`] splits
//! such a message into parts of about `budget` bytes, in causal order: each part applies on
//! its own, the receiver stores it, and an interrupted sync resumes from what arrived.

use std::collections::{BTreeSet, HashSet};

use automerge::sync::{Capability, ChunkList, Message, MessageVersion, State, SyncDoc};
use automerge::{Automerge, Change, ChangeHash};

/// The default size of a sync message's changes, in bytes as sent (a V2 message's are
/// compressed). A phone whose connection drops in the middle of a sync asks for smaller
/// ones on its next attempt, down to [`MIN_MESSAGE_BUDGET`].
pub const DEFAULT_MESSAGE_BUDGET: usize = 16 * 1024;

/// The smallest message budget a peer may ask for: a piece of the template (the largest
/// change of a new document, [`crate::doc::TEMPLATE_PIECE_BYTES`] raw) fits.
pub const MIN_MESSAGE_BUDGET: usize = 2 * 1024;

/// The WebSocket read buffer for sync connections, on phones and on the relay: room for a
/// message of [`DEFAULT_MESSAGE_BUDGET`] and its framing in one read. Larger frames take
/// several reads. (tungstenite zeroes the whole buffer before each read; its default of
/// 128 KiB cost the relay 7% of its CPU under load.)
pub const SOCKET_READ_BUFFER: usize = DEFAULT_MESSAGE_BUDGET + 4 * 1024;

/// The next sync message(s) for a peer, each carrying at most about `budget` bytes of
/// changes as they go on the wire (a single larger change goes alone). Empty when there is
/// nothing to send.
///
/// When it is known what the peer holds (the heads it announced on this connection, or,
/// before it has said anything, the shared heads of a saved state), exactly the changes
/// made since go out, as compressed bundles:
/// - a phone resuming from a saved state puts every change made since its last sync in its
///   first message: after offline edits it is up to date after one exchange instead of two;
/// - a peer that has the document gets only what it lacks, never the whole document (which
///   Automerge sends whenever a third of the changes are new: in a young document, edited
///   by twenty officers at once, that is every sync) and never uncompressed changes.
///
/// Otherwise (a peer that has not said what it has, or does not read bundles) Automerge's
/// own message goes out, split if it is too big.
pub fn generate_bounded(doc: &Automerge, state: &mut State, budget: usize) -> Vec<Message> {
    super::bloom::forget_unusable_filters(state);
    let sent_before: BTreeSet<ChangeHash> = state.sent_hashes.clone();
    let known = known_peer_heads(doc, state);
    if let Some(heads) = &known {
        // Marked as sent, Automerge leaves them out of its message: they go in bundles.
        let lacking = doc.get_changes_meta(heads);
        state
            .sent_hashes
            .extend(lacking.iter().map(|change| change.hash));
    }
    let Some(mut message) = doc.generate_sync_message(state) else {
        state.sent_hashes = sent_before;
        return Vec::new();
    };
    if known.is_some() && state.their_heads.is_some() {
        // The peer announced heads we all have: it holds nothing we lack, so our Bloom
        // filter (a bit over a byte per change since the last sync, in every message)
        // would tell it nothing. Without one it sends only what we ask for by hash.
        message.have.clear();
    }
    let new: HashSet<ChangeHash> = state
        .sent_hashes
        .difference(&sent_before)
        .copied()
        .collect();
    if new.is_empty() || (known.is_none() && encoded_size(&message) <= budget) {
        return vec![message];
    }
    let base = known.unwrap_or_else(|| {
        // When a peer lacks much, Automerge sends the whole document; after an interrupted
        // sync the peer already has a prefix of it. Leave out what lies behind its heads.
        state
            .their_heads
            .iter()
            .flatten()
            .filter(|hash| has_change(doc, hash))
            .copied()
            .collect()
    });
    if message.version == MessageVersion::V1 && !message.changes.is_empty() {
        return split_raw(doc, &message, &base, &new, budget);
    }
    // The compact encoding (a bundle): our peers (the relay, other phones) run this
    // Automerge; a phone resuming does not know its peer's capabilities yet.
    message.version = MessageVersion::V2;
    let whole = bundled(doc, &message, new.iter().copied());
    let encoded = encoded_size(&whole);
    if encoded <= budget || new.len() < 2 {
        return vec![whole];
    }
    // In causal order, so that each part's dependencies come first.
    let ordered = changes_after(doc, &base, &new);
    let part = |group: &[Change]| bundled(doc, &message, group.iter().map(Change::hash));
    split(ordered, part, budget, encoded)
}

/// A message like `template` carrying the changes `hashes` of `doc` as one compressed
/// bundle.
fn bundled(
    doc: &Automerge,
    template: &Message,
    hashes: impl IntoIterator<Item = ChangeHash>,
) -> Message {
    // Every hash is in `doc` (it came from `doc`), so the bundle cannot fail.
    let chunks: Vec<Vec<u8>> = doc
        .bundle(hashes)
        .map(|bundle| vec![bundle.bytes().to_vec()])
        .unwrap_or_default();
    with_changes(template, chunks.into())
}

/// The changes of `doc` in `new`, in causal order after `base`.
fn changes_after(doc: &Automerge, base: &[ChangeHash], new: &HashSet<ChangeHash>) -> Vec<Change> {
    // `get_changes` lists changes in causal order.
    doc.get_changes(base)
        .into_iter()
        .filter(|change| new.contains(&change.hash()))
        .collect()
}

/// What the peer holds for certain: the heads it announced on this connection, if it reads
/// bundles and `doc` has them all; or, before it has said anything, the shared heads of a
/// saved state (what it had at the end of the last sync), if `doc` has them all. `None`
/// for a read-only peer, which takes no changes.
fn known_peer_heads(doc: &Automerge, state: &State) -> Option<Vec<ChangeHash>> {
    if state.is_peer_read_only() {
        return None;
    }
    let all_here =
        |heads: &[ChangeHash]| !heads.is_empty() && heads.iter().all(|hash| has_change(doc, hash));
    match &state.their_heads {
        // No heads: it has nothing, and gets everything as bundles.
        Some(heads) => (reads_bundles(state) && heads.iter().all(|hash| has_change(doc, hash)))
            .then(|| heads.clone()),
        // Set by every message received (a decoded state has `their_have` = `Some([])`).
        None if state.their_need.is_none() && all_here(&state.shared_heads) => {
            Some(state.shared_heads.clone())
        }
        None => None,
    }
}

/// Whether the peer said it reads V2 messages (bundles).
fn reads_bundles(state: &State) -> bool {
    state
        .their_capabilities
        .iter()
        .flatten()
        .any(|capability| *capability == Capability::MessageV2)
}

/// Whether `doc` holds the change `hash`, from the change graph alone. (Looking the change
/// itself up, `get_change_by_hash`, rebuilds it from the document's columns: under load
/// that took a sixth of a simulated phone's CPU and a tenth of the relay's.)
fn has_change(doc: &Automerge, hash: &ChangeHash) -> bool {
    doc.get_change_meta_by_hash(hash).is_some()
}

/// The bytes of a message's changes as sent.
fn encoded_size(message: &Message) -> usize {
    message.changes.iter().map(<[u8]>::len).sum()
}

/// A message like `template` carrying `changes` instead of its own.
fn with_changes(template: &Message, changes: ChunkList) -> Message {
    Message {
        heads: template.heads.clone(),
        need: template.need.clone(),
        have: template.have.clone(),
        changes,
        flags: template.flags,
        version: template.version.clone(),
    }
}

/// Splits an uncompressed (V1) message, for a peer that does not read bundles: its `new`
/// changes in causal order after `base`, in parts of about `budget` bytes.
fn split_raw(
    doc: &Automerge,
    message: &Message,
    base: &[ChangeHash],
    new: &HashSet<ChangeHash>,
    budget: usize,
) -> Vec<Message> {
    let ordered = changes_after(doc, base, new);
    if ordered.len() < 2 {
        return vec![message.clone()];
    }
    let part = |group: &[Change]| {
        let chunks: Vec<Vec<u8>> = group.iter().map(|c| c.raw_bytes().to_vec()).collect();
        with_changes(message, chunks.into())
    };
    split(ordered, part, budget, encoded_size(message))
}

/// Splits `changes` (in causal order, `encoded` bytes when sent as one message) into
/// messages made by `encode`, each carrying at most `budget` bytes of changes (or a single
/// change). A bundle compresses, often tenfold, so the parts are measured after encoding:
/// the changes are first cut into as many groups of equal raw bytes as the whole's
/// encoded size calls for (with a margin: a part compresses less well than the whole), and
/// a part still too big is halved until it fits.
fn split(
    changes: Vec<Change>,
    encode: impl Fn(&[Change]) -> Message,
    budget: usize,
    encoded: usize,
) -> Vec<Message> {
    let raw: usize = changes.iter().map(|c| c.raw_bytes().len()).sum();
    let count = (encoded + encoded / 8).div_ceil(budget.max(1)).max(1);
    let share = raw.div_ceil(count).max(1);
    let mut groups: Vec<Vec<Change>> = vec![Vec::new()];
    let (mut so_far, mut cut) = (0, share);
    for change in changes {
        if so_far >= cut {
            groups.push(Vec::new());
            cut = (so_far / share + 1) * share;
        }
        so_far += change.raw_bytes().len();
        groups.last_mut().expect("one group at least").push(change);
    }
    let mut parts = Vec::new();
    // Groups still to encode, next one last.
    groups.reverse();
    let mut pending = groups;
    while let Some(group) = pending.pop() {
        let message = encode(&group);
        if encoded_size(&message) <= budget || group.len() < 2 {
            parts.push(message);
            continue;
        }
        let (first, second) = halve(group);
        pending.push(second);
        pending.push(first);
    }
    parts
}

/// Cuts a group in two at about half its raw bytes, keeping the order.
fn halve(mut group: Vec<Change>) -> (Vec<Change>, Vec<Change>) {
    let total: usize = group.iter().map(|c| c.raw_bytes().len()).sum();
    let mut at = 0;
    let mut size = 0;
    while at < group.len() - 1 && size + group[at].raw_bytes().len() <= total / 2 {
        size += group[at].raw_bytes().len();
        at += 1;
    }
    let second = group.split_off(at.max(1));
    (group, second)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::doc::Assessment;
    use crate::model::{Author, sample_templates};
    use crate::testing::{sample_unit, signed_evidence};

    fn long_history(edits: u64) -> Automerge {
        let template = Arc::new(sample_templates().remove(0));
        let mut doc = Assessment::create(&sample_unit(), "2025", template).unwrap();
        let by = Author::new("officer-1", "phone-1");
        for n in 0..edits {
            doc.set_note("c01", &format!("note {n}"), &by, n as i64)
                .unwrap();
            doc.add_evidence("c03", &signed_evidence(n, &by), &by, n as i64)
                .unwrap();
        }
        doc.automerge().clone()
    }

    /// Syncs `from` into an empty peer, delivering at most `deliver` messages per
    /// connection and starting a new connection (fresh states) after each: a link that
    /// keeps dropping.
    fn sync_over_dropping_link(
        from: &Automerge,
        budget: usize,
        deliver: usize,
    ) -> (Automerge, usize) {
        let mut to = Automerge::new();
        for connection in 1..=100 {
            let (mut ours, mut theirs) = (State::new(), State::new());
            let mut delivered = 0;
            loop {
                let mut quiet = true;
                for message in generate_bounded(from, &mut ours, budget) {
                    if delivered == deliver {
                        break;
                    }
                    let single_change = message.changes.len() == 1;
                    let encoded = message.encode();
                    assert!(encoded.len() <= budget + 4096 || single_change);
                    to.receive_sync_message(&mut theirs, Message::decode(&encoded).unwrap())
                        .unwrap();
                    delivered += 1;
                    quiet = false;
                }
                if delivered == deliver && to.get_heads() != from.get_heads() {
                    break; // the link drops
                }
                for message in generate_bounded(&to, &mut theirs, budget) {
                    from.clone()
                        .receive_sync_message(&mut ours, message)
                        .unwrap();
                    quiet = false;
                }
                if quiet {
                    break;
                }
            }
            if to.get_heads() == from.get_heads() {
                return (to, connection);
            }
        }
        panic!("never converged");
    }

    #[test]
    fn small_messages_are_left_whole() {
        let doc = long_history(2);
        let mut state = State::new();
        assert_eq!(generate_bounded(&doc, &mut state, 1 << 20).len(), 1);
    }

    #[test]
    fn a_big_catch_up_is_split_and_every_part_applies() {
        let doc = long_history(60);
        let (copy, connections) = sync_over_dropping_link(&doc, 4 * 1024, usize::MAX);
        assert_eq!(connections, 1);
        assert_eq!(copy.get_heads(), doc.get_heads());
        // Through a link that carries only three messages per connection (each connection
        // starting afresh), it still arrives: every part applied is kept.
        let (copy, connections) = sync_over_dropping_link(&doc, 4 * 1024, 3);
        assert_eq!(copy.get_heads(), doc.get_heads());
        assert!(connections > 1);
    }

    /// `edits` more notes on `doc`, as a phone offline.
    fn edit(doc: &Automerge, edits: u64, from: u64) -> Automerge {
        let mut doc = Assessment::from_automerge(doc.fork()).unwrap();
        let by = Author::new("officer-1", "phone-1");
        for n in from..from + edits {
            doc.set_note("c02", &format!("offline note {n}"), &by, n as i64)
                .unwrap();
        }
        doc.automerge().clone()
    }

    /// Syncs `a` with `b` until `a` knows `b` has its heads; returns the exchanges it took
    /// (`a` sends, `b` answers).
    fn exchanges(a: &mut Automerge, sa: &mut State, b: &mut Automerge, sb: &mut State) -> usize {
        for exchange in 1..=20 {
            for message in generate_bounded(a, sa, DEFAULT_MESSAGE_BUDGET) {
                b.receive_sync_message(sb, message).unwrap();
            }
            for message in generate_bounded(b, sb, DEFAULT_MESSAGE_BUDGET) {
                a.receive_sync_message(sa, message).unwrap();
            }
            if a.get_heads() == b.get_heads() && sa.their_heads == Some(a.get_heads()) {
                return exchange;
            }
        }
        panic!("never converged");
    }

    #[test]
    fn a_peer_with_the_document_gets_only_what_it_lacks_compressed() {
        // A young assessment: a colleague's edits are more than a third of its changes,
        // so Automerge alone would send the whole document.
        let relay = long_history(0);
        let (mut phone, mut relay_copy) = (relay.clone(), relay.clone());
        let (mut sp, mut sr) = (State::new(), State::new());
        exchanges(&mut phone, &mut sp, &mut relay_copy, &mut sr);
        let mut relay = edit(&relay_copy, 30, 0);
        assert!(relay.get_changes(&[]).len() < 3 * 30, "a young document");
        let new: Vec<ChangeHash> = relay
            .get_changes(&phone.get_heads())
            .iter()
            .map(Change::hash)
            .collect();
        let lacking = relay.bundle(new).unwrap().bytes().len();
        let (mut sp, mut sr) = (saved(&sp), saved(&sr));
        let mut sent = 0;
        for _ in 0..4 {
            for message in generate_bounded(&phone, &mut sp, DEFAULT_MESSAGE_BUDGET) {
                relay.receive_sync_message(&mut sr, message).unwrap();
            }
            for message in generate_bounded(&relay, &mut sr, DEFAULT_MESSAGE_BUDGET) {
                sent += encoded_size(&message);
                phone.receive_sync_message(&mut sp, message).unwrap();
            }
        }
        assert_eq!(phone.get_heads(), relay.get_heads());
        let whole = relay.save().len();
        assert!(
            sent == lacking && sent * 3 < whole,
            "{sent} bytes sent; the new changes' bundle is {lacking}, the document {whole}"
        );
    }

    #[test]
    fn a_peer_that_holds_nothing_we_lack_gets_no_filter_and_still_sends_its_edit() {
        let relay = long_history(20);
        let mut phone = Automerge::new();
        let (mut sp, mut sr) = (State::new(), State::new());
        for message in generate_bounded(&phone, &mut sp, 2048) {
            relay
                .clone()
                .receive_sync_message(&mut sr, message)
                .unwrap();
        }
        // A fetch: the phone announced no heads, so every message goes without a filter.
        let parts = generate_bounded(&relay, &mut sr, 2048);
        assert!(parts.len() > 2);
        assert!(parts.iter().all(|part| part.have.is_empty()));
        let (first, rest) = parts.split_at(2);
        for part in first.iter().cloned() {
            phone.receive_sync_message(&mut sp, part).unwrap();
        }
        // Meanwhile the phone writes to what it has: that must still reach the relay.
        let mut tx = phone.transaction();
        automerge::transaction::Transactable::put(&mut tx, automerge::ROOT, "scribble", 1).unwrap();
        tx.commit();
        for part in rest.iter().cloned() {
            phone.receive_sync_message(&mut sp, part).unwrap();
        }
        let mut relay = relay;
        exchanges(&mut phone, &mut sp, &mut relay, &mut sr);
        assert_eq!(relay.get_heads(), phone.get_heads());
    }

    #[test]
    fn a_read_only_peer_is_sent_no_changes() {
        let mut ours = long_history(0);
        let (mut reader, mut so, mut sr) = (ours.clone(), State::new(), State::new_read_only());
        exchanges(&mut reader, &mut sr, &mut ours, &mut so);
        let mut ours = edit(&ours, 5, 0);
        for _ in 0..3 {
            for message in generate_bounded(&reader, &mut sr, DEFAULT_MESSAGE_BUDGET) {
                ours.receive_sync_message(&mut so, message).unwrap();
            }
            for message in generate_bounded(&ours, &mut so, DEFAULT_MESSAGE_BUDGET) {
                assert_eq!(
                    encoded_size(&message),
                    0,
                    "changes sent to a read-only peer"
                );
                reader.receive_sync_message(&mut sr, message).unwrap();
            }
        }
    }

    /// A state as saved at the end of a session and read back for the next one.
    fn saved(state: &State) -> State {
        State::decode(&state.encode()).unwrap()
    }

    #[test]
    fn a_resumed_sync_carries_the_offline_changes_in_its_first_message() {
        let mut phone = long_history(3);
        let mut relay = Automerge::new();
        let mut ours = State::new();
        exchanges(&mut phone, &mut ours, &mut relay, &mut State::new());
        // Nothing new since the saved state: only heads and filters go out.
        let first = generate_bounded(&phone, &mut saved(&ours), DEFAULT_MESSAGE_BUDGET);
        assert_eq!(first.len(), 1);
        assert!(first[0].changes.is_empty());

        let mut phone = edit(&phone, 40, 100);
        let first = generate_bounded(&phone, &mut saved(&ours), DEFAULT_MESSAGE_BUDGET);
        assert_eq!(first.len(), 1);
        assert!(
            !first[0].changes.is_empty(),
            "the first message carries the changes"
        );
        let mut relay_without_state = relay.clone();
        assert_eq!(
            exchanges(&mut phone, &mut saved(&ours), &mut relay, &mut State::new()),
            1
        );
        assert_eq!(relay.get_heads(), phone.get_heads());
        // Without a saved state the peers compare what they have first.
        assert_eq!(
            exchanges(
                &mut phone,
                &mut State::new(),
                &mut relay_without_state,
                &mut State::new()
            ),
            2
        );
    }

    #[test]
    fn a_resumed_sync_with_a_peer_that_lost_changes_still_converges() {
        let base = long_history(3);
        let backup = base.clone();
        // The phone syncs changes to the relay, then the relay is restored from a backup
        // taken before them: the phone's saved state names heads the relay no longer has.
        let mut phone = edit(&base, 10, 0);
        let mut relay = base.clone();
        let mut ours = State::new();
        exchanges(&mut phone, &mut ours, &mut relay, &mut State::new());
        let mut relay = backup;
        let mut phone = edit(&phone, 10, 10);
        let mut resumed = saved(&ours);
        let taken = exchanges(&mut phone, &mut resumed, &mut relay, &mut State::new());
        assert!(taken > 1);
        assert_eq!(relay.get_heads(), phone.get_heads());
        assert_eq!(
            relay.get_changes(&[]).len(),
            phone.get_changes(&[]).len(),
            "the relay has the whole history again"
        );
    }

    #[test]
    fn parts_are_sized_by_their_compressed_bytes() {
        let budget = 4 * 1024;
        let mut doc = long_history(60);
        let whole = doc.save().len();
        let raw: usize = doc
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().len())
            .sum();
        assert!(whole > 2 * budget && raw > 4 * whole, "{whole} {raw}");
        let (mut ours, mut theirs) = (State::new(), State::new());
        let mut peer = Automerge::new();
        // Heads and filters first; the peer has nothing, so the whole history follows.
        for message in generate_bounded(&doc, &mut ours, budget) {
            peer.receive_sync_message(&mut theirs, message).unwrap();
        }
        for message in generate_bounded(&peer, &mut theirs, budget) {
            doc.receive_sync_message(&mut ours, message).unwrap();
        }
        let parts = generate_bounded(&doc, &mut ours, budget);
        let sizes: Vec<usize> = parts
            .iter()
            .map(|p| p.changes.iter().map(<[u8]>::len).sum())
            .collect();
        // Each part fits, the first too: the template travels in several small changes.
        assert!(sizes.iter().all(|&size| size <= budget), "{sizes:?}");
        // Split by raw bytes, this history would be more than `raw / budget` parts, and
        // several times the whole document on the wire.
        assert!(parts.len() < raw / budget / 2, "{sizes:?}");
        let sent: usize = sizes.iter().sum();
        assert!(
            sent * 2 < whole * 3,
            "{sent} bytes sent for a {whole}-byte document"
        );
        for part in parts {
            peer.receive_sync_message(&mut theirs, part).unwrap();
        }
        assert_eq!(peer.get_heads(), doc.get_heads());
    }
}

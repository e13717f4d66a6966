//! Bounded sync messages: a link that drops every few KB still makes progress.
//!
//! Automerge's sync sends everything a peer lacks in one message (after many offline edits,
//! or for a new document, the whole history). If the connection breaks during that
//! message, nothing arrives and the next attempt starts over. [`generate_bounded`] splits
//! such a message into parts of about `budget` bytes, in causal order: each part applies on
//! its own, the receiver stores it, and an interrupted sync resumes from what arrived.

use std::collections::{BTreeSet, HashSet};

use automerge::sync::{Message, MessageVersion, State, SyncDoc};
use automerge::{Automerge, Change, ChangeHash, ReadDoc};

/// The default size of a sync message's changes, in bytes.
pub const DEFAULT_MESSAGE_BUDGET: usize = 16 * 1024;

/// The next sync message(s) for a peer, each carrying at most about `budget` bytes of
/// changes (a single larger change goes alone). Empty when there is nothing to send.
pub fn generate_bounded(doc: &Automerge, state: &mut State, budget: usize) -> Vec<Message> {
    let sent_before: BTreeSet<ChangeHash> = state.sent_hashes.clone();
    let Some(message) = doc.generate_sync_message(state) else {
        return Vec::new();
    };
    let size: usize = message.changes.iter().map(<[u8]>::len).sum();
    if size <= budget {
        return vec![message];
    }
    let new: HashSet<ChangeHash> = state
        .sent_hashes
        .difference(&sent_before)
        .copied()
        .collect();
    // When a peer lacks much, Automerge sends the whole document; after an interrupted
    // sync the peer already has a prefix of it. Leave out what lies behind its heads.
    let their_heads: Vec<ChangeHash> = state
        .their_heads
        .iter()
        .flatten()
        .filter(|hash| doc.get_change_by_hash(hash).is_some())
        .copied()
        .collect();
    // `get_changes` lists changes in causal order, so each part's dependencies come first.
    let ordered: Vec<Change> = doc
        .get_changes(&their_heads)
        .into_iter()
        .filter(|change| new.contains(&change.hash()))
        .collect();
    if ordered.len() < 2 {
        return vec![message];
    }
    let mut parts = Vec::new();
    let mut group: Vec<Change> = Vec::new();
    let mut group_size = 0;
    for change in ordered {
        let len = change.raw_bytes().len();
        if !group.is_empty() && group_size + len > budget {
            parts.push(part(doc, &message, std::mem::take(&mut group)));
            group_size = 0;
        }
        group_size += len;
        group.push(change);
    }
    parts.push(part(doc, &message, group));
    parts
}

/// A message like `template` carrying only `group`'s changes.
fn part(doc: &Automerge, template: &Message, mut group: Vec<Change>) -> Message {
    let bundle = match template.version {
        // A V2 message carries one chunk: a compressed bundle of the group.
        MessageVersion::V2 => doc
            .bundle(group.iter().map(Change::hash))
            .ok()
            .map(|bundle| bundle.bytes().to_vec()),
        MessageVersion::V1 => None,
    };
    let changes = match bundle {
        Some(bytes) => bytes.into(),
        None => group
            .iter_mut()
            .map(|change| change.bytes().into_owned())
            .collect::<Vec<_>>()
            .into(),
    };
    Message {
        heads: template.heads.clone(),
        need: template.need.clone(),
        have: template.have.clone(),
        changes,
        flags: template.flags,
        version: template.version.clone(),
    }
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
}

//! Bytes from elsewhere into Automerge, the one way: bounded first, then read with any
//! panic caught.
//!
//! Automerge 0.12 trusts what it reads: it inflates deflated parts whole and decodes
//! columns into one element per row, however many a few bytes claim, and its column
//! decoder panics on some malformed chunks (both found by fuzzing:
//! `tests/fuzz-crashers/`). Every path that hands Automerge a peer's or a file's bytes
//! goes through [`load_untrusted`] or [`receive_untrusted`] (the sync message's changes
//! are checked by [`check_inflation`] once, before Automerge sees them), and [`untrusted`]
//! turns a panic inside into an error. A replica's own stored documents are loaded as
//! they are: they were checked on their way in.

use automerge::Automerge;
use automerge::sync::{Message, State, SyncDoc};

use crate::error::{Error, Result};
use crate::sync::check_inflation;

/// The most the changes handed to Automerge at once (one sync message, or one file
/// loaded) may take once expanded: bytes with every deflated part inflated, and rows
/// decoded counted as [`crate::sync::ROW_BYTES`] each. Automerge holds them whole before
/// anything checks a change. Four times the largest frame the relay takes (16 MiB), and
/// far above an honest message (phones send parts of 16 KiB as sent) or document (a
/// year's assessment of 10,000 changes inflates to 1.6 MB and decodes to 620,000 rows,
/// a thirteenth of the bound). The relay applies messages two per core at once, so this
/// is at most 256 MiB per core.
pub const MAX_INFLATED_BYTES: usize = 64 << 20;

/// Runs `f`, which feeds Automerge bytes from elsewhere: a panic inside it becomes
/// [`Error::Malformed`]. automerge 0.12's column decoder still panics on some malformed
/// chunks; a panic is caught where the bytes come in, and the caller drops whatever `f`
/// was changing, which may be left half-way.
pub fn untrusted<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(Error::Malformed(
            "Automerge could not read these bytes".into(),
        ))
    })
}

/// A document from saved bytes that came from elsewhere (a snapshot, optionally followed
/// by chunks).
///
/// # Errors
///
/// [`Error::Inflation`] if they would expand past [`MAX_INFLATED_BYTES`] or are not
/// Automerge chunks, before Automerge reads them; [`Error::Automerge`] or
/// [`Error::Malformed`] if Automerge refuses them.
pub fn load_untrusted(bytes: &[u8]) -> Result<Automerge> {
    check_inflation([bytes], MAX_INFLATED_BYTES)?;
    untrusted(|| Ok(Automerge::load(bytes)?))
}

/// Takes changes that came from elsewhere into `doc` (chunks or a whole document);
/// returns how many changes were new. On error `doc` may hold part of them, or be broken
/// (see [`untrusted`]): drop it.
///
/// # Errors
///
/// As [`load_untrusted`]; `doc` is untouched on [`Error::Inflation`].
pub fn load_incremental_untrusted(doc: &mut Automerge, bytes: &[u8]) -> Result<usize> {
    check_inflation([bytes], MAX_INFLATED_BYTES)?;
    untrusted(|| Ok(doc.load_incremental(bytes)?))
}

/// Applies a peer's sync message to `doc`. On error `doc` and `state` may hold part of
/// it, or be broken (see [`untrusted`]): drop them.
///
/// # Errors
///
/// As [`load_untrusted`], for the message's changes; `doc` and `state` are untouched on
/// [`Error::Inflation`].
pub fn receive_untrusted(doc: &mut Automerge, state: &mut State, message: Message) -> Result<()> {
    check_inflation(message.changes.iter(), MAX_INFLATED_BYTES)?;
    untrusted(|| Ok(doc.receive_sync_message(state, message)?))
}

#[cfg(test)]
mod tests {
    use automerge::ROOT;
    use automerge::sync::MessageVersion;
    use automerge::transaction::Transactable;

    use super::*;
    use crate::sync::{InflationError, ROW_BYTES};
    use crate::testing::{compressed_change_bomb, long_run_bundle};

    /// The 111-byte bundle whose delta column asks for gigabytes, found by fuzzing.
    const FUZZED: &[u8] =
        include_bytes!("../../tests/fuzz-crashers/document/bundle-delta-run-memory");

    fn a_note() -> Automerge {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "note", "a note").unwrap();
        tx.commit();
        doc
    }

    fn message(changes: Vec<u8>) -> Message {
        Message {
            heads: Vec::new(),
            need: Vec::new(),
            have: Vec::new(),
            changes: changes.into(),
            flags: None,
            version: MessageVersion::V1,
        }
    }

    #[test]
    fn every_way_in_refuses_the_fuzzed_bundle_before_automerge_reads_it() {
        let refused = |e| matches!(e, Error::Inflation(InflationError::TooManyRows { .. }));
        assert!(refused(load_untrusted(FUZZED).unwrap_err()));
        let mut doc = a_note();
        let heads = doc.get_heads();
        assert!(refused(
            load_incremental_untrusted(&mut doc, FUZZED).unwrap_err()
        ));
        let mut state = State::new();
        let received = receive_untrusted(&mut doc, &mut state, message(FUZZED.to_vec()));
        assert!(refused(received.unwrap_err()));
        assert_eq!(doc.get_heads(), heads);
    }

    /// The process's peak resident memory, in bytes, reset first where Linux allows.
    fn peak_rss_after_reset() -> usize {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        peak_rss()
    }

    fn peak_rss() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        let kb: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024
    }

    #[test]
    fn a_long_run_takes_automerge_8_bytes_a_row_and_is_refused_past_the_bound() {
        // A bit past the bound: Automerge alone takes 8 bytes a row, twice over.
        let rows = (MAX_INFLATED_BYTES / ROW_BYTES) as u64 + 1;
        let bundle = long_run_bundle(rows);
        assert!(bundle.len() < 32, "{} bytes", bundle.len());
        let before = peak_rss_after_reset();
        let read = Automerge::load(&bundle);
        let grown = peak_rss().saturating_sub(before);
        // A valid bundle of no changes, taken once its counters are decoded.
        assert!(read.is_ok_and(|doc| doc.get_heads().is_empty()));
        assert!(
            grown >= MAX_INFLATED_BYTES,
            "peak memory grew by {grown} bytes"
        );
        assert!(matches!(
            load_untrusted(&bundle),
            Err(Error::Inflation(InflationError::TooManyRows { .. }))
        ));
    }

    #[test]
    fn a_bomb_is_refused_and_good_bytes_are_taken() {
        let doc = a_note();
        let change = doc.get_changes(&[]).remove(0);
        let bomb = compressed_change_bomb(&change, MAX_INFLATED_BYTES);
        assert!(matches!(
            load_untrusted(&bomb),
            Err(Error::Inflation(InflationError::TooLarge { .. }))
        ));
        let loaded = load_untrusted(&doc.save()).unwrap();
        assert_eq!(loaded.get_heads(), doc.get_heads());
        let mut empty = Automerge::new();
        assert_eq!(
            load_incremental_untrusted(&mut empty, &doc.save()).unwrap(),
            1
        );
        let mut other = Automerge::new();
        let raw = change.raw_bytes().to_vec();
        receive_untrusted(&mut other, &mut State::new(), message(raw)).unwrap();
        assert_eq!(other.get_heads(), doc.get_heads());
        assert!(load_untrusted(b"not automerge").is_err());
    }
}

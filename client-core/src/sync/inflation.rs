//! How big a sync message's changes get once inflated, found out before Automerge inflates
//! them.
//!
//! Automerge 0.12 inflates DEFLATE data whole, with no bound (`read_to_end` into a `Vec`:
//! `src/storage/chunk.rs` for a compressed change, `src/storage/columns/raw_column.rs` for
//! the deflated columns of documents and bundles). DEFLATE reaches about 1000:1 on a run of
//! one byte, so a message of a few MB from a hostile peer inflates to gigabytes before any
//! check sees a change. [`check_inflation`] walks the same chunks and inflates each
//! deflated part into a counting sink through a small buffer, stopping as soon as the total
//! passes the limit: it never holds more than a few tens of KB, whatever the input.
//!
//! # The layout relied on (automerge 0.12, paths under `src/`)
//!
//! A message's changes are joined and parsed as one run of chunks
//! (`sync.rs`, `receive_sync_message`: `load_incremental(&changes.join())`), so a chunk may
//! straddle two elements of the list. Every chunk (`storage/chunk.rs`, `Header::parse`):
//!
//! `magic 85 6f 4a 83 | checksum (4 bytes) | type (1 byte) | length (uLEB128) | body`
//!
//! - type 0, a document (`storage/document.rs`, `Document::parse`): actors, heads, the
//!   change columns' metadata, the ops columns' metadata, the change columns' data, the
//!   ops columns' data, then head indices;
//! - type 1, a change: no deflated part (`storage/change.rs` refuses deflated columns);
//! - type 2, a compressed change: the body is one raw DEFLATE stream of a change's body
//!   (`storage/chunk.rs`, `Chunk::parse`);
//! - type 3, a bundle (`storage/bundle/storage.rs`, `parse_following_header`): deps,
//!   actors, the change columns' metadata and data, the ops columns' metadata and data.
//!
//! Actors are a uLEB128 count, then each a uLEB128 length and its bytes; heads and deps a
//! uLEB128 count of 32-byte hashes (`storage/parse.rs`, `actor_id`, `change_hash`). A
//! columns' metadata is a uLEB128 count, then per column a uLEB128 spec (a `u32`) and a
//! uLEB128 data length, the data following in that order (`storage/columns/raw_column.rs`,
//! `RawColumns::parse`); bit 3 of the spec marks a raw DEFLATE stream
//! (`storage/columns/column_specification.rs`, `ColumnSpec::deflate`). Checksums are left
//! to Automerge.

use std::borrow::Cow;
use std::io::{self, Read};

use flate2::bufread::DeflateDecoder;

/// The bytes every chunk starts with (`storage.rs`, `MAGIC_BYTES`).
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// The bytes of a change hash.
const HASH_BYTES: usize = 32;
/// The bit of a column spec marking deflated data.
const DEFLATE_BIT: u32 = 0b1000;

const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED_CHANGE: u8 = 2;
const BUNDLE: u8 = 3;

/// Why a message's changes were refused before being inflated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InflationError {
    /// Inflated, they would take more than `limit` bytes.
    #[error("the changes inflate to more than {limit} bytes")]
    TooLarge {
        /// The limit they pass.
        limit: usize,
    },
    /// A chunk ends before its parts do.
    #[error("a chunk of changes is cut short")]
    Truncated,
    /// A chunk does not start with Automerge's magic bytes.
    #[error("not an Automerge chunk")]
    BadMagic,
    /// A chunk of a type Automerge does not know.
    #[error("unknown chunk type {0}")]
    UnknownChunkType(u8),
    /// A uLEB128 number that is overlong or does not fit.
    #[error("a malformed number in a chunk")]
    BadNumber,
    /// Deflated data that does not inflate.
    #[error("corrupt deflated data")]
    CorruptDeflate,
}

/// The size `chunks` (a sync message's changes, [`automerge::sync::Message::changes`])
/// take once every deflated part is inflated: their bytes, with each DEFLATE stream
/// counted as what it inflates to.
///
/// # Errors
///
/// [`InflationError::TooLarge`] as soon as the total passes `limit`, having inflated at
/// most `limit + 1` bytes, into nothing; any other variant for bytes that are not Automerge
/// chunks. Never panics.
pub fn check_inflation<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    limit: usize,
) -> Result<usize, InflationError> {
    let parts: Vec<&[u8]> = chunks.into_iter().collect();
    // A chunk may straddle elements: walk them joined, as Automerge does.
    let joined = match parts.as_slice() {
        [one] => Cow::Borrowed(*one),
        _ => Cow::Owned(parts.concat()),
    };
    let mut total = Total { bytes: 0, limit };
    let mut input = Reader(&joined);
    while !input.0.is_empty() {
        let before = input.0.len();
        if input.take(MAGIC.len())? != MAGIC {
            return Err(InflationError::BadMagic);
        }
        input.take(4)?; // the checksum
        let kind = input.byte()?;
        let length = input.length()?;
        let body = input.take(length)?;
        total.add(before - input.0.len() - length)?;
        match kind {
            CHANGE => total.add(body.len())?,
            COMPRESSED_CHANGE => total.inflate(body)?,
            DOCUMENT => document(Reader(body), &mut total)?,
            BUNDLE => bundle(Reader(body), &mut total)?,
            other => return Err(InflationError::UnknownChunkType(other)),
        }
    }
    Ok(total.bytes)
}

/// Counts a document chunk's body.
fn document(mut body: Reader<'_>, total: &mut Total) -> Result<(), InflationError> {
    let whole = body.0.len();
    body.actors()?;
    body.hashes()?;
    let changes = body.columns()?;
    let ops = body.columns()?;
    let deflated = body.column_data(&changes, total)? + body.column_data(&ops, total)?;
    // The rest (prefix, plain columns, head indices) as it is.
    total.add(whole - deflated)
}

/// Counts a bundle chunk's body.
fn bundle(mut body: Reader<'_>, total: &mut Total) -> Result<(), InflationError> {
    let whole = body.0.len();
    body.hashes()?;
    body.actors()?;
    let changes = body.columns()?;
    let mut deflated = body.column_data(&changes, total)?;
    let ops = body.columns()?;
    deflated += body.column_data(&ops, total)?;
    total.add(whole - deflated)
}

/// The inflated bytes counted so far, never past `limit`.
struct Total {
    bytes: usize,
    limit: usize,
}

impl Total {
    fn add(&mut self, bytes: usize) -> Result<(), InflationError> {
        self.bytes = self
            .bytes
            .checked_add(bytes)
            .filter(|&sum| sum <= self.limit)
            .ok_or(InflationError::TooLarge { limit: self.limit })?;
        Ok(())
    }

    /// Counts what the raw DEFLATE stream `deflated` inflates to, reading one byte past
    /// the room left at most.
    fn inflate(&mut self, deflated: &[u8]) -> Result<(), InflationError> {
        let room = (self.limit - self.bytes) as u64;
        let mut capped = DeflateDecoder::new(deflated).take(room.saturating_add(1));
        // `io::copy` goes through a buffer of 8 KiB; the sink keeps nothing.
        let inflated =
            io::copy(&mut capped, &mut io::sink()).map_err(|_| InflationError::CorruptDeflate)?;
        self.add(usize::try_from(inflated).unwrap_or(usize::MAX))
    }
}

/// A cursor over a chunk's bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], InflationError> {
        if n > self.0.len() {
            return Err(InflationError::Truncated);
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, InflationError> {
        Ok(self.take(1)?[0])
    }

    /// An unsigned LEB128 number, refused where Automerge refuses it
    /// (`storage/parse/leb128.rs`, `leb128_u64`): overlong, or past 64 bits.
    fn uleb(&mut self) -> Result<u64, InflationError> {
        let (mut value, mut shift) = (0u64, 0u32);
        loop {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                if (shift > 64 && byte > 1) || (shift > 7 && byte == 0) {
                    return Err(InflationError::BadNumber);
                }
                return Ok(value);
            }
            if shift > 64 {
                return Err(InflationError::BadNumber);
            }
        }
    }

    fn length(&mut self) -> Result<usize, InflationError> {
        usize::try_from(self.uleb()?).map_err(|_| InflationError::BadNumber)
    }

    /// Skips a count of 32-byte hashes.
    fn hashes(&mut self) -> Result<(), InflationError> {
        let bytes = self
            .length()?
            .checked_mul(HASH_BYTES)
            .ok_or(InflationError::BadNumber)?;
        self.take(bytes).map(drop)
    }

    /// Skips a count of length-prefixed actor ids.
    fn actors(&mut self) -> Result<(), InflationError> {
        // Each takes a byte at least: a forged count ends at the end of the input.
        for _ in 0..self.uleb()? {
            let length = self.length()?;
            self.take(length)?;
        }
        Ok(())
    }

    /// A columns' metadata: whether each column is deflated, and its data's length.
    fn columns(&mut self) -> Result<Vec<(bool, usize)>, InflationError> {
        let mut columns = Vec::new();
        // Each takes two bytes at least: a forged count ends at the end of the input.
        for _ in 0..self.uleb()? {
            let spec = u32::try_from(self.uleb()?).map_err(|_| InflationError::BadNumber)?;
            columns.push((spec & DEFLATE_BIT != 0, self.length()?));
        }
        Ok(columns)
    }

    /// Counts the deflated columns' data of `columns` into `total`; returns the bytes they
    /// take here, deflated.
    fn column_data(
        &mut self,
        columns: &[(bool, usize)],
        total: &mut Total,
    ) -> Result<usize, InflationError> {
        let mut deflated = 0;
        for &(is_deflated, length) in columns {
            let data = self.take(length)?;
            if is_deflated {
                total.inflate(data)?;
                deflated += length;
            }
        }
        Ok(deflated)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use automerge::sync::{Message, State, SyncDoc};
    use automerge::transaction::Transactable;
    use automerge::{Automerge, ROOT};
    use proptest::prelude::*;

    use super::*;
    use crate::sync::{DEFAULT_MESSAGE_BUDGET, generate_bounded};
    use crate::testing::compressed_change_bomb;

    const MB: usize = 1 << 20;

    /// Text that deflates, though not to nothing: `bytes` of words from a small list.
    fn prose(bytes: usize, seed: usize) -> String {
        let words = [
            "ward",
            "police",
            "criterion",
            "met",
            "photo",
            "meeting",
            "log",
        ];
        let mut text = String::new();
        let mut n = seed;
        while text.len() < bytes {
            n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            text.push_str(words[(n >> 33) % words.len()]);
            text.push(' ');
        }
        text.truncate(bytes);
        text
    }

    /// A document with one change per text, each setting a note to it.
    fn document(texts: &[String]) -> Automerge {
        let mut doc = Automerge::new();
        for text in texts {
            let mut tx = doc.transaction();
            tx.put(ROOT, "note", text.as_str()).unwrap();
            tx.commit();
        }
        doc
    }

    fn assert_close(inflated: usize, truth: usize) {
        assert!(
            inflated.abs_diff(truth) * 50 <= truth,
            "{inflated} bytes counted, {truth} true"
        );
    }

    #[test]
    fn a_compressed_change_counts_as_its_uncompressed_bytes() {
        let mut change = document(&[prose(100_000, 1)]).get_changes(&[]).remove(0);
        let raw = change.raw_bytes().len();
        let sent = change.bytes().into_owned();
        assert_eq!(sent[8], COMPRESSED_CHANGE);
        assert!(sent.len() * 3 < raw, "{} of {raw}", sent.len());
        assert_close(check_inflation([sent.as_slice()], MB).unwrap(), raw);
    }

    #[test]
    fn a_saved_document_counts_as_saved_uncompressed() {
        let doc = document(&[prose(50_000, 2), prose(80_000, 3), "short".into()]);
        let (saved, whole) = (doc.save(), doc.save_nocompress());
        assert!(saved.len() * 3 < whole.len(), "columns are deflated");
        assert_close(
            check_inflation([saved.as_slice()], MB).unwrap(),
            whole.len(),
        );
        assert_close(
            check_inflation([whole.as_slice()], MB).unwrap(),
            whole.len(),
        );
    }

    #[test]
    fn bounded_bundles_count_as_the_text_they_carry() {
        let texts: Vec<String> = (0..12).map(|n| prose(30_000, n)).collect();
        let mut doc = document(&texts);
        // Heads first: then the relay knows the peer has nothing, and bundles follow.
        let (mut ours, mut theirs, mut peer) = (State::new(), State::new(), Automerge::new());
        for message in generate_bounded(&doc, &mut ours, DEFAULT_MESSAGE_BUDGET) {
            peer.receive_sync_message(&mut theirs, message).unwrap();
        }
        for message in generate_bounded(&peer, &mut theirs, DEFAULT_MESSAGE_BUDGET) {
            doc.receive_sync_message(&mut ours, message).unwrap();
        }
        let parts = generate_bounded(&doc, &mut ours, DEFAULT_MESSAGE_BUDGET);
        let (mut sent, mut inflated) = (0, 0);
        for part in &parts {
            let chunks: Vec<&[u8]> = part.changes.iter().collect();
            assert!(chunks.iter().all(|chunk| chunk[8] == BUNDLE));
            sent += chunks.iter().map(|chunk| chunk.len()).sum::<usize>();
            inflated += check_inflation(chunks, MB).unwrap();
        }
        assert!(sent * 3 < inflated, "{sent} sent");
        let text: usize = texts.iter().map(String::len).sum();
        assert!(
            (text..text + text / 50).contains(&inflated),
            "{inflated} bytes counted for {text} of text"
        );
    }

    #[test]
    fn a_chunk_straddling_elements_counts_as_joined() {
        let changes = document(&[prose(5_000, 4), prose(6_000, 5)]).get_changes(&[]);
        let joined: Vec<u8> = changes
            .iter()
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect();
        let whole = check_inflation([joined.as_slice()], MB).unwrap();
        assert_eq!(whole, joined.len());
        let (a, b) = joined.split_at(joined.len() / 3);
        assert_eq!(check_inflation([a, b], MB), Ok(whole));
        let each = changes.iter().map(|c| c.raw_bytes());
        assert_eq!(check_inflation(each, MB), Ok(whole));
        assert_eq!(check_inflation([], MB), Ok(0));
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
    fn a_bomb_is_refused_without_being_inflated() {
        let change = document(&["a note".into()]).get_changes(&[]).remove(0);
        let bomb = compressed_change_bomb(&change, 200 * MB);
        assert!(bomb.len() < MB / 2, "{} bytes", bomb.len());
        let before = peak_rss_after_reset();
        let refused = check_inflation([bomb.as_slice()], 10 * MB);
        let grown = peak_rss().saturating_sub(before);
        assert_eq!(refused, Err(InflationError::TooLarge { limit: 10 * MB }));
        // Automerge would hold it twice over (inflated, then copied behind a header).
        assert!(grown < 16 * MB, "peak memory grew by {grown} bytes");
        // Under a limit above its size it counts what it is.
        let counted = check_inflation([bomb.as_slice()], 256 * MB).unwrap();
        assert_close(counted, 200 * MB);
    }

    #[test]
    fn the_bomb_builder_makes_a_change_automerge_takes() {
        let doc = document(&["a note".into()]);
        let change = doc.get_changes(&[]).remove(0);
        let bomb = compressed_change_bomb(&change, MB);
        let mut copy = Automerge::new();
        copy.load_incremental(&bomb).unwrap();
        let taken = copy.get_changes(&[]).remove(0);
        assert_eq!(taken.extra_bytes().len(), MB);
        assert_close(
            check_inflation([bomb.as_slice()], 2 * MB).unwrap(),
            taken.raw_bytes().len(),
        );
    }

    /// Real messages' changes: a compressed change, a saved document, a bundle.
    fn samples() -> &'static [Vec<u8>] {
        static SAMPLES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        SAMPLES.get_or_init(|| {
            let doc = document(&[prose(3_000, 6), prose(2_000, 7)]);
            let mut change = doc.get_changes(&[]).remove(0);
            let hashes = doc
                .get_changes(&[])
                .iter()
                .map(|c| c.hash())
                .collect::<Vec<_>>();
            vec![
                change.bytes().into_owned(),
                doc.save(),
                doc.bundle(hashes).unwrap().bytes().to_vec(),
            ]
        })
    }

    #[test]
    fn cut_or_foreign_bytes_are_errors() {
        for sample in samples() {
            for end in 1..sample.len() {
                assert!(
                    check_inflation([&sample[..end]], MB).is_err(),
                    "cut at {end}"
                );
            }
        }
        let message = Message::decode(&Message::encode(Message {
            heads: Vec::new(),
            need: Vec::new(),
            have: Vec::new(),
            changes: vec![b"not a chunk at all".to_vec()].into(),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        }))
        .unwrap();
        assert_eq!(
            check_inflation(message.changes.iter(), MB),
            Err(InflationError::BadMagic)
        );
        let mut unknown = samples()[0].clone();
        unknown[8] = 7;
        assert_eq!(
            check_inflation([unknown.as_slice()], MB),
            Err(InflationError::UnknownChunkType(7))
        );
    }

    proptest! {
        #[test]
        fn mutated_messages_never_panic(
            which in 0..3usize,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
        ) {
            let mut bytes = samples()[which].clone();
            for (at, byte) in edits {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            let _ = check_inflation([bytes.as_slice()], MB);
        }
    }
}

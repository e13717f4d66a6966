//! The inflation check against real Automerge chunks, bombs, cut bytes and fuzzed runs.

use std::sync::OnceLock;

use automerge::sync::{Message, State, SyncDoc};
use automerge::transaction::Transactable;
use std::io::Write;

use automerge::{Automerge, ObjType, ROOT};
use flate2::Compression;
use flate2::write::DeflateEncoder;
use proptest::prelude::*;

use super::*;
use crate::sync::{DEFAULT_MESSAGE_BUDGET, generate_bounded};
use crate::testing::compressed_change_bomb;
use crate::testing::{sleb, uleb};

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
    assert_close(check_inflation([sent.as_slice()], MB).unwrap().bytes, raw);
}

#[test]
fn a_saved_document_counts_as_saved_uncompressed() {
    let doc = document(&[prose(50_000, 2), prose(80_000, 3), "short".into()]);
    let (saved, whole) = (doc.save(), doc.save_nocompress());
    assert!(saved.len() * 3 < whole.len(), "columns are deflated");
    assert_close(
        check_inflation([saved.as_slice()], MB).unwrap().bytes,
        whole.len(),
    );
    assert_close(
        check_inflation([whole.as_slice()], MB).unwrap().bytes,
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
        inflated += check_inflation(chunks, MB).unwrap().bytes;
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
    assert_eq!(whole.bytes, joined.len());
    let (a, b) = joined.split_at(joined.len() / 3);
    assert_eq!(check_inflation([a, b], MB), Ok(whole));
    let each = changes.iter().map(|c| c.raw_bytes());
    assert_eq!(check_inflation(each, MB), Ok(whole));
    assert_eq!(check_inflation([], MB), Ok(Inflated { bytes: 0, rows: 0 }));
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
    let counted = check_inflation([bomb.as_slice()], 256 * MB).unwrap().bytes;
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
        check_inflation([bomb.as_slice()], 2 * MB).unwrap().bytes,
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
            typed_text().save(),
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

/// A chunk of `kind` around `body`, its checksum left to Automerge.
fn chunk(kind: u8, body: &[u8]) -> Vec<u8> {
    [&MAGIC[..], &[0; 4], &[kind], &uleb(body.len() as u64), body].concat()
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A columns' metadata and data: one column of `spec` holding `data`.
fn one_column(spec: u32, data: &[u8]) -> Vec<u8> {
    [
        &uleb(1)[..],
        &uleb(spec.into()),
        &uleb(data.len() as u64),
        data,
    ]
    .concat()
}

/// The body of a change by actor `ab` with no deps, message or other actors.
fn change_body(ops: &[u8]) -> Vec<u8> {
    let header = [
        &uleb(0)[..],
        &uleb(2),
        b"ab",
        &uleb(1),
        &uleb(1),
        &sleb(0),
        &uleb(0),
    ];
    [&header.concat()[..], &uleb(0), ops].concat()
}

/// A delta column (an op's counter) that is one run of 2^40 rows, in seven bytes.
fn long_run() -> Vec<u8> {
    [sleb(1 << 40), sleb(1)].concat()
}

const DELTA_SPEC: u32 = 2 << 4 | 3;

const LIMIT: usize = 64 << 20;
const ROW_LIMIT: u64 = (LIMIT / ROW_BYTES) as u64;

#[test]
fn the_fuzzed_bundle_is_refused_for_its_rows_holding_nothing() {
    let fuzzed = include_bytes!("../../../tests/fuzz-crashers/document/bundle-delta-run-memory");
    assert_eq!(fuzzed.len(), 111);
    assert_eq!(fuzzed[8], BUNDLE);
    // Once before measuring: the code it runs is paged in (resident pages of the binary
    // count too), so what is measured is what the check allocates.
    let _ = check_inflation([fuzzed.as_slice()], LIMIT);
    let before = peak_rss_after_reset();
    let refused = check_inflation([fuzzed.as_slice()], LIMIT);
    let grown = peak_rss().saturating_sub(before);
    assert_eq!(
        refused,
        Err(InflationError::TooManyRows { limit: ROW_LIMIT })
    );
    assert!(grown < 4 * MB, "peak memory grew by {grown} bytes");
}

#[test]
fn a_long_run_is_refused_in_every_kind_of_chunk() {
    let run = long_run();
    let plain = one_column(DELTA_SPEC, &run);
    let deflated = one_column(DELTA_SPEC | DEFLATE_BIT, &deflate(&run));
    let nothing = uleb(0);
    let chunks = [
        // A document's op column, plain and deflated.
        chunk(
            DOCUMENT,
            &[&nothing[..], &nothing, &nothing, &plain].concat(),
        ),
        chunk(
            DOCUMENT,
            &[&nothing[..], &nothing, &nothing, &deflated].concat(),
        ),
        // A bundle's op column.
        chunk(BUNDLE, &[&nothing[..], &nothing, &nothing, &plain].concat()),
        // A change's, plain and compressed.
        chunk(CHANGE, &change_body(&plain)),
        chunk(COMPRESSED_CHANGE, &deflate(&change_body(&plain))),
    ];
    for bytes in &chunks {
        assert_eq!(
            check_inflation([bytes.as_slice()], LIMIT),
            Err(InflationError::TooManyRows { limit: ROW_LIMIT }),
            "chunk type {}",
            bytes[8]
        );
    }
    // A short run is taken: its 3 rows, and its column.
    let short = [sleb(3), sleb(1)].concat();
    let taken = chunk(CHANGE, &change_body(&one_column(DELTA_SPEC, &short)));
    assert_eq!(check_inflation([taken.as_slice()], LIMIT).unwrap().rows, 4);
}

#[test]
fn more_columns_than_automerge_writes_are_refused() {
    let specs: Vec<u8> = (0..=MAX_COLUMNS)
        .flat_map(|id| [uleb(id << 4 | 7), uleb(0)].concat())
        .collect();
    let body = [&uleb(0)[..], &uleb(0), &uleb(MAX_COLUMNS + 1), &specs].concat();
    assert_eq!(
        check_inflation([chunk(BUNDLE, &body).as_slice()], LIMIT),
        Err(InflationError::TooManyColumns)
    );
}

/// A document with a text typed in one change, then most of it deleted in another.
fn typed_text() -> Automerge {
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    let text = tx.put_object(ROOT, "text", ObjType::Text).unwrap();
    tx.splice_text(&text, 0, 0, &prose(20_000, 8)).unwrap();
    tx.commit();
    let mut tx = doc.transaction();
    tx.splice_text(&text, 100, 15_000, "").unwrap();
    tx.commit();
    doc
}

#[test]
fn real_chunks_decode_to_rows_in_proportion_to_their_ops() {
    let doc = typed_text();
    let changes = doc.get_changes(&[]);
    let ops: usize = changes.iter().map(|c| c.len()).sum();
    assert!(ops > 35_000, "{ops} ops");
    let hashes: Vec<_> = changes.iter().map(|c| c.hash()).collect();
    let mut first = changes[0].clone();
    let forms = [
        ("saved", doc.save()),
        ("saved uncompressed", doc.save_nocompress()),
        (
            "changes",
            changes
                .iter()
                .flat_map(|c| c.raw_bytes().to_vec())
                .collect(),
        ),
        ("bundle", doc.bundle(hashes).unwrap().bytes().to_vec()),
    ];
    for (form, bytes) in &forms {
        let rows = check_inflation([bytes.as_slice()], LIMIT).unwrap().rows;
        // A row of each of some 16 columns per op, at most, and their groups.
        assert!(
            (ops as u64..40 * ops as u64).contains(&rows),
            "{form}: {rows} rows for {ops} ops"
        );
    }
    let compressed = first.bytes().into_owned();
    assert_eq!(compressed[8], COMPRESSED_CHANGE);
    let rows = check_inflation([compressed.as_slice()], LIMIT)
        .unwrap()
        .rows;
    assert!(rows >= first.len() as u64, "{rows} rows");
}

proptest! {
    #[test]
    fn mutated_messages_never_panic(
        which in 0..4usize,
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

    #[test]
    fn any_body_is_counted_or_refused_within_the_bounds(
        kind in 0..4u8,
        deflated in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let body = if deflated { deflate(&body) } else { body };
        if let Ok(counted) = check_inflation([chunk(kind, &body).as_slice()], MB) {
            prop_assert!(counted.bytes <= MB);
            prop_assert!(counted.rows <= (MB / ROW_BYTES) as u64);
        }
    }
}

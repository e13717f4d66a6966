//! How much a sync message's changes expand to inside Automerge, found out before
//! Automerge decodes them: bytes once inflated, and rows once the columns are decoded.
//!
//! Automerge 0.12 trusts both sizes. It inflates DEFLATE data whole, with no bound
//! (`read_to_end` into a `Vec`: `src/storage/chunk.rs` for a compressed change,
//! `src/storage/columns/raw_column.rs` for the deflated columns of documents and
//! bundles); DEFLATE reaches about 1000:1 on a run of one byte, so a message of a few MB
//! from a hostile peer inflates to gigabytes. And it decodes a column's runs into one
//! element per row (`storage/bundle/storage.rs`, `decode_delta_int`, then
//! `vec![0i64; inverse.len()]`), where a run of 2^35 rows takes six bytes: the 111-byte
//! bundle fuzzing found asks for 256 GiB
//! (`tests/fuzz-crashers/document/bundle-delta-run-memory`).
//!
//! [`check_inflation`] walks the same chunks once, inflating each deflated part through a
//! small buffer and walking every column's runs as they come ([`columns`]), counting
//! bytes and rows and stopping as soon as either passes its bound: it holds a few tens of
//! KB, whatever the input.
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
//! - type 1, a change (`storage/change.rs`, `parse_following_header`): deps, actor, seq,
//!   start op, time (sLEB128), message, other actors, the ops columns' metadata and data,
//!   then extra bytes;
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

mod columns;
mod stream;

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::DeflateDecoder;

use stream::Stream;

/// The bytes every chunk starts with (`storage.rs`, `MAGIC_BYTES`).
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// The bytes of a change hash.
const HASH_BYTES: u64 = 32;
/// The bit of a column spec marking deflated data.
const DEFLATE_BIT: u32 = 0b1000;
/// The most columns one chunk's metadata may list. Automerge writes 16 op columns and 9
/// change columns; the walk keeps each listed column's spec and length until its data
/// comes, and Automerge keeps a range per column.
const MAX_COLUMNS: u64 = 256;

/// What one row of a decoded column is counted as against the byte limit: the 8 bytes
/// of the `i64` Automerge holds per row where it materialises a column
/// (`storage/bundle/storage.rs`: `decode_delta_int`, then as many counters again). So the
/// rows a message may decode to are bounded by the same limit as the bytes it inflates
/// to, `limit / ROW_BYTES`: 8 Mi rows for 64 MiB, about 500,000 ops (an op is a row of
/// each of some 16 columns), twenty times a change of the most ops the change policy
/// takes (`policy::limits::OPS_PER_CHANGE`).
pub const ROW_BYTES: usize = 8;

const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED_CHANGE: u8 = 2;
const BUNDLE: u8 = 3;

/// Why a message's changes were refused before Automerge decoded them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InflationError {
    /// Inflated, they would take more than `limit` bytes.
    #[error("the changes inflate to more than {limit} bytes")]
    TooLarge {
        /// The limit they pass.
        limit: usize,
    },
    /// Decoded, their columns would have more than `limit` rows (group members, actors,
    /// hashes and columns counted as rows too).
    #[error("the changes decode to more than {limit} rows")]
    TooManyRows {
        /// The limit they pass.
        limit: u64,
    },
    /// A chunk lists more than [`MAX_COLUMNS`] columns.
    #[error("a chunk of changes has more than {MAX_COLUMNS} columns")]
    TooManyColumns,
    /// A chunk ends before its parts do.
    #[error("a chunk of changes is cut short")]
    Truncated,
    /// A chunk does not start with Automerge's magic bytes.
    #[error("not an Automerge chunk")]
    BadMagic,
    /// A chunk of a type Automerge does not know.
    #[error("unknown chunk type {0}")]
    UnknownChunkType(u8),
    /// A LEB128 number that is overlong or does not fit.
    #[error("a malformed number in a chunk")]
    BadNumber,
    /// Deflated data that does not inflate.
    #[error("corrupt deflated data")]
    CorruptDeflate,
}

/// What a message's changes expand to, as [`check_inflation`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inflated {
    /// Their bytes, each DEFLATE stream counted as what it inflates to.
    pub bytes: usize,
    /// The rows of all their columns, with group members, actors, hashes and columns.
    pub rows: u64,
}

/// What `chunks` (a sync message's changes, [`automerge::sync::Message::changes`], or
/// saved bytes) expand to inside Automerge: every deflated part inflated, and every
/// column decoded into rows.
///
/// # Errors
///
/// [`InflationError::TooLarge`] as soon as the bytes pass `limit`, having inflated at most
/// `limit + 1` bytes, into nothing; [`InflationError::TooManyRows`] as soon as the rows
/// pass `limit / ROW_BYTES`, having decoded none; any other variant for bytes that are not
/// Automerge chunks. Never panics, and holds a few tens of KB whatever the input.
pub fn check_inflation<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    limit: usize,
) -> Result<Inflated, InflationError> {
    let parts: Vec<&[u8]> = chunks.into_iter().collect();
    // A chunk may straddle elements: walk them joined, as Automerge does.
    let joined = match parts.as_slice() {
        [one] => Cow::Borrowed(*one),
        _ => Cow::Owned(parts.concat()),
    };
    let mut total = Total::new(limit, (limit / ROW_BYTES) as u64);
    let mut input = Stream::new(&*joined);
    while !input.at_end()? {
        let start = input.consumed();
        for byte in MAGIC {
            if input.byte()? != byte {
                return Err(InflationError::BadMagic);
            }
        }
        input.skip(4)?; // the checksum
        let kind = input.byte()?;
        let length = input.uleb()?;
        total.add(input.consumed() - start)?;
        let mut body = Stream::new((&mut input).take(length));
        let deflated = match kind {
            CHANGE => change(&mut body, &mut total)?,
            COMPRESSED_CHANGE => {
                inflate(&mut body, &mut total, |inflated, total| {
                    change(inflated, total)
                })?;
                body.skip_rest()?;
                body.consumed()
            }
            DOCUMENT => document(&mut body, &mut total)?,
            BUNDLE => bundle(&mut body, &mut total)?,
            other => return Err(InflationError::UnknownChunkType(other)),
        };
        // The rest (head indices, extra bytes) is plain.
        body.skip_rest()?;
        if body.consumed() != length {
            return Err(InflationError::Truncated);
        }
        total.add(body.consumed() - deflated)?;
    }
    Ok(Inflated {
        bytes: total.bytes,
        rows: total.rows,
    })
}

/// Walks a document chunk's body; returns the bytes of it that were deflated.
fn document<R: BufRead>(body: &mut Stream<R>, total: &mut Total) -> Result<u64, InflationError> {
    actors(body, total)?;
    hashes(body, total)?;
    let changes = columns(body, total)?;
    let ops = columns(body, total)?;
    Ok(column_data(body, &changes, total)? + column_data(body, &ops, total)?)
}

/// Walks a bundle chunk's body; returns the bytes of it that were deflated.
fn bundle<R: BufRead>(body: &mut Stream<R>, total: &mut Total) -> Result<u64, InflationError> {
    hashes(body, total)?;
    actors(body, total)?;
    let changes = columns(body, total)?;
    let mut deflated = column_data(body, &changes, total)?;
    let ops = columns(body, total)?;
    deflated += column_data(body, &ops, total)?;
    Ok(deflated)
}

/// Walks a change chunk's body, up to its extra bytes; returns the bytes of it that were
/// deflated (Automerge refuses deflated columns in a change, but they are counted alike).
fn change<R: BufRead>(body: &mut Stream<R>, total: &mut Total) -> Result<u64, InflationError> {
    hashes(body, total)?;
    let actor = body.uleb()?;
    body.skip(actor)?;
    body.uleb()?; // seq
    body.uleb()?; // start op
    body.sleb()?; // time
    let message = body.uleb()?;
    body.skip(message)?;
    actors(body, total)?;
    let ops = columns(body, total)?;
    column_data(body, &ops, total)
}

/// A count of 32-byte hashes.
fn hashes<R: BufRead>(body: &mut Stream<R>, total: &mut Total) -> Result<(), InflationError> {
    let count = body.uleb()?;
    total.add_rows(count)?;
    body.skip(
        count
            .checked_mul(HASH_BYTES)
            .ok_or(InflationError::BadNumber)?,
    )
}

/// A count of length-prefixed actor ids.
fn actors<R: BufRead>(body: &mut Stream<R>, total: &mut Total) -> Result<(), InflationError> {
    let count = body.uleb()?;
    total.add_rows(count)?;
    // Each takes a byte at least: a forged count ends at the end of the input.
    for _ in 0..count {
        let length = body.uleb()?;
        body.skip(length)?;
    }
    Ok(())
}

/// A columns' metadata: each column's spec and data length.
fn columns<R: BufRead>(
    body: &mut Stream<R>,
    total: &mut Total,
) -> Result<Vec<(u32, u64)>, InflationError> {
    let count = body.uleb()?;
    if count > MAX_COLUMNS {
        return Err(InflationError::TooManyColumns);
    }
    total.add_rows(count)?;
    let mut columns = Vec::new();
    for _ in 0..count {
        let spec = u32::try_from(body.uleb()?).map_err(|_| InflationError::BadNumber)?;
        columns.push((spec, body.uleb()?));
    }
    Ok(columns)
}

/// Walks the data of `columns`, counting their rows and what the deflated ones inflate
/// to into `total`; returns the bytes the deflated ones take here.
fn column_data<R: BufRead>(
    body: &mut Stream<R>,
    columns: &[(u32, u64)],
    total: &mut Total,
) -> Result<u64, InflationError> {
    let mut deflated = 0;
    for &(spec, length) in columns {
        let mut data = Stream::new((&mut *body).take(length));
        if spec & DEFLATE_BIT == 0 {
            columns::count_rows(spec, &mut data, total)?;
        } else {
            inflate(&mut data, total, |inflated, total| {
                columns::count_rows(spec, inflated, total).map(|()| 0)
            })?;
            deflated += length;
        }
        data.skip_rest()?;
        if data.consumed() != length {
            return Err(InflationError::Truncated);
        }
    }
    Ok(deflated)
}

/// A raw DEFLATE stream read through as it inflates, never more than one byte past the
/// room left.
type Inflating<'a, R> = Stream<BufReader<io::Take<DeflateDecoder<&'a mut Stream<R>>>>>;

/// Walks what the raw DEFLATE stream at the start of `deflated` inflates to with `walk`
/// (which returns the bytes it counted itself, as inflated further), then counts the
/// inflated bytes. [`InflationError::TooLarge`] comes first: a walk cut off at the room
/// left says nothing else.
fn inflate<R: BufRead>(
    deflated: &mut Stream<R>,
    total: &mut Total,
    walk: impl FnOnce(&mut Inflating<'_, R>, &mut Total) -> Result<u64, InflationError>,
) -> Result<(), InflationError> {
    let room = (total.limit - total.bytes) as u64;
    let decoder = DeflateDecoder::new(deflated).take(room.saturating_add(1));
    let mut inflated = Stream::new(BufReader::new(decoder));
    let walked = walk(&mut inflated, total);
    if let Err(e) = &walked
        && *e != InflationError::Truncated
    {
        // Not where the room left cut it off: no need to inflate the rest.
        return Err(e.clone());
    }
    let rest = inflated.skip_rest();
    let counted_inside = *walked.as_ref().unwrap_or(&0);
    total.add(inflated.consumed().saturating_sub(counted_inside))?;
    rest?;
    walked.map(drop)
}

/// The bytes and rows counted so far, never past their bounds.
struct Total {
    bytes: usize,
    limit: usize,
    rows: u64,
    row_limit: u64,
}

impl Total {
    fn new(limit: usize, row_limit: u64) -> Self {
        Self {
            bytes: 0,
            limit,
            rows: 0,
            row_limit,
        }
    }

    fn add(&mut self, bytes: u64) -> Result<(), InflationError> {
        self.bytes = usize::try_from(bytes)
            .ok()
            .and_then(|bytes| self.bytes.checked_add(bytes))
            .filter(|&sum| sum <= self.limit)
            .ok_or(InflationError::TooLarge { limit: self.limit })?;
        Ok(())
    }

    fn add_rows(&mut self, rows: u64) -> Result<(), InflationError> {
        self.rows = self
            .rows
            .checked_add(rows)
            .filter(|&sum| sum <= self.row_limit)
            .ok_or(InflationError::TooManyRows {
                limit: self.row_limit,
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

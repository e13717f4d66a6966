//! How many rows a column's data decodes to, found out by walking its runs: a run's
//! length is added to the count before anything else, so a run of 2^60 is refused at
//! its first bytes, and nothing is ever held per row.
//!
//! # The encodings relied on (automerge 0.12 `storage/columns/`, hexane 1.0.0-alpha.5)
//!
//! The column type is the low 3 bits of the spec (`column_specification.rs`,
//! `ColumnType`). RLE columns are runs, each a signed LEB128 count then (hexane
//! `rle/decoder.rs`, `try_next_segment`):
//!
//! - count > 0: one value, repeated count times;
//! - count < 0: -count values, each written out;
//! - count = 0: an unsigned LEB128 count of nulls.
//!
//! Values are LEB128 numbers (group, actor, integer and value-metadata columns unsigned,
//! delta columns signed: the differences), or strings as a LEB128 length and UTF-8 bytes.
//! A boolean column is unsigned LEB128 counts of false, true, false... (hexane `bool.rs`).
//! A value column is raw bytes, sliced by the lengths in its metadata column: it expands
//! to nothing more than its bytes, which are counted as bytes.
//!
//! A group column's values are how many entries each row has in the columns of its group
//! (an op's predecessors, a change's dependencies): Automerge reserves room for that many
//! before reading them (`storage/bundle/builder.rs`, `Vec::with_capacity(pred_count)`),
//! so they count as rows too.

use std::io::BufRead;

use super::stream::Stream;
use super::{InflationError, Total};

/// The bits of a column spec that give its type.
const TYPE_BITS: u32 = 0b111;
const GROUP: u32 = 0;
const DELTA: u32 = 3;
const BOOLEAN: u32 = 4;
const STRING: u32 = 5;
const VALUE: u32 = 7;

/// Adds the rows of a column of type `spec` whose data is `data` (to its end) to
/// `total`; refuses as soon as they pass its bound.
pub(super) fn count_rows<R: BufRead>(
    spec: u32,
    data: &mut Stream<R>,
    total: &mut Total,
) -> Result<(), InflationError> {
    let kind = spec & TYPE_BITS;
    if kind == VALUE {
        return Ok(());
    }
    while !data.at_end()? {
        if kind == BOOLEAN {
            total.add_rows(data.uleb()?)?;
        } else {
            run(kind, data, total)?;
        }
    }
    Ok(())
}

/// One run of an RLE column of type `kind`.
fn run<R: BufRead>(
    kind: u32,
    data: &mut Stream<R>,
    total: &mut Total,
) -> Result<(), InflationError> {
    let count = data.sleb()?;
    match count {
        1.. => {
            let count = count.unsigned_abs();
            total.add_rows(count)?;
            let members = value(kind, data)?;
            total.add_rows(count.saturating_mul(members))
        }
        ..0 => {
            let count = count.unsigned_abs();
            total.add_rows(count)?;
            // Each value takes a byte at least: a forged count ends at the end of the data.
            for _ in 0..count {
                let members = value(kind, data)?;
                total.add_rows(members)?;
            }
            Ok(())
        }
        0 => total.add_rows(data.uleb()?),
    }
}

/// Reads past one value of a column of type `kind`; returns the members it stands for
/// in its group (0 but in a group column).
fn value<R: BufRead>(kind: u32, data: &mut Stream<R>) -> Result<u64, InflationError> {
    match kind {
        GROUP => data.uleb(),
        STRING => {
            let length = data.uleb()?;
            data.skip(length)?;
            Ok(0)
        }
        DELTA => {
            data.sleb()?;
            Ok(0)
        }
        _ => {
            data.skip_leb()?;
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{sleb, uleb};

    const ACTOR: u32 = 1;
    const INTEGER: u32 = 2;

    /// The rows `data` counts as in a column of type `kind`, under a bound of `rows`.
    fn rows(kind: u32, data: &[u8], rows: u64) -> Result<u64, InflationError> {
        let mut total = Total::new(usize::MAX, rows);
        count_rows(kind, &mut Stream::new(data), &mut total)?;
        Ok(total.rows)
    }

    fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn runs_literals_and_nulls_count_their_rows() {
        // 3 × 7, then 2 written out, then 4 nulls.
        let data = cat(&[
            sleb(3),
            uleb(7),
            sleb(-2),
            uleb(1),
            uleb(300),
            sleb(0),
            uleb(4),
        ]);
        assert_eq!(rows(INTEGER, &data, 100), Ok(9));
        let strings = cat(&[sleb(2), uleb(3), b"abc".to_vec(), sleb(-1), uleb(0)]);
        assert_eq!(rows(STRING, &strings, 100), Ok(3));
        let deltas = cat(&[sleb(5), sleb(1), sleb(-2), sleb(-3), sleb(40)]);
        assert_eq!(rows(DELTA, &deltas, 100), Ok(7));
        // 2 false, 3 true, 0 false, 1 true.
        let booleans = cat(&[uleb(2), uleb(3), uleb(0), uleb(1)]);
        assert_eq!(rows(BOOLEAN, &booleans, 100), Ok(6));
        assert_eq!(rows(VALUE, &[0xff; 40], 1), Ok(0));
        assert_eq!(rows(ACTOR, &[], 0), Ok(0));
    }

    #[test]
    fn a_group_counts_its_members_too() {
        // Two ops with 3 predecessors each, then one with 5.
        let data = cat(&[sleb(2), uleb(3), sleb(-1), uleb(5)]);
        assert_eq!(rows(GROUP, &data, 100), Ok(3 + 6 + 5));
        let forged = cat(&[sleb(1), uleb(1 << 40)]);
        assert!(matches!(
            rows(GROUP, &forged, 1 << 20),
            Err(InflationError::TooManyRows { .. })
        ));
        let overflow = cat(&[sleb(1 << 40), uleb(1 << 40)]);
        assert!(rows(GROUP, &overflow, u64::MAX - 1).is_err());
    }

    #[test]
    fn a_long_run_is_refused_at_its_count() {
        let runs = [
            cat(&[sleb(1 << 60), uleb(1)]),
            cat(&[sleb(0), uleb(1 << 60)]),
            cat(&[sleb(i64::MIN)]),
        ];
        for kind in [GROUP, ACTOR, INTEGER, DELTA, STRING, 6] {
            for data in &runs {
                let counted = rows(kind, data, 1 << 23);
                assert_eq!(counted, Err(InflationError::TooManyRows { limit: 1 << 23 }));
            }
        }
        let booleans = cat(&[uleb(0), uleb(1 << 60)]);
        assert_eq!(
            rows(BOOLEAN, &booleans, 1 << 23),
            Err(InflationError::TooManyRows { limit: 1 << 23 })
        );
        assert_eq!(rows(VALUE, &runs[0], 1 << 23), Ok(0));
    }

    #[test]
    fn cut_values_are_errors() {
        let literal = cat(&[sleb(-3), uleb(1)]);
        assert_eq!(rows(INTEGER, &literal, 100), Err(InflationError::Truncated));
        let string = cat(&[sleb(1), uleb(10), b"abc".to_vec()]);
        assert_eq!(rows(STRING, &string, 100), Err(InflationError::Truncated));
        assert_eq!(rows(INTEGER, &[0x85], 100), Err(InflationError::Truncated));
    }

    proptest! {
        #[test]
        fn any_bytes_are_counted_or_refused_within_the_bound(
            kind in 0..8u32,
            data in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            if let Ok(counted) = rows(kind, &data, 1 << 20) {
                prop_assert!(counted <= 1 << 20);
            }
        }
    }
}

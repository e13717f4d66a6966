//! A peer's Bloom filters, checked before Automerge uses them.
//!
//! A sync message says what its sender has as Bloom filters ([`Have`]), which Automerge
//! keeps in the sync state and probes when it generates the answer. Automerge 0.12 takes
//! their parameters as sent: a filter with entries but no bits divides by zero (a panic),
//! and one asking for billions of probes allocates a `u32` for each, for every change
//! checked (memory without end). Such filters are forgotten; without its filter the peer
//! is sent every change after its last sync: more bytes, never a wrong answer.

use automerge::sync::{BloomFilter, State};

/// Most probes per hash a peer's filter may ask for (Automerge's own filters use 7).
const MAX_BLOOM_PROBES: u32 = 64;

/// Replaces every filter of the peer's in `state` that Automerge cannot probe safely by
/// an empty one.
pub(crate) fn forget_unusable_filters(state: &mut State) {
    for have in state.their_have.iter_mut().flatten() {
        if !is_usable(&have.bloom.to_bytes()) {
            have.bloom = BloomFilter::default();
        }
    }
}

/// Whether a filter, as encoded (LEB128 entries, bits per entry and probes, then the
/// bits; nothing at all for no entries), has bits to probe and a sane number of probes.
fn is_usable(encoded: &[u8]) -> bool {
    let mut rest = encoded;
    if rest.is_empty() {
        return true;
    }
    let (Some(_entries), Some(bits_per_entry), Some(probes)) = (
        leb128_u32(&mut rest),
        leb128_u32(&mut rest),
        leb128_u32(&mut rest),
    ) else {
        return false;
    };
    bits_per_entry > 0 && (1..=MAX_BLOOM_PROBES).contains(&probes) && !rest.is_empty()
}

/// Reads an unsigned LEB128 number of at most 32 bits from the front of `bytes`.
fn leb128_u32(bytes: &mut &[u8]) -> Option<u32> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(5) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return u32::try_from(value).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use automerge::sync::Have;

    use super::*;

    fn filter(encoded: &[u8]) -> BloomFilter {
        BloomFilter::try_from(encoded).unwrap()
    }

    #[test]
    fn filters_without_bits_or_with_too_many_probes_are_forgotten() {
        // One entry: 10 bits per entry and 7 probes as Automerge makes them; 0 bits per
        // entry; 2^32 - 1 probes; 0 probes.
        let good = filter(&[1, 10, 7, 0xff, 0x03]);
        let mut state = State::new();
        state.their_have = Some(
            [
                good.clone(),
                filter(&[1, 0, 7]),
                filter(&[1, 8, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xff]),
                filter(&[1, 8, 0, 0xff]),
                BloomFilter::default(),
            ]
            .into_iter()
            .map(|bloom| Have {
                last_sync: Vec::new(),
                bloom,
            })
            .collect(),
        );
        forget_unusable_filters(&mut state);
        let kept: Vec<BloomFilter> = state
            .their_have
            .unwrap()
            .into_iter()
            .map(|have| have.bloom)
            .collect();
        let empty = BloomFilter::default();
        assert_eq!(
            kept,
            [good, empty.clone(), empty.clone(), empty.clone(), empty]
        );
    }

    #[test]
    fn leb128_stops_at_32_bits() {
        let mut bytes: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0x0f, 9];
        assert_eq!(leb128_u32(&mut bytes), Some(u32::MAX));
        assert_eq!(bytes, [9]);
        assert_eq!(leb128_u32(&mut &[0x80, 0x80, 0x80, 0x80, 0x10][..]), None);
        assert_eq!(leb128_u32(&mut &[0x80][..]), None);
    }
}

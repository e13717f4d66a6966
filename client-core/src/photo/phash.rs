//! Perceptual hashes: to notice the same scene submitted twice (re-encoded, resized,
//! re-sent from the gallery), which the SHA-256 of the bytes cannot.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::raster::Raster;
use super::{PhotoConfig, PhotoError, decode, exif};

/// Columns of the reduced picture: one more than the bits per row, since each bit
/// compares a cell with its right-hand neighbour.
const COLS: usize = 9;
/// Rows of the reduced picture.
const ROWS: usize = 8;

/// A 64-bit difference hash (dHash) of the upright picture: bit `8·y + x`, counted from
/// the most significant bit, is set when cell `(x, y)` of a 9×8 grayscale reduction is
/// brighter than cell `(x + 1, y)`.
///
/// Robust to re-encoding, resizing and small colour changes; not to cropping or
/// rotation. Shown and parsed as 16 hex digits; serialized as that string.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct PerceptualHash(pub u64);

impl PerceptualHash {
    /// The number of differing bits (Hamming distance), 0 to 64. The same photo
    /// re-encoded or resized is typically within 6; different pictures are around 32.
    pub fn distance(&self, other: &PerceptualHash) -> u32 {
        (self.0 ^ other.0).count_ones()
    }
}

impl fmt::Display for PerceptualHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for PerceptualHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PerceptualHash({self})")
    }
}

/// The text was not 16 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a perceptual hash is 16 hex digits")]
pub struct InvalidPerceptualHash;

impl FromStr for PerceptualHash {
    type Err = InvalidPerceptualHash;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // from_str_radix alone would take a sign and fewer digits.
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InvalidPerceptualHash);
        }
        u64::from_str_radix(s, 16)
            .map(PerceptualHash)
            .map_err(|_| InvalidPerceptualHash)
    }
}

impl From<PerceptualHash> for String {
    fn from(hash: PerceptualHash) -> Self {
        hash.to_string()
    }
}

impl TryFrom<String> for PerceptualHash {
    type Error = InvalidPerceptualHash;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// The dHash of a JPEG (a PNG works too), turned upright by its EXIF orientation, as
/// [`super::process`] computes it. The JPEG is decoded at 1/8 scale where it is big
/// enough, so this is cheap even on a full-size photo.
pub fn perceptual_hash_of_jpeg(bytes: &[u8]) -> Result<PerceptualHash, PhotoError> {
    // 8 cells per side times 8 pixels per cell: enough to average out JPEG noise.
    const ENOUGH: u32 = 64;
    let decoded = decode::decode(bytes, &PhotoConfig::default(), ENOUGH)?;
    let orientation = decoded
        .exif
        .as_deref()
        .map_or(1, |tiff| exif::read_metadata(tiff).orientation);
    Ok(dhash(&decoded.raster.oriented(orientation)))
}

/// The dHash of `raster`: each of the 9×8 cells is the mean luma of the pixels that
/// fall in it (an area average, so every pixel counts and noise cancels).
pub(super) fn dhash(raster: &Raster) -> PerceptualHash {
    let (w, h) = (raster.width as usize, raster.height as usize);
    let c = usize::from(raster.channels);
    let luma = |x: usize, y: usize| -> u64 {
        let at = (y * w + x) * c;
        match raster.data.get(at..at + c) {
            Some([v]) => u64::from(*v),
            // BT.601 weights in 8-bit fixed point.
            Some([r, g, b]) => (77 * u64::from(*r) + 150 * u64::from(*g) + 29 * u64::from(*b)) >> 8,
            _ => 0,
        }
    };
    let mut sums = [[0u64; COLS]; ROWS];
    let mut counts = [[0u64; COLS]; ROWS];
    let column_of: Vec<usize> = (0..w).map(|x| x * COLS / w).collect();
    for y in 0..h {
        let row = y * ROWS / h;
        for (x, &column) in column_of.iter().enumerate() {
            sums[row][column] += luma(x, y);
            counts[row][column] += 1;
        }
    }
    let mut means = [[0f64; COLS]; ROWS];
    for (row, means_row) in means.iter_mut().enumerate() {
        for (column, mean) in means_row.iter_mut().enumerate() {
            let n = counts[row][column];
            *mean = if n > 0 {
                sums[row][column] as f64 / n as f64
            } else {
                // Pictures under 9×8 pixels: the nearest pixel stands for the cell.
                luma(column * w / COLS, row * h / ROWS) as f64
            };
        }
    }
    let mut bits = 0u64;
    for row in &means {
        for pair in row.windows(2) {
            bits = (bits << 1) | u64::from(pair[0] > pair[1]);
        }
    }
    PerceptualHash(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photo::{PhotoConfig, process};
    use crate::testing;

    #[test]
    fn hex_round_trip() {
        let hash = PerceptualHash(0x0123_4567_89ab_cdef);
        assert_eq!(hash.to_string(), "0123456789abcdef");
        assert_eq!("0123456789ABCDEF".parse(), Ok(hash));
        assert_eq!("123".parse::<PerceptualHash>(), Err(InvalidPerceptualHash));
        assert_eq!(
            "+123456789abcdef".parse::<PerceptualHash>(),
            Err(InvalidPerceptualHash)
        );
        assert_eq!(
            "0123456789abcdeg".parse::<PerceptualHash>(),
            Err(InvalidPerceptualHash)
        );
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, "\"0123456789abcdef\"");
        assert_eq!(serde_json::from_str::<PerceptualHash>(&json).unwrap(), hash);
    }

    #[test]
    fn distance_counts_bits() {
        assert_eq!(PerceptualHash(0).distance(&PerceptualHash(u64::MAX)), 64);
        assert_eq!(PerceptualHash(0b1011).distance(&PerceptualHash(0b0001)), 2);
    }

    #[test]
    fn left_brighter_sets_the_bit() {
        // A horizontal ramp darkening to the right: every cell is brighter than the next.
        let data = (0..90u32 * 8).map(|i| 255 - (i % 90) as u8 * 2).collect();
        let raster = Raster::new(90, 8, 1, data).unwrap();
        assert_eq!(dhash(&raster), PerceptualHash(u64::MAX));
        let flat = Raster::new(30, 30, 3, vec![128; 2700]).unwrap();
        assert_eq!(dhash(&flat), PerceptualHash(0));
        // Tiny pictures still hash.
        let tiny = Raster::new(2, 1, 1, vec![200, 10]).unwrap();
        let _ = dhash(&tiny);
    }

    #[test]
    fn same_photo_re_encoded_is_near_and_another_is_far() {
        let original = testing::jpeg(1200, 900, 7);
        let a = perceptual_hash_of_jpeg(&original).unwrap();

        // Another size and quality.
        let config = PhotoConfig {
            evidence_long_side: 500,
            thumbnail_long_side: 100,
            jpeg_quality: 35,
            ..PhotoConfig::default()
        };
        let smaller = process(&original, &config).unwrap();
        let b = perceptual_hash_of_jpeg(&smaller.evidence).unwrap();
        assert!(a.distance(&b) <= 6, "{a} vs {b}");
        assert!(a.distance(&smaller.perceptual_hash) <= 6);

        // The pipeline's own hash, made on the thumbnail, agrees with the JPEG's.
        let full = process(&original, &PhotoConfig::default()).unwrap();
        assert!(a.distance(&full.perceptual_hash) <= 6);
        assert!(a.distance(&perceptual_hash_of_jpeg(&full.thumbnail).unwrap()) <= 6);

        for seed in [1, 2, 3, 8, 100] {
            let other = perceptual_hash_of_jpeg(&testing::jpeg(1200, 900, seed)).unwrap();
            assert!(a.distance(&other) >= 20, "seed {seed}: {a} vs {other}");
        }
    }

    #[test]
    fn hash_is_of_the_upright_picture() {
        let pixels = testing::picture(400, 300, 5);
        let upright = testing::encode_jpeg(400, 300, &pixels);
        // The same pixels stored upside down and flagged as such hash alike.
        let turned = Raster::new(400, 300, 3, pixels).unwrap().oriented(3);
        let turned = testing::encode_jpeg(400, 300, &turned.data);
        let spec = testing::ExifSpec {
            orientation: Some(3),
            ..testing::ExifSpec::default()
        };
        let flagged = testing::with_exif(&turned, &spec);
        let a = perceptual_hash_of_jpeg(&upright).unwrap();
        let b = perceptual_hash_of_jpeg(&flagged).unwrap();
        assert!(a.distance(&b) <= 6, "{a} vs {b}");
        let unflagged = perceptual_hash_of_jpeg(&turned).unwrap();
        assert!(a.distance(&unflagged) >= 20, "{a} vs {unflagged}");
    }
}

//! Photo evidence: from a camera's JPEG or PNG to the blobs wardcheck keeps.
//!
//! [`process`] turns the bytes a phone camera wrote into an upright evidence JPEG
//! (long side [`PhotoConfig::evidence_long_side`]), a thumbnail JPEG, their content
//! addresses, a perceptual hash (to spot the same scene photographed twice) and the
//! metadata read from EXIF (time, GPS, orientation). The output JPEGs carry no EXIF:
//! the location goes into the signed [`provenance::CaptureClaim`] instead, so a blob
//! shared on its own leaks nothing.
//!
//! Everything here is pure: bytes in, bytes out, no disk and no network. It is built
//! for one core (no thread pool; the phone has other work, and photos are processed
//! one by one), though jpeg-decoder itself hands each colour component of a large
//! JPEG to a short-lived worker thread, which it offers no way to turn off.
//!
//! Speed comes from not decoding what is thrown away: a 12 MP JPEG is decoded with a
//! DCT-domain downscale (1/2, 1/4 or 1/8) straight to the smallest size that is still
//! at least the evidence size, resized from there with a SIMD filter, and the thumbnail
//! is made from the evidence-sized image rather than from the full photo.
//!
//! The codecs are the image-rs project's own, used directly: jpeg-decoder (for its DCT
//! scaling) and png decode, jpeg-encoder encodes. The `image` crate on top of them adds
//! nothing the pipeline needs and 0.12 MB to the phone library, so it is only the tests'
//! independent decoder.

#![warn(missing_docs)]

mod decode;
mod exif;
mod geo;
mod phash;
pub mod provenance;
mod raster;

use crate::blob::BlobHash;

pub use geo::GeoPoint;
pub use phash::{InvalidPerceptualHash, PerceptualHash, perceptual_hash_of_jpeg};
pub use provenance::{
    CaptureClaim, DeviceKey, ProvenanceError, PublicKey, Signature, verify_photo,
};

use raster::Filter;

/// How photos are reduced, and the limits that refuse hostile or absurd inputs.
///
/// The limits are checked against the file size and the image header, before any
/// pixel buffer is allocated, so a small file claiming a huge image costs nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoConfig {
    /// Long side of the evidence JPEG in pixels (default 1600): enough to read a sign or
    /// a document on a phone screen, about 200–400 KB per photo.
    pub evidence_long_side: u32,
    /// Long side of the thumbnail JPEG in pixels (default 320), shown in lists and sent
    /// first when syncing over a weak link.
    pub thumbnail_long_side: u32,
    /// JPEG quality 1–100 of both outputs (default 80).
    pub jpeg_quality: u8,
    /// Largest input file accepted, in bytes (default 64 MiB). A 50 MP phone JPEG is
    /// 10–25 MB and a 200 MP one 30–60 MB; anything bigger is not a camera photo.
    pub max_input_bytes: usize,
    /// Largest image accepted, in pixels (default 220 MP). Phones make 12–50 MP photos
    /// and some have a 200 MP mode (16320×12240 or 16384×12288); this admits those and
    /// refuses the decompression bombs above them.
    pub max_pixels: u64,
    /// Longest side accepted, in pixels (default 32 000): the 200 MP modes are 16 384 px
    /// wide and phone panoramas stay under 30 000 px, while JPEG itself allows 65 535.
    pub max_side: u32,
    /// Largest image, in pixels, of the inputs that must be held whole in memory
    /// (default 64 MP): progressive JPEGs, whose decoder keeps every DCT coefficient
    /// (3–6 bytes per pixel), and PNGs (3–8 bytes per pixel). Baseline JPEGs, what
    /// cameras write, are decoded row by row at the reduced size and only meet
    /// [`PhotoConfig::max_pixels`].
    pub max_whole_decode_pixels: u64,
}

impl Default for PhotoConfig {
    fn default() -> Self {
        Self {
            evidence_long_side: 1600,
            thumbnail_long_side: 320,
            jpeg_quality: 80,
            max_input_bytes: 64 * 1024 * 1024,
            max_pixels: 220_000_000,
            max_side: 32_000,
            max_whole_decode_pixels: 64_000_000,
        }
    }
}

impl PhotoConfig {
    /// Checks that the sizes and quality make sense (the outputs are JPEGs, whose sides
    /// are at most 65 535 px, and the thumbnail is made from the evidence).
    pub fn validate(&self) -> Result<(), PhotoError> {
        if self.evidence_long_side == 0 || self.evidence_long_side > u32::from(u16::MAX) {
            return Err(PhotoError::InvalidConfig(
                "evidence_long_side must be 1..=65535",
            ));
        }
        if self.thumbnail_long_side == 0 || self.thumbnail_long_side > self.evidence_long_side {
            return Err(PhotoError::InvalidConfig(
                "thumbnail_long_side must be 1..=evidence_long_side",
            ));
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            return Err(PhotoError::InvalidConfig("jpeg_quality must be 1..=100"));
        }
        Ok(())
    }
}

/// Why a photo was refused or could not be processed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PhotoError {
    /// The input has no bytes.
    #[error("the photo is empty")]
    Empty,
    /// The input is over [`PhotoConfig::max_input_bytes`].
    #[error("the photo is {size} bytes, over the limit of {max}")]
    TooLarge {
        /// Size of the input in bytes.
        size: usize,
        /// The limit in force.
        max: usize,
    },
    /// The input is neither a JPEG nor a PNG (by its magic bytes).
    #[error("the photo is not a JPEG or a PNG")]
    UnsupportedFormat,
    /// A JPEG or PNG using a feature not decoded here (arithmetic coding, 12-bit or
    /// lossless JPEG, CMYK).
    #[error("the photo uses an unsupported feature: {0}")]
    UnsupportedFeature(String),
    /// The header declares an image over the pixel or side limits.
    #[error("the photo is {width}×{height} pixels, over the limits")]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// The bytes are truncated or corrupt.
    #[error("the photo is corrupt or truncated: {0}")]
    Corrupt(String),
    /// A location outside the earth's coordinates, or a negative or non-finite accuracy.
    #[error("invalid location: lat {lat}, lon {lon}, accuracy {accuracy_m:?} m")]
    InvalidLocation {
        /// Latitude given.
        lat: f64,
        /// Longitude given.
        lon: f64,
        /// Accuracy given.
        accuracy_m: Option<f64>,
    },
    /// The [`PhotoConfig`] is unusable.
    #[error("invalid photo config: {0}")]
    InvalidConfig(&'static str),
    /// Resizing failed (a bug rather than a bad input).
    #[error("could not resize the photo: {0}")]
    Resize(String),
    /// Encoding the output JPEG failed (a bug rather than a bad input).
    #[error("could not encode the photo: {0}")]
    Encode(String),
}

/// What EXIF told about the photo. Absent or malformed tags give `None`: bad EXIF never
/// fails a photo.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PhotoMetadata {
    /// DateTimeOriginal as ISO 8601, `2024-05-01T10:20:30`, with the offset
    /// (`2024-05-01T10:20:30+07:00`) when OffsetTimeOriginal is present. The phone's
    /// clock: a claim, not a proof.
    pub captured_at: Option<String>,
    /// GPS position, with GPSHPositioningError as the accuracy.
    pub location: Option<GeoPoint>,
    /// The EXIF orientation (1–8) found, already applied to the outputs; 1 if none.
    pub orientation: u16,
}

/// The result of [`process`]: the two blobs, their addresses and what was learnt.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedPhoto {
    /// The upright evidence JPEG, without EXIF.
    pub evidence: Vec<u8>,
    /// SHA-256 of [`ProcessedPhoto::evidence`].
    pub evidence_hash: BlobHash,
    /// Width of the evidence in pixels.
    pub evidence_width: u32,
    /// Height of the evidence in pixels.
    pub evidence_height: u32,
    /// The upright thumbnail JPEG, without EXIF.
    pub thumbnail: Vec<u8>,
    /// SHA-256 of [`ProcessedPhoto::thumbnail`].
    pub thumbnail_hash: BlobHash,
    /// dHash of the upright picture.
    pub perceptual_hash: PerceptualHash,
    /// Time, place and orientation read from EXIF.
    pub metadata: PhotoMetadata,
}

/// Turns a camera's JPEG or PNG into evidence and thumbnail JPEGs (see the module doc).
///
/// Refuses empty, oversized, unknown, corrupt and over-limit inputs with a typed error;
/// never panics. Images smaller than the evidence size are not upscaled.
pub fn process(input: &[u8], config: &PhotoConfig) -> Result<ProcessedPhoto, PhotoError> {
    config.validate()?;
    let decoded = decode::decode(input, config, config.evidence_long_side)?;
    let metadata = decoded
        .exif
        .as_deref()
        .map(exif::read_metadata)
        .unwrap_or_default();
    let orientation = metadata.orientation;

    // Resize before rotating: same result, and turning the smaller image is cheaper.
    let mut resizer = raster::Resizer::new();
    let (w, h) = raster::fit_within(
        decoded.raster.width,
        decoded.raster.height,
        config.evidence_long_side,
    );
    let evidence = resizer.resize(decoded.raster, w, h, Filter::Lanczos3)?;
    let evidence = evidence.oriented(orientation);
    let evidence_jpeg = evidence.encode_jpeg(config.jpeg_quality)?;

    // The thumbnail is five times smaller: Catmull-Rom is as sharp there as Lanczos3
    // and needs two thirds of the taps.
    let (tw, th) = raster::fit_within(evidence.width, evidence.height, config.thumbnail_long_side);
    let (evidence_width, evidence_height) = (evidence.width, evidence.height);
    let thumbnail = resizer.resize(evidence, tw, th, Filter::CatmullRom)?;
    let thumbnail_jpeg = thumbnail.encode_jpeg(config.jpeg_quality)?;
    let perceptual_hash = phash::dhash(&thumbnail);

    Ok(ProcessedPhoto {
        evidence_hash: BlobHash::of(&evidence_jpeg),
        evidence: evidence_jpeg,
        evidence_width,
        evidence_height,
        thumbnail_hash: BlobHash::of(&thumbnail_jpeg),
        thumbnail: thumbnail_jpeg,
        perceptual_hash,
        metadata,
    })
}

impl Default for PhotoMetadata {
    fn default() -> Self {
        Self {
            captured_at: None,
            location: None,
            orientation: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, ExifSpec};
    use proptest::prelude::*;

    /// Decodes a JPEG independently of the pipeline: (width, height, channels, pixels).
    fn decode_jpeg(bytes: &[u8]) -> (u32, u32, usize, Vec<u8>) {
        let mut decoder = jpeg_decoder::Decoder::new(bytes);
        let pixels = decoder.decode().expect("a valid JPEG");
        let info = decoder.info().unwrap();
        assert!(decoder.exif_data().is_none(), "outputs carry no EXIF");
        let channels = pixels.len() / (usize::from(info.width) * usize::from(info.height));
        (
            u32::from(info.width),
            u32::from(info.height),
            channels,
            pixels,
        )
    }

    fn pixel(decoded: &(u32, u32, usize, Vec<u8>), x: u32, y: u32) -> [u8; 3] {
        let (w, c) = (decoded.0 as usize, decoded.2);
        let at = (y as usize * w + x as usize) * c;
        let p = &decoded.3[at..at + c];
        if c == 1 {
            [p[0]; 3]
        } else {
            [p[0], p[1], p[2]]
        }
    }

    fn is_red(p: [u8; 3]) -> bool {
        p[0] > 180 && p[1] < 70 && p[2] < 70
    }

    /// A gray picture, stored `width × height`, with a red block in its top-left corner
    /// (a tenth of each side).
    fn red_corner_jpeg(width: u32, height: u32, spec: &ExifSpec) -> Vec<u8> {
        let mut rgb = vec![120u8; width as usize * height as usize * 3];
        for y in 0..height / 10 {
            for x in 0..width / 10 {
                let at = (y as usize * width as usize + x as usize) * 3;
                rgb[at..at + 3].copy_from_slice(&[230, 20, 20]);
            }
        }
        testing::with_exif(&testing::encode_jpeg(width, height, &rgb), spec)
    }

    #[test]
    fn a_12_mp_jpeg_gives_1600_evidence_and_320_thumbnail() {
        let input = testing::jpeg(4000, 3000, 1);
        let out = process(&input, &PhotoConfig::default()).unwrap();
        assert_eq!((out.evidence_width, out.evidence_height), (1600, 1200));
        let evidence = decode_jpeg(&out.evidence);
        assert_eq!((evidence.0, evidence.1, evidence.2), (1600, 1200, 3));
        let thumbnail = decode_jpeg(&out.thumbnail);
        assert_eq!((thumbnail.0, thumbnail.1), (320, 240));
        assert_eq!(out.evidence_hash, BlobHash::of(&out.evidence));
        assert_eq!(out.thumbnail_hash, BlobHash::of(&out.thumbnail));
        assert_ne!(out.evidence_hash, out.thumbnail_hash);
        assert_eq!(out.metadata, PhotoMetadata::default());
        // Same input, same bytes: the blobs are content-addressed.
        assert_eq!(process(&input, &PhotoConfig::default()).unwrap(), out);
    }

    #[test]
    fn a_portrait_photo_stored_landscape_comes_out_upright() {
        // The sensor wrote 4000×3000; orientation 6 says "turn 90° clockwise to view".
        let spec = ExifSpec {
            orientation: Some(6),
            ..ExifSpec::default()
        };
        let out = process(&red_corner_jpeg(4000, 3000, &spec), &PhotoConfig::default()).unwrap();
        assert_eq!((out.evidence_width, out.evidence_height), (1200, 1600));
        assert_eq!(out.metadata.orientation, 6);
        let evidence = decode_jpeg(&out.evidence);
        assert_eq!((evidence.0, evidence.1), (1200, 1600));
        // The stored top-left corner is now the top-right one.
        assert!(is_red(pixel(&evidence, 1200 - 40, 40)));
        assert!(!is_red(pixel(&evidence, 40, 40)));
        assert!(!is_red(pixel(&evidence, 1200 - 40, 1600 - 40)));
        let thumbnail = decode_jpeg(&out.thumbnail);
        assert_eq!((thumbnail.0, thumbnail.1), (240, 320));
        assert!(is_red(pixel(&thumbnail, 240 - 8, 8)));
    }

    #[test]
    fn every_orientation_moves_the_corner_where_it_belongs() {
        // Where the stored top-left corner is seen, as (right?, bottom?).
        let expected = [
            (1, false, false),
            (2, true, false),
            (3, true, true),
            (4, false, true),
            (5, false, false),
            (6, true, false),
            (7, true, true),
            (8, false, true),
        ];
        for (orientation, right, bottom) in expected {
            let spec = ExifSpec {
                orientation: Some(orientation),
                ..ExifSpec::default()
            };
            let out = process(&red_corner_jpeg(400, 200, &spec), &PhotoConfig::default()).unwrap();
            let size = if orientation >= 5 {
                (200, 400)
            } else {
                (400, 200)
            };
            assert_eq!(
                (out.evidence_width, out.evidence_height),
                size,
                "{orientation}"
            );
            let evidence = decode_jpeg(&out.evidence);
            let x = if right { size.0 - 5 } else { 5 };
            let y = if bottom { size.1 - 5 } else { 5 };
            assert!(is_red(pixel(&evidence, x, y)), "orientation {orientation}");
            assert!(
                !is_red(pixel(&evidence, size.0 - 1 - x, size.1 - 1 - y)),
                "{orientation}"
            );
        }
    }

    #[test]
    fn gps_and_time_are_read_back_and_not_leaked() {
        let spec = ExifSpec {
            gps: Some((10.776889, 106.700806)),
            taken_at: Some("2024:05:01 10:20:30"),
            ..ExifSpec::default()
        };
        let mut fields = testing::exif_fields(&spec);
        fields.push(testing::ascii_field(
            ::exif::Tag::OffsetTimeOriginal,
            "+07:00",
        ));
        fields.push(testing::rational_field(
            ::exif::Tag::GPSHPositioningError,
            8.0,
        ));
        let input =
            testing::with_exif_tiff(&testing::jpeg(800, 600, 3), &testing::exif_tiff(&fields));
        let out = process(&input, &PhotoConfig::default()).unwrap();
        assert_eq!(
            out.metadata.captured_at.as_deref(),
            Some("2024-05-01T10:20:30+07:00")
        );
        let at = out.metadata.location.unwrap();
        assert!((at.lat - 10.776889).abs() < 1e-6 && (at.lon - 106.700806).abs() < 1e-6);
        assert_eq!(at.accuracy_m, Some(8.0));
        for blob in [&out.evidence, &out.thumbnail] {
            assert!(
                !blob.windows(4).any(|w| w == b"Exif"),
                "no EXIF in the outputs"
            );
        }
    }

    #[test]
    fn broken_exif_does_not_fail_the_photo() {
        let good = testing::jpeg(300, 200, 4);
        // An APP1 "Exif" segment whose TIFF block is garbage, and one cut short.
        let bad = testing::with_exif_tiff(&good, b"MM\0*\xff\xff\xff\xff");
        let fields = testing::exif_fields(&ExifSpec {
            orientation: Some(6),
            taken_at: Some("2024:05:01 10:20:30"),
            gps: Some((10.0, 106.0)),
        });
        let tiff = testing::exif_tiff(&fields);
        let cut = testing::with_exif_tiff(&good, &tiff[..tiff.len() / 2]);
        assert!(process(&cut, &PhotoConfig::default()).is_ok());
        let out = process(&bad, &PhotoConfig::default()).unwrap();
        assert_eq!(out.metadata, PhotoMetadata::default());
        assert_eq!((out.evidence_width, out.evidence_height), (300, 200));
    }

    #[test]
    fn small_images_are_not_upscaled() {
        let out = process(&testing::jpeg(640, 480, 5), &PhotoConfig::default()).unwrap();
        assert_eq!((out.evidence_width, out.evidence_height), (640, 480));
        assert_eq!(decode_jpeg(&out.thumbnail).0, 320);
        let out = process(&testing::jpeg(200, 100, 5), &PhotoConfig::default()).unwrap();
        assert_eq!((out.evidence_width, out.evidence_height), (200, 100));
        let thumbnail = decode_jpeg(&out.thumbnail);
        assert_eq!((thumbnail.0, thumbnail.1), (200, 100));
        let out = process(&testing::jpeg(1, 1, 5), &PhotoConfig::default()).unwrap();
        assert_eq!((out.evidence_width, out.evidence_height), (1, 1));
    }

    #[test]
    fn a_jpeg_just_over_the_target_is_reduced_from_full_size() {
        // 1/2 scale would give 850 px, under 1600: decoded whole, then resized.
        let out = process(&testing::jpeg(1700, 1000, 6), &PhotoConfig::default()).unwrap();
        assert_eq!((out.evidence_width, out.evidence_height), (1600, 941));
    }

    #[test]
    fn png_input_works() {
        let out = process(&testing::png(2000, 1000, 2), &PhotoConfig::default()).unwrap();
        assert_eq!((out.evidence_width, out.evidence_height), (1600, 800));
        assert_eq!(decode_jpeg(&out.evidence).0, 1600);
        let thumbnail = decode_jpeg(&out.thumbnail);
        assert_eq!((thumbnail.0, thumbnail.1), (320, 160));
        // Same picture as a JPEG: same perceptual hash, near enough.
        let as_jpeg = process(&testing::jpeg(2000, 1000, 2), &PhotoConfig::default()).unwrap();
        assert!(out.perceptual_hash.distance(&as_jpeg.perceptual_hash) <= 6);
    }

    #[test]
    fn transparent_png_is_laid_over_white() {
        let mut png = Vec::new();
        let rgba: Vec<u8> = (0..16 * 8).flat_map(|_| [0, 0, 0, 0]).collect();
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(&mut png),
            &rgba,
            16,
            8,
            image::ExtendedColorType::Rgba8,
        )
        .unwrap();
        let out = process(&png, &PhotoConfig::default()).unwrap();
        let evidence = decode_jpeg(&out.evidence);
        assert!(pixel(&evidence, 8, 4).iter().all(|&v| v > 245));
    }

    #[test]
    fn gray_and_progressive_jpegs_work() {
        let gray: Vec<u8> = (0..300u32 * 200)
            .map(|i| (i % 300 * 255 / 300) as u8)
            .collect();
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 90)
            .encode(&gray, 300, 200, jpeg_encoder::ColorType::Luma)
            .unwrap();
        let out = process(&jpeg, &PhotoConfig::default()).unwrap();
        assert_eq!(decode_jpeg(&out.evidence).2, 1);

        let rgb = testing::picture(2400, 1800, 8);
        let mut progressive = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut progressive, 85);
        encoder.set_progressive(true);
        encoder
            .encode(&rgb, 2400, 1800, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let out = process(&progressive, &PhotoConfig::default()).unwrap();
        assert_eq!((out.evidence_width, out.evidence_height), (1600, 1200));
        // Progressive JPEGs are held whole while decoding: they have their own limit.
        let strict = PhotoConfig {
            max_whole_decode_pixels: 4_000_000,
            ..PhotoConfig::default()
        };
        assert_eq!(
            process(&progressive, &strict),
            Err(PhotoError::TooManyPixels {
                width: 2400,
                height: 1800
            })
        );
        let baseline = testing::jpeg(2400, 1800, 8);
        assert!(process(&baseline, &strict).is_ok());
    }

    #[test]
    fn empty_random_and_foreign_inputs_are_refused() {
        let config = PhotoConfig::default();
        assert_eq!(process(&[], &config), Err(PhotoError::Empty));
        let mut rng = 0x1234_5678_u64;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                (rng >> 24) as u8
            })
            .collect();
        assert_eq!(
            process(&random, &config),
            Err(PhotoError::UnsupportedFormat)
        );
        assert_eq!(
            process(b"GIF89a\x01\x00\x01\x00", &config),
            Err(PhotoError::UnsupportedFormat)
        );
        assert_eq!(
            process(b"RIFF\x24\0\0\0WEBPVP8 ", &config),
            Err(PhotoError::UnsupportedFormat)
        );
        assert!(matches!(
            process(&[0xff, 0xd8], &config),
            Err(PhotoError::Corrupt(_))
        ));
    }

    #[test]
    fn truncated_files_are_corrupt() {
        let config = PhotoConfig::default();
        let jpeg = testing::jpeg(400, 300, 9);
        for cut in [3, 20, jpeg.len() / 2, jpeg.len() - 100] {
            assert!(
                matches!(process(&jpeg[..cut], &config), Err(PhotoError::Corrupt(_))),
                "JPEG cut at {cut}: {:?}",
                process(&jpeg[..cut], &config).map(|_| ())
            );
        }
        let png = testing::png(400, 300, 9);
        for cut in [10, 30, png.len() / 2, png.len() - 20] {
            assert!(
                matches!(process(&png[..cut], &config), Err(PhotoError::Corrupt(_))),
                "PNG cut at {cut}: {:?}",
                process(&png[..cut], &config).map(|_| ())
            );
        }
    }

    #[test]
    fn oversize_input_is_refused_before_reading_it() {
        let config = PhotoConfig {
            max_input_bytes: 1000,
            ..PhotoConfig::default()
        };
        let jpeg = testing::jpeg(400, 300, 9);
        assert_eq!(
            process(&jpeg, &config),
            Err(PhotoError::TooLarge {
                size: jpeg.len(),
                max: 1000
            })
        );
    }

    #[test]
    fn bad_config_is_refused() {
        let jpeg = testing::jpeg(40, 30, 9);
        for config in [
            PhotoConfig {
                jpeg_quality: 0,
                ..PhotoConfig::default()
            },
            PhotoConfig {
                jpeg_quality: 101,
                ..PhotoConfig::default()
            },
            PhotoConfig {
                evidence_long_side: 0,
                ..PhotoConfig::default()
            },
            PhotoConfig {
                evidence_long_side: 70_000,
                ..PhotoConfig::default()
            },
            PhotoConfig {
                thumbnail_long_side: 2000,
                ..PhotoConfig::default()
            },
        ] {
            assert!(matches!(
                process(&jpeg, &config),
                Err(PhotoError::InvalidConfig(_))
            ));
        }
    }

    /// CRC-32 (ISO-HDLC), as PNG chunks use.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A PNG signature, an IHDR claiming `width × height` (8-bit RGB) with a correct
    /// CRC, a tiny IDAT and IEND: a valid-looking header for a picture that is not there.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(&mut png, b"IHDR", &ihdr);
        chunk(
            &mut png,
            b"IDAT",
            &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        );
        chunk(&mut png, b"IEND", &[]);
        png
    }

    #[test]
    fn the_hand_made_png_is_well_formed() {
        // The image crate accepts the header: it is the size that must stop us.
        let png = png_claiming(60_000, 60_000);
        let decoder = image::codecs::png::PngDecoder::new(std::io::Cursor::new(&png)).unwrap();
        assert_eq!(image::ImageDecoder::dimensions(&decoder), (60_000, 60_000));
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn a_huge_png_header_is_refused_fast_without_allocating() {
        let png = png_claiming(60_000, 60_000);
        let started = std::time::Instant::now();
        let (result, largest) =
            alloc_probe::largest_allocation(|| process(&png, &PhotoConfig::default()).map(|_| ()));
        assert_eq!(
            result,
            Err(PhotoError::TooManyPixels {
                width: 60_000,
                height: 60_000
            })
        );
        assert!(largest < 64 * 1024, "allocated {largest} bytes at once");
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        // Under the side limit but over the pixel limit.
        let png = png_claiming(20_000, 20_000);
        assert_eq!(
            process(&png, &PhotoConfig::default()),
            Err(PhotoError::TooManyPixels {
                width: 20_000,
                height: 20_000
            })
        );
    }

    #[test]
    fn a_huge_jpeg_header_is_refused_without_allocating() {
        // SOI, then a baseline SOF0 claiming 60000×60000 with three components.
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 8];
        jpeg.extend_from_slice(&60_000u16.to_be_bytes());
        jpeg.extend_from_slice(&60_000u16.to_be_bytes());
        jpeg.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        jpeg.extend_from_slice(&[0xff, 0xd9]);
        let (result, largest) =
            alloc_probe::largest_allocation(|| process(&jpeg, &PhotoConfig::default()).map(|_| ()));
        assert_eq!(
            result,
            Err(PhotoError::TooManyPixels {
                width: 60_000,
                height: 60_000
            })
        );
        assert!(largest < 64 * 1024, "allocated {largest} bytes at once");
    }

    fn small_jpeg() -> &'static [u8] {
        static JPEG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        JPEG.get_or_init(|| {
            let spec = ExifSpec {
                orientation: Some(6),
                gps: Some((21.0, 105.8)),
                taken_at: Some("2024:05:01 10:20:30"),
            };
            testing::jpeg_with_exif(48, 40, 11, &spec)
        })
    }

    fn small_png() -> &'static [u8] {
        static PNG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        PNG.get_or_init(|| testing::png(24, 20, 12))
    }

    fn mutate(
        valid: &[u8],
        edits: &[(prop::sample::Index, u8)],
        cut: prop::sample::Index,
    ) -> Vec<u8> {
        let mut bytes = valid.to_vec();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        // Keep all, or cut somewhere.
        let keep = cut.index(bytes.len() + 1).max(1);
        bytes.truncate(keep);
        bytes
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = process(&bytes, &PhotoConfig::default());
            let _ = perceptual_hash_of_jpeg(&bytes);
        }

        #[test]
        fn never_panics_behind_a_valid_magic(
            png in any::<bool>(),
            rest in prop::collection::vec(any::<u8>(), 0..2048),
        ) {
            let mut bytes = if png { b"\x89PNG\r\n\x1a\n".to_vec() } else { vec![0xff, 0xd8, 0xff] };
            bytes.extend_from_slice(&rest);
            let _ = process(&bytes, &PhotoConfig::default());
        }

        #[test]
        fn never_panics_on_mutated_jpegs(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = mutate(small_jpeg(), &edits, cut);
            let _ = process(&bytes, &PhotoConfig::default());
            let _ = perceptual_hash_of_jpeg(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_pngs(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = mutate(small_png(), &edits, cut);
            let _ = process(&bytes, &PhotoConfig::default());
        }
    }

    /// Records the largest single allocation a closure makes on this thread, to show
    /// that a lying header is refused before any pixel buffer exists.
    mod alloc_probe {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        thread_local! {
            // Const-initialized without destructors: safe to touch from the allocator.
            static ARMED: Cell<bool> = const { Cell::new(false) };
            static LARGEST: Cell<usize> = const { Cell::new(0) };
        }

        fn note(size: usize) {
            let _ = ARMED.try_with(|armed| {
                if armed.get() {
                    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
                }
            });
        }

        /// The system allocator, watched.
        struct Probe;

        // SAFETY: every call is forwarded unchanged to the system allocator.
        unsafe impl GlobalAlloc for Probe {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                note(layout.size());
                // SAFETY: the caller's contract is passed on as is.
                unsafe { System.alloc(layout) }
            }

            unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
                note(layout.size());
                // SAFETY: as above.
                unsafe { System.alloc_zeroed(layout) }
            }

            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                note(new_size);
                // SAFETY: as above.
                unsafe { System.realloc(ptr, layout, new_size) }
            }

            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                // SAFETY: as above.
                unsafe { System.dealloc(ptr, layout) }
            }
        }

        #[global_allocator]
        static PROBE: Probe = Probe;

        /// Runs `f` and returns its result with the largest allocation it made.
        pub fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
            LARGEST.with(|largest| largest.set(0));
            ARMED.with(|armed| armed.set(true));
            let result = f();
            ARMED.with(|armed| armed.set(false));
            (result, LARGEST.with(Cell::get))
        }
    }
}

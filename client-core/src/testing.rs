//! Builders for tests: deterministic camera-like photos, with or without EXIF, a sample
//! unit, signed evidence records that need no image processing, an Automerge change
//! compressed to a thousandth of what it inflates to (a sync message bomb), and a bundle
//! of a few bytes whose column decodes to as many rows as asked.
//!
//! The pictures are gradients with a few large shapes, so that resizing, orientation
//! and perceptual hashes have something real to work on; each seed draws a different
//! picture. The builders panic on impossible arguments: they are for tests only.

#![warn(missing_docs)]

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value};

use crate::blob::BlobHash;
use crate::doc::Evidence;
use crate::model::{Author, Unit};
use crate::photo::{CaptureClaim, DeviceKey, PerceptualHash};

pub mod fuzz;
pub mod hostile;

/// SplitMix64: small, fast and good enough to place shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn color(&mut self) -> [u8; 3] {
        let v = self.next().to_le_bytes();
        [v[0], v[1], v[2]]
    }
}

/// A shape drawn over the background.
enum Shape {
    Rect { x0: i64, y0: i64, x1: i64, y1: i64 },
    Ellipse { cx: i64, cy: i64, rx: i64, ry: i64 },
}

impl Shape {
    fn contains(&self, x: i64, y: i64) -> bool {
        match *self {
            Shape::Rect { x0, y0, x1, y1 } => (x0..x1).contains(&x) && (y0..y1).contains(&y),
            Shape::Ellipse { cx, cy, rx, ry } => {
                let (dx, dy) = ((x - cx) as f64 / rx as f64, (y - cy) as f64 / ry as f64);
                dx * dx + dy * dy <= 1.0
            }
        }
    }
}

/// The RGB pixels (row by row, 3 bytes each) of the picture drawn for `seed`: a
/// two-colour gradient in a seed-chosen direction under five large rectangles and
/// ellipses, and a fine diagonal texture so JPEG has detail to keep.
pub fn picture(width: u32, height: u32, seed: u64) -> Vec<u8> {
    assert!(width > 0 && height > 0, "empty picture");
    let (w, h) = (i64::from(width), i64::from(height));
    let mut rng = Rng(seed ^ 0x005e_ed0f_ca11);
    let (from, to) = (rng.color(), rng.color());
    // Gradient direction, as a vector with components in -64..=64.
    let (gx, gy) = (rng.below(129) as i64 - 64, rng.below(129) as i64 - 64);
    let span = (gx.abs() * w + gy.abs() * h).max(1);
    let offset = gx.min(0) * w + gy.min(0) * h;
    let shapes: Vec<(Shape, [u8; 3])> = (0..5)
        .map(|i| {
            let (sw, sh) = (
                w * (15 + rng.below(30) as i64) / 100,
                h * (15 + rng.below(30) as i64) / 100,
            );
            let (x, y) = (rng.below(w as u64) as i64, rng.below(h as u64) as i64);
            let shape = if i % 2 == 0 {
                Shape::Rect {
                    x0: x - sw / 2,
                    y0: y - sh / 2,
                    x1: x + sw / 2,
                    y1: y + sh / 2,
                }
            } else {
                Shape::Ellipse {
                    cx: x,
                    cy: y,
                    rx: (sw / 2).max(1),
                    ry: (sh / 2).max(1),
                }
            };
            (shape, rng.color())
        })
        .collect();
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..h {
        for x in 0..w {
            let t = gx * x + gy * y - offset; // 0..=span
            let mut rgb = [0u8; 3];
            for c in 0..3 {
                let (a, b) = (i64::from(from[c]), i64::from(to[c]));
                rgb[c] = (a + (b - a) * t / span) as u8;
            }
            if let Some((_, color)) = shapes.iter().rev().find(|(s, _)| s.contains(x, y)) {
                rgb = *color;
            }
            // Texture: ±6 in a 7-pixel diagonal weave.
            let texture = ((x + 2 * y) % 7 - 3) * 2;
            out.extend(rgb.map(|v| (i64::from(v) + texture).clamp(0, 255) as u8));
        }
    }
    out
}

/// `rgb` (as from [`picture`]) encoded as a baseline 4:2:0 JPEG at quality 90, as
/// phone cameras write them.
pub fn encode_jpeg(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    let (w, h) = (
        u16::try_from(width).expect("width"),
        u16::try_from(height).expect("height"),
    );
    encoder
        .encode(rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("encode test JPEG");
    out
}

/// A `width × height` JPEG of the picture for `seed`, without EXIF.
pub fn jpeg(width: u32, height: u32, seed: u64) -> Vec<u8> {
    encode_jpeg(width, height, &picture(width, height, seed))
}

/// A `width × height` RGB PNG of the picture for `seed`.
pub fn png(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&picture(width, height, seed)))
        .expect("encode test PNG");
    out
}

/// The EXIF tags to write; `Default` writes none of them. For other tags, extend
/// [`exif_fields`]'s list and use [`exif_tiff`] and [`with_exif_tiff`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExifSpec<'a> {
    /// Orientation (1–8 are meaningful; other values are written as given).
    pub orientation: Option<u16>,
    /// Latitude and longitude in signed decimal degrees, written as EXIF's
    /// degrees/minutes/seconds with N/S and E/W references.
    pub gps: Option<(f64, f64)>,
    /// DateTimeOriginal in EXIF's own format, `2024:05:01 10:20:30`.
    pub taken_at: Option<&'a str>,
}

fn dms(degrees: f64) -> Vec<Rational> {
    let abs = degrees.abs();
    let d = abs.floor();
    let m = ((abs - d) * 60.0).floor();
    let s = (abs - d - m / 60.0) * 3600.0;
    vec![
        Rational {
            num: d as u32,
            denom: 1,
        },
        Rational {
            num: m as u32,
            denom: 1,
        },
        Rational {
            num: (s * 10_000.0).round() as u32,
            denom: 10_000,
        },
    ]
}

/// An ASCII field of the primary image, e.g. `OffsetTimeOriginal` = `+07:00`.
pub fn ascii_field(tag: Tag, text: &str) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![text.as_bytes().to_vec()]),
    }
}

/// A one-rational field of the primary image (to 1/100), e.g. `GPSHPositioningError`.
pub fn rational_field(tag: Tag, value: f64) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Rational(vec![Rational {
            num: (value * 100.0).round() as u32,
            denom: 100,
        }]),
    }
}

/// The EXIF fields for `spec` (with a `Software` tag, so the list is never empty).
pub fn exif_fields(spec: &ExifSpec) -> Vec<Field> {
    let mut fields = vec![ascii_field(Tag::Software, "wardcheck testing")];
    if let Some(orientation) = spec.orientation {
        fields.push(Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![orientation]),
        });
    }
    if let Some(taken_at) = spec.taken_at {
        fields.push(ascii_field(Tag::DateTimeOriginal, taken_at));
    }
    if let Some((lat, lon)) = spec.gps {
        let gps = |tag, value| Field {
            tag,
            ifd_num: In::PRIMARY,
            value,
        };
        fields.push(gps(Tag::GPSVersionID, Value::Byte(vec![2, 3, 0, 0])));
        fields.push(ascii_field(
            Tag::GPSLatitudeRef,
            if lat < 0.0 { "S" } else { "N" },
        ));
        fields.push(gps(Tag::GPSLatitude, Value::Rational(dms(lat))));
        fields.push(ascii_field(
            Tag::GPSLongitudeRef,
            if lon < 0.0 { "W" } else { "E" },
        ));
        fields.push(gps(Tag::GPSLongitude, Value::Rational(dms(lon))));
    }
    fields
}

/// An EXIF block (TIFF header and IFDs, as in an APP1 segment after `Exif\0\0`) of
/// `fields`, written with kamadak-exif's writer. Panics on an empty or duplicated list.
pub fn exif_tiff(fields: &[Field]) -> Vec<u8> {
    let mut writer = Writer::new();
    for field in fields {
        writer.push_field(field);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, false).expect("write EXIF");
    out.into_inner()
}

/// `jpeg` with an APP1 EXIF segment holding `tiff` (any bytes, even broken ones)
/// inserted right after its SOI marker.
pub fn with_exif_tiff(jpeg: &[u8], tiff: &[u8]) -> Vec<u8> {
    assert!(jpeg.starts_with(&[0xff, 0xd8]), "not a JPEG");
    let length = u16::try_from(2 + 6 + tiff.len()).expect("EXIF too long");
    let mut out = Vec::with_capacity(jpeg.len() + tiff.len() + 10);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// `jpeg` with an APP1 EXIF segment for `spec` inserted right after its SOI marker.
pub fn with_exif(jpeg: &[u8], spec: &ExifSpec) -> Vec<u8> {
    with_exif_tiff(jpeg, &exif_tiff(&exif_fields(spec)))
}

/// A JPEG like [`jpeg`] carrying the EXIF of `spec`.
pub fn jpeg_with_exif(width: u32, height: u32, seed: u64, spec: &ExifSpec) -> Vec<u8> {
    with_exif(&jpeg(width, height, seed), spec)
}

// Documents.

/// The unit the tests use: Ngô Mây ward police, Kon Tum.
pub fn sample_unit() -> Unit {
    Unit {
        id: "kontum-ngo-may".into(),
        name: "Công an phường Ngô Mây".into(),
        city: "Kon Tum".into(),
        province: "Kon Tum".into(),
    }
}

/// Records a made-up enrolment of `workspace` for `user` with `role`, as
/// `transport::enroll` would after a real one: a reviewer's workspace may then approve
/// and return criteria.
pub fn enrol_as(workspace: &crate::Workspace, user: &str, role: crate::model::Role) {
    workspace
        .save_enrolment(&crate::Enrolment {
            relay_url: "http://127.0.0.1:9".into(),
            device_id: workspace.device_id().into(),
            token: "0".repeat(64),
            user_id: user.into(),
            role,
            unit_id: "kt".into(),
        })
        .expect("a test workspace stores its enrolment");
}

/// A signed evidence record for made-up photo bytes `seed` (no image processing: fast).
pub fn signed_evidence(seed: u64, by: &Author) -> Evidence {
    let key = device_key(&by.device);
    let claim = CaptureClaim {
        evidence_hash: BlobHash::of(format!("evidence {seed}").as_bytes()),
        thumbnail_hash: BlobHash::of(format!("thumbnail {seed}").as_bytes()),
        captured_at: "2025-05-01T09:30:00+07:00".into(),
        location: None,
        officer: by.user.clone(),
        device: by.device.clone(),
    };
    Evidence {
        photo: claim.evidence_hash,
        thumbnail: claim.thumbnail_hash,
        perceptual_hash: PerceptualHash(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        width: 1600,
        height: 1200,
        caption: format!("photo {seed}"),
        signature: key.sign(&claim),
        captured_at: claim.captured_at,
        location: None,
        officer: claim.officer,
        device: claim.device,
        device_key: key.public_key(),
        added_at_ms: seed as i64,
        to_reconfirm: false,
    }
}

/// A deterministic key pair for a device id, so tests can verify what they signed.
pub fn device_key(device: &str) -> DeviceKey {
    DeviceKey::from_secret_bytes(BlobHash::of(device.as_bytes()).as_bytes())
        .expect("32 bytes make a key")
}

/// A self-signed P-256 certificate for `localhost` and 127.0.0.1, valid for a day, written
/// with its key as `cert.pem` and `key.pem` in `dir` by `openssl`: `(cert, key)`, or
/// `None` (said on stderr) when openssl is not available. It is no CA, so it can be both
/// a server's certificate and the root a test client trusts.
pub fn self_signed_certificate(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if made.is_ok_and(|s| s.success()) {
        Some((cert, key))
    } else {
        eprintln!("skipped: openssl is not available to make a test certificate");
        None
    }
}

/// A compressed change chunk (Automerge's chunk type 2) that inflates to `change` followed
/// by `extra` zero bytes (a change's "extra bytes", which Automerge reads and keeps): a
/// valid change, `change` as it applies, about `extra / 1000` bytes long. The bytes are
/// deflated and hashed as they are produced, never held whole. Chunk layout: see
/// `crate::sync::inflation`.
pub fn compressed_change_bomb(change: &automerge::Change, extra: usize) -> Vec<u8> {
    use std::io::Write;

    use sha2::Digest;

    let raw = change.raw_bytes();
    // Magic (4), checksum (4), type (1), then the body's length: its last byte is < 0x80.
    let length_bytes = raw[9..].iter().take_while(|&&b| b >= 0x80).count() + 1;
    let body = &raw[9 + length_bytes..];
    // The checksum is the start of the SHA-256 of the uncompressed chunk's type, length
    // and body (automerge `src/storage/chunk.rs`, `hash`).
    let prefix = [vec![1], uleb((body.len() + extra) as u64)].concat();
    let mut hash = sha2::Sha256::new();
    hash.update(&prefix);
    let mut deflate =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    let mut feed = |bytes: &[u8]| {
        hash.update(bytes);
        deflate.write_all(bytes).expect("deflating into memory");
    };
    feed(body);
    let block = [0u8; 64 * 1024];
    let mut left = extra;
    while left > 0 {
        let n = left.min(block.len());
        feed(&block[..n]);
        left -= n;
    }
    let deflated = deflate.finish().expect("deflating into memory");
    let mut chunk = raw[..4].to_vec();
    chunk.extend_from_slice(&hash.finalize()[..4]);
    chunk.push(2);
    chunk.extend(uleb(deflated.len() as u64));
    chunk.extend_from_slice(&deflated);
    chunk
}

/// A bundle chunk (Automerge's chunk type 3) of some 20 bytes, checksum valid, whose one
/// column (the ops' counters, delta-encoded: the legacy `ID_CTR`) is a single run of
/// `rows` rows. Automerge 0.12 decodes it into a `Vec<i64>` of `rows` elements as it
/// parses the chunk (`storage/bundle/storage.rs`, `decode_delta_int`): 2^40 rows ask for
/// 8 TiB. Chunk layout: see `crate::sync::inflation`.
pub fn long_run_bundle(rows: u64) -> Vec<u8> {
    use sha2::Digest;

    let column = [sleb(i64::try_from(rows).expect("rows under 2^63")), sleb(1)].concat();
    // No deps, no actors, no change columns; one op column: id 2, delta (3).
    let body = [
        &[0, 0, 0, 1][..],
        &uleb(2 << 4 | 3),
        &uleb(column.len() as u64),
        &column,
    ]
    .concat();
    let hashed = [&[3][..], &uleb(body.len() as u64), &body].concat();
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83];
    chunk.extend_from_slice(&sha2::Sha256::digest(&hashed)[..4]);
    chunk.extend_from_slice(&hashed);
    chunk
}

/// `value` as unsigned LEB128, as Automerge writes numbers.
pub fn uleb(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

/// `value` as signed LEB128, as Automerge writes run counts and deltas.
pub fn sleb(mut value: i64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0) {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_are_deterministic_and_seeds_differ() {
        assert_eq!(jpeg(64, 48, 1), jpeg(64, 48, 1));
        assert_ne!(picture(64, 48, 1), picture(64, 48, 2));
        assert_eq!(picture(5, 3, 9).len(), 5 * 3 * 3);
        let png = png(10, 6, 3);
        let decoded = image::load_from_memory(&png).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (10, 6));
    }

    #[test]
    fn exif_is_readable_by_kamadak() {
        let spec = ExifSpec {
            orientation: Some(6),
            gps: Some((10.5, -20.25)),
            taken_at: Some("2024:05:01 10:20:30"),
        };
        let bytes = jpeg_with_exif(32, 16, 4, &spec);
        let exif = exif::Reader::new()
            .read_from_container(&mut Cursor::new(&bytes))
            .unwrap();
        let orientation = exif.get_field(Tag::Orientation, In::PRIMARY).unwrap();
        assert_eq!(orientation.value.get_uint(0), Some(6));
        let lon_ref = exif.get_field(Tag::GPSLongitudeRef, In::PRIMARY).unwrap();
        assert_eq!(lon_ref.display_value().to_string(), "W");
        // Still a JPEG that decodes.
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (32, 16));
    }
}

//! Sniffing and decoding camera bytes, with every limit checked from the header first.

use std::io::Cursor;

use jpeg_decoder::{CodingProcess, PixelFormat};

use super::raster::{self, Raster};
use super::{PhotoConfig, PhotoError};

/// The PNG signature.
const PNG_MAGIC: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
/// The JPEG start-of-image marker.
const JPEG_MAGIC: [u8; 2] = [0xff, 0xd8];

/// The input formats, told apart by their magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Jpeg,
    Png,
}

/// Tells the format from the first bytes; the file name or MIME type are not trusted.
pub(super) fn sniff(input: &[u8]) -> Option<Format> {
    if input.starts_with(&JPEG_MAGIC) {
        Some(Format::Jpeg)
    } else if input.starts_with(&PNG_MAGIC) {
        Some(Format::Png)
    } else {
        None
    }
}

/// A decoded picture, not yet oriented, and its raw EXIF (TIFF bytes) if any.
pub(super) struct Decoded {
    pub raster: Raster,
    pub exif: Option<Vec<u8>>,
}

/// Checks the size and format of `input`, then decodes it, as small as possible while
/// its long side stays at least `target_long_side` (JPEG only: PNG decodes at full
/// size).
pub(super) fn decode(
    input: &[u8],
    config: &PhotoConfig,
    target_long_side: u32,
) -> Result<Decoded, PhotoError> {
    if input.is_empty() {
        return Err(PhotoError::Empty);
    }
    if input.len() > config.max_input_bytes {
        return Err(PhotoError::TooLarge {
            size: input.len(),
            max: config.max_input_bytes,
        });
    }
    match sniff(input) {
        Some(Format::Jpeg) => decode_jpeg(input, config, target_long_side),
        Some(Format::Png) => decode_png(input, config),
        None => Err(PhotoError::UnsupportedFormat),
    }
}

/// Refuses a declared size over the limits.
fn check_dimensions(
    width: u32,
    height: u32,
    max_pixels: u64,
    config: &PhotoConfig,
) -> Result<(), PhotoError> {
    let pixels = u64::from(width) * u64::from(height);
    if width == 0
        || height == 0
        || width > config.max_side
        || height > config.max_side
        || pixels > max_pixels
    {
        return Err(PhotoError::TooManyPixels { width, height });
    }
    Ok(())
}

fn jpeg_error(error: jpeg_decoder::Error) -> PhotoError {
    match error {
        jpeg_decoder::Error::Unsupported(feature) => {
            PhotoError::UnsupportedFeature(format!("JPEG {feature:?}"))
        }
        other => PhotoError::Corrupt(other.to_string()),
    }
}

/// The size of the smallest DCT-scaled decode (1/8, 1/4, 1/2 or whole) whose long side
/// still reaches the fitted size, so the resize that follows only ever shrinks.
fn dct_scale(width: u32, height: u32, target_long_side: u32) -> (u32, u32) {
    let long = width.max(height);
    for eighths in [1u32, 2, 4] {
        // The short side follows: scaled by at least as much as the long one, ceiled.
        if (long * eighths).div_ceil(8) >= target_long_side {
            return (
                (width * eighths).div_ceil(8),
                (height * eighths).div_ceil(8),
            );
        }
    }
    (width, height)
}

fn decode_jpeg(
    input: &[u8],
    config: &PhotoConfig,
    target_long_side: u32,
) -> Result<Decoded, PhotoError> {
    let mut decoder = jpeg_decoder::Decoder::new(input);
    // Header only: nothing sized by the image is allocated before the limits pass.
    decoder.read_info().map_err(jpeg_error)?;
    let info = decoder
        .info()
        .ok_or_else(|| PhotoError::Corrupt("JPEG without a frame header".into()))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    let max_pixels = match info.coding_process {
        // Baseline is decoded one MCU row at a time straight into buffers of the
        // reduced size; progressive and lossless keep the whole image's coefficients
        // or samples.
        CodingProcess::DctSequential => config.max_pixels,
        CodingProcess::DctProgressive | CodingProcess::Lossless => {
            config.max_pixels.min(config.max_whole_decode_pixels)
        }
    };
    check_dimensions(width, height, max_pixels, config)?;
    let channels = match info.pixel_format {
        PixelFormat::L8 => 1,
        PixelFormat::RGB24 => 3,
        PixelFormat::L16 => {
            return Err(PhotoError::UnsupportedFeature(
                "16-bit lossless JPEG".into(),
            ));
        }
        PixelFormat::CMYK32 => return Err(PhotoError::UnsupportedFeature("CMYK JPEG".into())),
    };

    let (sw, sh) = dct_scale(width, height, target_long_side);
    // jpeg-decoder picks the smallest scale reaching the request in *either* side: ask
    // for the long side only, the other side at a size it never reaches.
    let request = |side: u32| u16::try_from(side).unwrap_or(u16::MAX);
    let (rw, rh) = if width >= height {
        (request(sw), u16::MAX)
    } else {
        (u16::MAX, request(sh))
    };
    let (out_w, out_h) = decoder.scale(rw, rh).map_err(jpeg_error)?;
    let (out_w, out_h) = (u32::from(out_w), u32::from(out_h));
    let expected = out_w as usize * out_h as usize * channels;
    // The decoder checks this too; it guards the buffer it returns.
    decoder.set_max_decoding_buffer_size(expected);
    let pixels = decoder.decode().map_err(jpeg_error)?;
    if pixels.len() != expected {
        return Err(PhotoError::Corrupt(format!(
            "JPEG decoded to {} bytes, expected {expected}",
            pixels.len()
        )));
    }
    let exif = decoder.exif_data().map(<[u8]>::to_vec);
    Ok(Decoded {
        raster: Raster::new(out_w, out_h, channels as u8, pixels)?,
        exif,
    })
}

/// Width and height from the PNG's IHDR, read by hand so the limits are checked before
/// the PNG decoder is even built.
fn png_header_size(input: &[u8]) -> Result<(u32, u32), PhotoError> {
    let corrupt = || PhotoError::Corrupt("PNG without an IHDR header".into());
    // 8 signature, 4 length, 4 type, 4 width, 4 height.
    let header = input.get(8..24).ok_or_else(corrupt)?;
    if &header[4..8] != b"IHDR" {
        return Err(corrupt());
    }
    let width = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    let height = u32::from_be_bytes([header[12], header[13], header[14], header[15]]);
    Ok((width, height))
}

fn png_error(error: png::DecodingError) -> PhotoError {
    PhotoError::Corrupt(error.to_string())
}

fn decode_png(input: &[u8], config: &PhotoConfig) -> Result<Decoded, PhotoError> {
    let (width, height) = png_header_size(input)?;
    let max_pixels = config.max_pixels.min(config.max_whole_decode_pixels);
    check_dimensions(width, height, max_pixels, config)?;

    // Second guard, inside the decoder: allocations bounded by the largest image allowed
    // at 16 bits per RGBA channel.
    let limits = png::Limits {
        bytes: usize::try_from(max_pixels.saturating_mul(8).saturating_add(1 << 20))
            .unwrap_or(usize::MAX),
    };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(input), limits);
    // Palettes, low bit depths and transparency keys expanded, 16-bit samples cut to 8.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(png_error)?;
    if reader.info().size() != (width, height) {
        return Err(PhotoError::Corrupt(
            "PNG header disagrees with itself".into(),
        ));
    }
    let exif = reader.info().exif_metadata.as_deref().map(<[u8]>::to_vec);
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| PhotoError::Corrupt("PNG too large for this device".into()))?;
    let mut pixels = vec![0; size];
    let frame = reader.next_frame(&mut pixels).map_err(png_error)?;
    pixels.truncate(frame.buffer_size());
    let (channels, alpha) = match frame.color_type {
        png::ColorType::Grayscale => (1, false),
        png::ColorType::GrayscaleAlpha => (1, true),
        png::ColorType::Rgb => (3, false),
        png::ColorType::Rgba => (3, true),
        png::ColorType::Indexed => {
            return Err(PhotoError::Corrupt("PNG palette left unexpanded".into()));
        }
    };
    if alpha {
        pixels = raster::over_white(&pixels, channels);
    }
    Ok(Decoded {
        raster: Raster::new(width, height, channels as u8, pixels)?,
        exif,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magic_bytes() {
        assert_eq!(sniff(&[0xff, 0xd8, 0xff, 0xe0]), Some(Format::Jpeg));
        assert_eq!(sniff(&PNG_MAGIC), Some(Format::Png));
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBP"), None);
        assert_eq!(sniff(&[0xff]), None);
    }

    #[test]
    fn dct_scale_is_the_smallest_that_covers_the_target() {
        // 12 MP: 1/2 gives 2000×1500 ≥ 1600×1200, 1/4 would give 1000×750.
        assert_eq!(dct_scale(4000, 3000, 1600), (2000, 1500));
        assert_eq!(dct_scale(4032, 3024, 1600), (2016, 1512));
        // 200 MP: 1/8.
        assert_eq!(dct_scale(16320, 12240, 1600), (2040, 1530));
        // 3200×2400 at 1/2 is exactly the target.
        assert_eq!(dct_scale(3200, 2400, 1600), (1600, 1200));
        // Smaller than the target: full size, no upscale.
        assert_eq!(dct_scale(800, 600, 1600), (800, 600));
        // Just over: 1/2 would be too small.
        assert_eq!(dct_scale(1700, 1000, 1600), (1700, 1000));
    }

    #[test]
    fn png_header_is_read_by_hand() {
        let png = crate::testing::png(7, 5, 1);
        assert_eq!(png_header_size(&png), Ok((7, 5)));
        assert!(matches!(
            png_header_size(&png[..20]),
            Err(PhotoError::Corrupt(_))
        ));
    }
}

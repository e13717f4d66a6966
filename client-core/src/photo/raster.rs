//! An 8-bit gray or RGB picture in memory, and what the pipeline does to it: resize,
//! turn upright, encode.

use fast_image_resize as fir;
use jpeg_encoder::{Encoder, ImageBuffer, JpegColorType, rgb_to_ycbcr};

use super::PhotoError;

/// Interleaved 8-bit samples, row by row, 1 (gray) or 3 (RGB) channels per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Raster {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub data: Vec<u8>,
}

impl Raster {
    /// Wraps `data`, checking that it holds exactly `width × height` pixels.
    pub fn new(width: u32, height: u32, channels: u8, data: Vec<u8>) -> Result<Self, PhotoError> {
        let expected = (width as usize)
            .checked_mul(height as usize)
            .and_then(|n| n.checked_mul(usize::from(channels)));
        if width == 0 || height == 0 || !matches!(channels, 1 | 3) || expected != Some(data.len()) {
            return Err(PhotoError::Corrupt(format!(
                "{width}×{height}×{channels} picture with {} bytes",
                data.len()
            )));
        }
        Ok(Self {
            width,
            height,
            channels,
            data,
        })
    }

    /// The picture turned upright for EXIF `orientation` (1–8; other values are left
    /// as they are).
    ///
    /// EXIF says how the stored rows must be transformed for display: 2 mirror,
    /// 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise, 7 transverse,
    /// 8 rotate 90° counter-clockwise.
    pub fn oriented(self, orientation: u16) -> Self {
        if !(2..=8).contains(&orientation) {
            return self;
        }
        let (w, h) = (self.width as usize, self.height as usize);
        let c = usize::from(self.channels);
        let swaps = orientation >= 5;
        let (ow, oh) = if swaps { (h, w) } else { (w, h) };
        let mut out = vec![0u8; self.data.len()];
        // For each output pixel (x, y), the stored pixel it comes from.
        let source = |x: usize, y: usize| -> (usize, usize) {
            match orientation {
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (y, h - 1 - x),
                7 => (w - 1 - y, h - 1 - x),
                _ => (w - 1 - y, x),
            }
        };
        for (y, row) in out.chunks_exact_mut(ow * c).enumerate() {
            for (x, pixel) in row.chunks_exact_mut(c).enumerate() {
                let (sx, sy) = source(x, y);
                let at = (sy * w + sx) * c;
                pixel.copy_from_slice(&self.data[at..at + c]);
            }
        }
        Self {
            width: ow as u32,
            height: oh as u32,
            channels: self.channels,
            data: out,
        }
    }

    /// Encodes as a baseline JPEG (4:2:0 below quality 90), with no metadata at all.
    pub fn encode_jpeg(&self, quality: u8) -> Result<Vec<u8>, PhotoError> {
        let too_big =
            || PhotoError::Encode(format!("{}×{} is over 65535", self.width, self.height));
        let width = u16::try_from(self.width).map_err(|_| too_big())?;
        let height = u16::try_from(self.height).map_err(|_| too_big())?;
        // About 1 bit per pixel at quality 80: reserve that to avoid regrowing.
        let mut out = Vec::with_capacity(self.data.len() / 8 + 1024);
        Encoder::new(&mut out, quality)
            .encode_image(JpegInput {
                raster: self,
                width,
                height,
            })
            .map_err(|e| PhotoError::Encode(e.to_string()))?;
        Ok(out)
    }
}

/// A raster as the JPEG encoder reads it: gray as it is, RGB as YCbCr. One input type for
/// both, so the encoder is compiled once (`Encoder::encode` compiles it for nine colour
/// types, 0.1 MB of the phone library).
struct JpegInput<'a> {
    raster: &'a Raster,
    width: u16,
    height: u16,
}

impl ImageBuffer for JpegInput<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        if self.raster.channels == 1 {
            JpegColorType::Luma
        } else {
            JpegColorType::Ycbcr
        }
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let row_len = usize::from(self.width) * usize::from(self.raster.channels);
        let row = &self.raster.data[usize::from(y) * row_len..][..row_len];
        if self.raster.channels == 1 {
            buffers[0].extend_from_slice(row);
            return;
        }
        let [luma, cb, cr, _] = buffers;
        for pixel in row.chunks_exact(3) {
            let (y, b, r) = rgb_to_ycbcr(pixel[0], pixel[1], pixel[2]);
            luma.push(y);
            cb.push(b);
            cr.push(r);
        }
    }
}

/// The size of a `width × height` picture shrunk so its long side is at most
/// `long_side`, keeping the aspect ratio; never enlarged, never below 1 px.
pub(super) fn fit_within(width: u32, height: u32, long_side: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= long_side || long == 0 {
        return (width, height);
    }
    let scale = |side: u32| -> u32 {
        let scaled =
            (u64::from(side) * u64::from(long_side) + u64::from(long) / 2) / u64::from(long);
        // At most `long_side`, so it fits in u32.
        (scaled as u32).max(1)
    };
    if width >= height {
        (long_side, scale(height))
    } else {
        (scale(width), long_side)
    }
}

/// Resampling filters used by the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Filter {
    /// Sharpest; for the evidence, whose details matter.
    Lanczos3,
    /// Nearly as sharp for strong reductions, with a smaller kernel.
    CatmullRom,
}

/// A SIMD resizer whose scratch buffers are reused between calls.
pub(super) struct Resizer(fir::Resizer);

impl Resizer {
    pub fn new() -> Self {
        Self(fir::Resizer::new())
    }

    /// `src` resized to `width × height`; `src` itself when it already has that size.
    pub fn resize(
        &mut self,
        src: Raster,
        width: u32,
        height: u32,
        filter: Filter,
    ) -> Result<Raster, PhotoError> {
        if (src.width, src.height) == (width, height) {
            return Ok(src);
        }
        // Gray goes through the RGB resizer (the same filter on each equal channel, so the
        // same samples): one pixel type compiled instead of two, 0.3 MB less phone library.
        let gray = src.channels == 1;
        let mut rgb = if gray {
            gray_to_rgb(&src.data)
        } else {
            src.data
        };
        let resize_error = |e: &dyn std::fmt::Display| PhotoError::Resize(e.to_string());
        let mut data = vec![0; width as usize * height as usize * 3];
        // Source, destination and the resizer's own scratch image are all one type
        // (`TypedImage`): each convolution is compiled once instead of once per pair of
        // view types, 0.2 MB less phone library. A typed call, too: `fir::Resizer::resize`
        // would dispatch over all thirteen pixel types.
        type Rgb<'a> = fir::images::TypedImage<'a, fir::pixels::U8x3>;
        let src_image =
            Rgb::from_buffer(src.width, src.height, &mut rgb).map_err(|e| resize_error(&e))?;
        let mut dst = Rgb::from_buffer(width, height, &mut data).map_err(|e| resize_error(&e))?;
        let filter = match filter {
            Filter::Lanczos3 => fir::FilterType::Lanczos3,
            Filter::CatmullRom => fir::FilterType::CatmullRom,
        };
        let options = fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(filter));
        self.0
            .resize_typed(&src_image, &mut dst, &options)
            .map_err(|e| resize_error(&e))?;
        if gray {
            data = data.into_iter().step_by(3).collect();
        }
        Raster::new(width, height, src.channels, data)
    }
}

/// Each gray sample three times: the RGB picture that looks the same.
fn gray_to_rgb(gray: &[u8]) -> Vec<u8> {
    gray.iter().flat_map(|&v| [v; 3]).collect()
}

/// Gray-alpha or RGBA samples (`channels` colour samples then alpha, per pixel) laid
/// over white, as a viewer shows them: gray or RGB.
pub(super) fn over_white(samples: &[u8], channels: usize) -> Vec<u8> {
    let blend = |value: u8, alpha: u8| -> u8 {
        let (v, a) = (u32::from(value), u32::from(alpha));
        ((v * a + 255 * (255 - a) + 127) / 255) as u8
    };
    let mut out = Vec::with_capacity(samples.len() / (channels + 1) * channels);
    for pixel in samples.chunks_exact(channels + 1) {
        let (color, alpha) = pixel.split_at(channels);
        out.extend(color.iter().map(|&v| blend(v, alpha[0])));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 RGB picture whose pixel values are their own index.
    fn numbered() -> Raster {
        let data = (0u8..6).flat_map(|i| [i, i, i]).collect();
        Raster::new(3, 2, 3, data).unwrap()
    }

    /// The first channel of each pixel, row by row.
    fn indices(r: &Raster) -> Vec<u8> {
        r.data.chunks_exact(3).map(|p| p[0]).collect()
    }

    #[test]
    fn orientations_turn_the_picture_upright() {
        // Stored:
        //   0 1 2
        //   3 4 5
        let cases: [(u16, (u32, u32), [u8; 6]); 8] = [
            (1, (3, 2), [0, 1, 2, 3, 4, 5]),
            (2, (3, 2), [2, 1, 0, 5, 4, 3]),
            (3, (3, 2), [5, 4, 3, 2, 1, 0]),
            (4, (3, 2), [3, 4, 5, 0, 1, 2]),
            (5, (2, 3), [0, 3, 1, 4, 2, 5]),
            // 90° clockwise: the left column, read bottom-up, becomes the top row.
            (6, (2, 3), [3, 0, 4, 1, 5, 2]),
            (7, (2, 3), [5, 2, 4, 1, 3, 0]),
            (8, (2, 3), [2, 5, 1, 4, 0, 3]),
        ];
        for (orientation, size, expected) in cases {
            let out = numbered().oriented(orientation);
            assert_eq!((out.width, out.height), size, "orientation {orientation}");
            assert_eq!(indices(&out), expected, "orientation {orientation}");
        }
        assert_eq!(numbered().oriented(0), numbered());
        assert_eq!(numbered().oriented(9), numbered());
    }

    #[test]
    fn fit_within_keeps_the_aspect_and_never_enlarges() {
        assert_eq!(fit_within(4000, 3000, 1600), (1600, 1200));
        assert_eq!(fit_within(3000, 4000, 1600), (1200, 1600));
        assert_eq!(fit_within(1600, 1200, 320), (320, 240));
        assert_eq!(fit_within(800, 600, 1600), (800, 600));
        assert_eq!(fit_within(30000, 10, 1600), (1600, 1));
        assert_eq!(fit_within(4032, 3024, 1600), (1600, 1200));
    }

    #[test]
    fn raster_refuses_a_wrong_buffer() {
        assert!(Raster::new(2, 2, 3, vec![0; 11]).is_err());
        assert!(Raster::new(2, 2, 2, vec![0; 8]).is_err());
        assert!(Raster::new(0, 2, 1, vec![]).is_err());
    }

    #[test]
    fn resize_gray_and_rgb() {
        let mut resizer = Resizer::new();
        let gray = Raster::new(40, 20, 1, vec![200; 800]).unwrap();
        let small = resizer.resize(gray, 10, 5, Filter::Lanczos3).unwrap();
        assert_eq!((small.width, small.height, small.data.len()), (10, 5, 50));
        assert!(small.data.iter().all(|&v| v == 200));
        let rgb = Raster::new(40, 20, 3, vec![90; 2400]).unwrap();
        let small = resizer.resize(rgb, 8, 4, Filter::CatmullRom).unwrap();
        assert_eq!(small.data.len(), 8 * 4 * 3);
    }

    #[test]
    fn gray_through_rgb_gives_the_gray_resizers_samples() {
        use fir::{IntoImageView, IntoImageViewMut};
        let (w, h) = (257, 131);
        // A picture with detail: a pseudo-random pattern over a gradient.
        let data: Vec<u8> = (0..w * h)
            .map(|i| ((i * 7919 % 251) as u8).wrapping_add((i / w) as u8))
            .collect();
        for (dw, dh, filter, fir_filter) in [
            (64, 33, Filter::Lanczos3, fir::FilterType::Lanczos3),
            (20, 90, Filter::CatmullRom, fir::FilterType::CatmullRom),
            (3, 1, Filter::Lanczos3, fir::FilterType::Lanczos3),
        ] {
            let src = fir::images::ImageRef::new(w, h, &data, fir::PixelType::U8).unwrap();
            let mut dst = fir::images::Image::new(dw, dh, fir::PixelType::U8);
            let options =
                fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(fir_filter));
            fir::Resizer::new()
                .resize_typed::<fir::pixels::U8>(
                    &src.image_view().unwrap(),
                    &mut dst.image_view_mut().unwrap(),
                    &options,
                )
                .unwrap();
            let gray = Raster::new(w, h, 1, data.clone()).unwrap();
            let ours = Resizer::new().resize(gray, dw, dh, filter).unwrap();
            assert_eq!(ours.channels, 1);
            assert_eq!(ours.data, dst.into_vec(), "{dw}×{dh}");
        }
    }
}

//! Reading time, place and orientation from a photo's EXIF.
//!
//! Phones write EXIF well, but apps, editors and messengers mangle it: every tag is
//! read on its own, and a tag that is missing, malformed or out of range is simply
//! absent from the result. Nothing here can fail the photo.

#[cfg(test)]
use ::exif::Field;
use ::exif::{Exif, In, Tag, Value};

use super::{GeoPoint, PhotoMetadata};

/// The metadata in `tiff` (an EXIF block starting at its TIFF header).
pub(super) fn read_metadata(tiff: &[u8]) -> PhotoMetadata {
    let mut reader = ::exif::Reader::new();
    // Keep what parses of a partly broken block (e.g. a bad thumbnail IFD).
    reader.continue_on_error(true);
    let parsed = reader
        .read_raw(tiff.to_vec())
        .or_else(|e| e.distill_partial_result(|_ignored| {}));
    match parsed {
        Ok(exif) => PhotoMetadata {
            captured_at: captured_at(&exif),
            location: location(&exif),
            orientation: orientation(&exif),
        },
        Err(_) => PhotoMetadata::default(),
    }
}

fn ascii(exif: &Exif, tag: Tag) -> Option<&[u8]> {
    match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(parts) => parts.first().map(Vec::as_slice),
        _ => None,
    }
}

/// EXIF Orientation, 1–8; 1 when absent or invalid.
fn orientation(exif: &Exif) -> u16 {
    exif.get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .and_then(|v| u16::try_from(v).ok())
        .filter(|v| (1..=8).contains(v))
        .unwrap_or(1)
}

/// Parses the `n`-digit decimal number in `digits`.
fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0')),
    )
}

/// DateTimeOriginal (`YYYY:MM:DD HH:MM:SS`) as ISO 8601, with OffsetTimeOriginal
/// (`±HH:MM`) appended when present and valid.
fn captured_at(exif: &Exif) -> Option<String> {
    let text = ascii(exif, Tag::DateTimeOriginal)?;
    let text = text.get(..19)?;
    let field = |range: std::ops::Range<usize>| text.get(range).and_then(number);
    let separators_ok = text[4] == b':'
        && text[7] == b':'
        && text[10] == b' '
        && text[13] == b':'
        && text[16] == b':';
    if !separators_ok {
        return None;
    }
    let (year, month, day) = (field(0..4)?, field(5..7)?, field(8..10)?);
    let (hour, minute, second) = (field(11..13)?, field(14..16)?, field(17..19)?);
    // `time` checks the calendar (months, leap years) and the clock.
    let month_name = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let year_i32 = i32::try_from(year).ok()?;
    time::Date::from_calendar_date(year_i32, month_name, u8::try_from(day).ok()?).ok()?;
    time::Time::from_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
    .ok()?;
    let mut iso = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    if let Some(offset) = ascii(exif, Tag::OffsetTimeOriginal).and_then(offset) {
        iso.push_str(&offset);
    }
    Some(iso)
}

/// A valid `±HH:MM` offset (at most ±14:00, the widest in use), or `None`.
fn offset(text: &[u8]) -> Option<String> {
    let text = text.get(..6)?;
    let sign = match text[0] {
        b'+' => '+',
        b'-' => '-',
        _ => return None,
    };
    let (hours, minutes) = (number(&text[1..3])?, number(&text[4..6])?);
    if text[3] != b':' || minutes >= 60 || hours * 60 + minutes > 14 * 60 {
        return None;
    }
    Some(format!("{sign}{hours:02}:{minutes:02}"))
}

/// Degrees from EXIF's three rationals (degrees, minutes, seconds).
fn degrees(exif: &Exif, tag: Tag) -> Option<f64> {
    let Value::Rational(parts) = &exif.get_field(tag, In::PRIMARY)?.value else {
        return None;
    };
    let [d, m, s] = parts.get(..3)? else {
        return None;
    };
    if d.denom == 0 || m.denom == 0 || s.denom == 0 {
        return None;
    }
    Some(d.to_f64() + m.to_f64() / 60.0 + s.to_f64() / 3600.0)
}

/// GPS position with its reference letters; `None` when anything is missing or
/// invalid, including a reference letter (a wrong sign is thousands of km off) and the
/// exact (0, 0) that some phones write when they have no fix.
fn location(exif: &Exif) -> Option<GeoPoint> {
    let lat = degrees(exif, Tag::GPSLatitude)?;
    let lon = degrees(exif, Tag::GPSLongitude)?;
    let lat = match ascii(exif, Tag::GPSLatitudeRef)?.first()? {
        b'N' | b'n' => lat,
        b'S' | b's' => -lat,
        _ => return None,
    };
    let lon = match ascii(exif, Tag::GPSLongitudeRef)?.first()? {
        b'E' | b'e' => lon,
        b'W' | b'w' => -lon,
        _ => return None,
    };
    if lat == 0.0 && lon == 0.0 {
        return None;
    }
    let accuracy_m = match exif.get_field(Tag::GPSHPositioningError, In::PRIMARY) {
        Some(field) => match &field.value {
            Value::Rational(v) => v.first().filter(|r| r.denom != 0).map(|r| r.to_f64()),
            _ => None,
        },
        None => None,
    };
    // A bad accuracy does not lose the position.
    GeoPoint::new(lat, lon, accuracy_m)
        .or_else(|_| GeoPoint::new(lat, lon, None))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ExifSpec, ascii_field, exif_fields, exif_tiff, rational_field};

    /// The metadata of `spec`'s EXIF, with an OffsetTimeOriginal if `offset` is given.
    fn read_with_offset(spec: &ExifSpec, offset: Option<&str>) -> PhotoMetadata {
        let mut fields = exif_fields(spec);
        fields.extend(offset.map(|o| ascii_field(Tag::OffsetTimeOriginal, o)));
        read_metadata(&exif_tiff(&fields))
    }

    fn read(spec: &ExifSpec) -> PhotoMetadata {
        read_with_offset(spec, None)
    }

    #[test]
    fn reads_time_place_and_orientation() {
        let spec = ExifSpec {
            orientation: Some(6),
            gps: Some((21.028511, -105.804817)),
            taken_at: Some("2024:05:01 10:20:30"),
        };
        let mut fields = exif_fields(&spec);
        fields.push(ascii_field(Tag::OffsetTimeOriginal, "+07:00"));
        fields.push(rational_field(Tag::GPSHPositioningError, 4.5));
        let meta = read_metadata(&exif_tiff(&fields));
        assert_eq!(meta.orientation, 6);
        assert_eq!(
            meta.captured_at.as_deref(),
            Some("2024-05-01T10:20:30+07:00")
        );
        let at = meta.location.unwrap();
        assert!((at.lat - 21.028511).abs() < 1e-6, "{at:?}");
        assert!((at.lon + 105.804817).abs() < 1e-6, "{at:?}");
        assert_eq!(at.accuracy_m, Some(4.5));
        // Without an accuracy tag the position stands alone.
        assert_eq!(read(&spec).location.unwrap().accuracy_m, None);
    }

    #[test]
    fn time_without_offset() {
        let meta = read(&ExifSpec {
            taken_at: Some("2023:12:31 23:59:59"),
            ..ExifSpec::default()
        });
        assert_eq!(meta.captured_at.as_deref(), Some("2023-12-31T23:59:59"));
        assert_eq!(meta.location, None);
        assert_eq!(meta.orientation, 1);
    }

    #[test]
    fn bad_values_are_dropped_one_by_one() {
        let spec = ExifSpec {
            orientation: Some(9),
            gps: Some((0.0, 0.0)),
            taken_at: Some("2024:02:30 10:20:30"),
        };
        assert_eq!(
            read_with_offset(&spec, Some("+07:00")),
            PhotoMetadata::default()
        );
        let meta = read(&ExifSpec {
            taken_at: Some("2024:02:29 24:00:00"),
            ..ExifSpec::default()
        });
        assert_eq!(meta.captured_at, None);
        let spec = ExifSpec {
            taken_at: Some("2024:02:29 10:00:00"),
            ..ExifSpec::default()
        };
        let meta = read_with_offset(&spec, Some("+7:00"));
        assert_eq!(meta.captured_at.as_deref(), Some("2024-02-29T10:00:00"));
        let meta = read(&ExifSpec {
            taken_at: Some("    :  :     :  :  "),
            ..ExifSpec::default()
        });
        assert_eq!(meta.captured_at, None);
        // A bad accuracy keeps the position.
        let mut fields = exif_fields(&ExifSpec {
            gps: Some((10.0, 106.0)),
            ..ExifSpec::default()
        });
        fields.push(Field {
            tag: Tag::GPSHPositioningError,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![::exif::Rational { num: 5, denom: 0 }]),
        });
        let at = read_metadata(&exif_tiff(&fields)).location.unwrap();
        assert_eq!((at.lat, at.lon, at.accuracy_m), (10.0, 106.0, None));
    }

    #[test]
    fn garbage_gives_no_metadata() {
        assert_eq!(read_metadata(b""), PhotoMetadata::default());
        assert_eq!(read_metadata(b"MM\0*garbage"), PhotoMetadata::default());
        let good = exif_tiff(&exif_fields(&ExifSpec {
            orientation: Some(3),
            ..ExifSpec::default()
        }));
        for cut in 0..good.len() {
            let _ = read_metadata(&good[..cut]);
        }
    }

    #[test]
    fn offsets() {
        assert_eq!(offset(b"+07:00").as_deref(), Some("+07:00"));
        assert_eq!(offset(b"-03:30").as_deref(), Some("-03:30"));
        assert_eq!(offset(b"+14:00").as_deref(), Some("+14:00"));
        assert_eq!(offset(b"+14:01"), None);
        assert_eq!(offset(b"07:00"), None);
        assert_eq!(offset(b"+07-00"), None);
        assert_eq!(offset(b"+07:6a"), None);
    }
}

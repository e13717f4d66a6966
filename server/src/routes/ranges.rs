//! Single byte ranges of a resource (RFC 9110 §14): what a `Range` header asks for, and
//! the `206`/`416` answers. Blobs and document snapshots are downloaded this way, so a
//! cut download goes on from the bytes that came.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use wardcheck_core::blob::BlobHash;

use crate::error::AppError;

/// The `ETag` of content named by its SHA-256: the quoted hash.
pub(crate) fn etag(hash: &BlobHash) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{hash}\"")).expect("hex is a valid header value")
}

/// Headers of content named by its SHA-256 (a blob, a snapshot), `length` bytes of it.
pub(crate) fn content_headers(
    hash: &BlobHash,
    length: u64,
) -> [(header::HeaderName, HeaderValue); 6] {
    [
        (header::CONTENT_LENGTH, HeaderValue::from(length)),
        (header::ETAG, etag(hash)),
        (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=31536000, immutable"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ]
}

/// The part of a resource of `size` bytes an answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    /// Its first byte.
    pub start: u64,
    /// Its length.
    pub length: u64,
    /// The resource's size.
    pub size: u64,
    /// Whether a range was asked for (and so the answer is a `206`).
    ranged: bool,
}

impl Part {
    /// What `headers`' `Range` asks of a resource of `size` bytes: the whole of it without
    /// a usable range, [`AppError::RangeNotSatisfiable`] (416) for one past the end.
    pub fn asked(headers: &HeaderMap, size: u64) -> Result<Self, AppError> {
        let range = headers
            .get(header::RANGE)
            .and_then(|value| value.to_str().ok());
        match parse_range(range, size) {
            ByteRange::Whole => Ok(Self {
                start: 0,
                length: size,
                size,
                ranged: false,
            }),
            ByteRange::Part { start, end } => Ok(Self {
                start,
                length: end - start + 1,
                size,
                ranged: true,
            }),
            ByteRange::Unsatisfiable => Err(AppError::RangeNotSatisfiable { size }),
        }
    }

    /// `206 Partial Content` for a range, `200 OK` for the whole.
    pub fn status(&self) -> StatusCode {
        if self.ranged {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        }
    }

    /// Adds the `Content-Range` of a `206` answer to `response`.
    pub fn label(&self, mut response: Response) -> Response {
        if self.ranged {
            let (start, end, size) = (self.start, self.start + self.length - 1, self.size);
            let value = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}"))
                .expect("digits are a valid header value");
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        response
    }
}

/// What part of a resource of a given size a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteRange {
    /// No (usable) range: the whole resource.
    Whole,
    /// Bytes `start..=end`, within the resource.
    Part { start: u64, end: u64 },
    /// A valid range entirely past the end.
    Unsatisfiable,
}

/// Parses a single byte range (RFC 9110 §14.1.2). Multiple ranges and syntax errors
/// are ignored (the whole resource is sent), as the RFC allows.
fn parse_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let number = |s: &str| -> Option<Option<u64>> {
        let s = s.trim();
        if s.is_empty() {
            Some(None)
        } else if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok().map(Some)
        } else {
            None
        }
    };
    let (Some(first), Some(last)) = (number(first), number(last)) else {
        return ByteRange::Whole;
    };
    match (first, last) {
        (Some(start), last) => {
            if last.is_some_and(|last| last < start) {
                return ByteRange::Whole;
            }
            if start >= size {
                return ByteRange::Unsatisfiable;
            }
            let end = last.map_or(size - 1, |last| last.min(size - 1));
            ByteRange::Part { start, end }
        }
        (None, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                return ByteRange::Unsatisfiable;
            }
            ByteRange::Part {
                start: size.saturating_sub(suffix),
                end: size - 1,
            }
        }
        (None, None) => ByteRange::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_parsing() {
        use ByteRange::*;
        assert_eq!(parse_range(None, 10), Whole);
        assert_eq!(
            parse_range(Some("bytes=0-0"), 10),
            Part { start: 0, end: 0 }
        );
        assert_eq!(parse_range(Some("bytes=3-"), 10), Part { start: 3, end: 9 });
        assert_eq!(
            parse_range(Some("bytes=-20"), 10),
            Part { start: 0, end: 9 }
        );
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-3"), 10), Whole);
        assert_eq!(parse_range(Some("bytes=a-3"), 10), Whole);
        assert_eq!(parse_range(Some("items=0-3"), 10), Whole);
        assert_eq!(parse_range(Some("bytes=-"), 10), Whole);
    }
}

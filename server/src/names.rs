//! What ids and names may hold, checked in one place for every way they come in (the
//! admin commands, enrolment): text that shows as itself in a terminal table, a log line
//! and a page. Control characters (a newline, ESC starting a terminal escape) and the
//! bidirectional overrides and isolates (which reorder what follows them on screen) are
//! refused, not cleaned: the operator or phone learns why and types it again.

use std::borrow::Cow;

/// Longest id, in bytes (ids are ASCII).
pub const MAX_ID_BYTES: usize = 64;

/// Longest name (of a unit, user or device), in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Why an id or a name is refused; the text completes "the name ...".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Nothing but spaces.
    #[error("is empty")]
    Empty,
    /// Over [`MAX_ID_BYTES`] or [`MAX_NAME_CHARS`].
    #[error("is longer than {0} characters")]
    TooLong(usize),
    /// A character an id cannot hold.
    #[error("holds a character other than letters, digits, '.', '_' or '-'")]
    NotAnId,
    /// A control character: a newline, a tab, ESC...
    #[error("holds a control character (such as a newline or ESC)")]
    Control,
    /// A bidirectional override, embedding, isolate or mark.
    #[error("holds a bidirectional override or isolate (U+202A-U+202E, U+2066-U+2069)")]
    Bidi,
}

/// An id: 1 to [`MAX_ID_BYTES`] of `A-Z a-z 0-9 . _ -`, safe in URLs, logs and shells.
pub fn id(text: &str) -> Result<&str, NameError> {
    if text.is_empty() {
        Err(NameError::Empty)
    } else if text.len() > MAX_ID_BYTES {
        Err(NameError::TooLong(MAX_ID_BYTES))
    } else if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Err(NameError::NotAnId)
    } else {
        Ok(text)
    }
}

/// A name as people write it (any script, accents, spaces inside), trimmed: 1 to
/// [`MAX_NAME_CHARS`] characters, none of them a control character or a bidirectional
/// override.
pub fn name(text: &str) -> Result<&str, NameError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(NameError::Empty);
    }
    if text.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong(MAX_NAME_CHARS));
    }
    match text.chars().find_map(refused) {
        Some(error) => Err(error),
        None => Ok(text),
    }
}

/// `text` with every character that [`name`] refuses written as its escape (`\u{1b}`):
/// for showing what was stored before these checks.
pub fn printable(text: &str) -> Cow<'_, str> {
    if text.chars().all(|c| refused(c).is_none()) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match refused(c) {
                Some(_) => c.escape_unicode().to_string(),
                None => c.to_string(),
            })
            .collect(),
    )
}

/// Why `c` cannot be in a name, if it cannot.
fn refused(c: char) -> Option<NameError> {
    match c {
        // Line and paragraph separators break lines as a newline does.
        c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => Some(NameError::Control),
        // Arabic letter mark, LRM/RLM, embeddings and overrides, isolates.
        '\u{061C}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => Some(NameError::Bidi),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_script_pass_trimmed() {
        assert_eq!(
            name("  Công an phường Ngô Mây "),
            Ok("Công an phường Ngô Mây")
        );
        assert_eq!(name("شرطة"), Ok("شرطة"));
        assert_eq!(name(&"ư".repeat(MAX_NAME_CHARS)).map(str::len), Ok(200));
    }

    #[test]
    fn what_breaks_a_line_or_reorders_it_is_refused() {
        assert_eq!(name(" \t "), Err(NameError::Empty));
        assert_eq!(name("a\nb"), Err(NameError::Control));
        assert_eq!(name("\u{1b}[2J"), Err(NameError::Control));
        assert_eq!(name("a\u{2028}b"), Err(NameError::Control));
        assert_eq!(name("a\u{0085}b"), Err(NameError::Control));
        assert_eq!(name("abc\u{202E}fed"), Err(NameError::Bidi));
        assert_eq!(name("a\u{2067}b"), Err(NameError::Bidi));
        assert_eq!(
            name(&"x".repeat(MAX_NAME_CHARS + 1)),
            Err(NameError::TooLong(MAX_NAME_CHARS))
        );
        assert_eq!(
            NameError::Bidi.to_string(),
            "holds a bidirectional override or isolate (U+202A-U+202E, U+2066-U+2069)"
        );
    }

    #[test]
    fn ids_are_short_ascii() {
        assert_eq!(id("ngo-may_2.a"), Ok("ngo-may_2.a"));
        assert_eq!(id(""), Err(NameError::Empty));
        assert_eq!(id("a b"), Err(NameError::NotAnId));
        assert_eq!(id("a\u{1b}"), Err(NameError::NotAnId));
        assert_eq!(
            id(&"a".repeat(MAX_ID_BYTES + 1)),
            Err(NameError::TooLong(MAX_ID_BYTES))
        );
    }

    #[test]
    fn what_was_stored_before_prints_escaped() {
        assert_eq!(printable("Ngô Mây"), "Ngô Mây");
        assert_eq!(printable("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\u{a}");
        assert_eq!(printable("x\u{202E}y"), "x\\u{202e}y");
    }
}

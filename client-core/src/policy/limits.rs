//! Every size the change policy bounds, in one place. Generous for real work (a ward's
//! year of edits), small enough that no writer can make a document the relay and the
//! phones cannot hold.

/// Operations in one change (replacing a whole note of [`NOTE_CHARS`] takes twice that).
pub const OPS_PER_CHANGE: usize = 25_000;
/// Log entries, comments and evidence records one change adds (carrying a period's
/// evidence over to the next adds every record at once).
pub const ENTRIES_PER_CHANGE: usize = 1_000;
/// Bytes of a change's message.
pub const MESSAGE_BYTES: usize = 1_024;
/// Characters of a criterion's note.
pub const NOTE_CHARS: usize = 10_000;
/// Characters of a comment's text.
pub const COMMENT_CHARS: usize = 4_000;
/// Characters of a return's reason.
pub const REASON_CHARS: usize = 2_000;
/// Characters of a photo's caption.
pub const CAPTION_CHARS: usize = 500;
/// Characters of a user or device id, an officer's name in a record, a capture time.
pub const ID_CHARS: usize = 128;
/// Entries of one criterion's status log.
pub const LOG_ENTRIES: usize = 1_000;
/// Evidence records of one criterion (removed ones included).
pub const EVIDENCE_PER_CRITERION: usize = 50;
/// Comments of one assessment.
pub const COMMENTS: usize = 10_000;
/// Indicators of one period.
pub const INDICATORS: usize = 100;
/// Older changes one change set's references are looked up in: those pointing at what
/// the writer saw but the heads before the set no longer show (a value or a character a
/// concurrent change replaced or deleted). Each costs a walk of the document.
pub const REFERENCED_CHANGES: usize = 64;

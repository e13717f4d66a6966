//! model: pure types of the programme: templates, criteria, statuses, progress; no I/O.

mod template;

pub use template::*;

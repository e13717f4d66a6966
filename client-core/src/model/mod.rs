//! Pure types of the programme: templates, criteria, statuses, progress. No I/O.

mod identity;
mod progress;
mod status;
mod template;

pub use identity::*;
pub use progress::*;
pub use status::*;
pub use template::*;

//! wardcheck's shared core.

pub mod blob;
pub mod photo;

#[cfg(feature = "testing")]
pub mod testing;

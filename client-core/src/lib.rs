//! wardcheck's shared core.

pub mod blob;
pub mod model;
pub mod photo;

#[cfg(feature = "testing")]
pub mod testing;

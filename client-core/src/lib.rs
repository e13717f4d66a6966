//! wardcheck's shared core.

pub mod blob;
pub mod model;

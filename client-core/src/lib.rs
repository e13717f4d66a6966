//! wardcheck's shared core.

pub mod blob;

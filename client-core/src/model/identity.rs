//! Who and what an assessment is about: the ward unit, and the author of an edit.

use serde::{Deserialize, Serialize};

/// A ward police unit (Công an phường).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Stable id, e.g. "kontum-ngo-may".
    pub id: String,
    /// Display name, e.g. "Công an phường Ngô Mây".
    pub name: String,
    /// The city it belongs to.
    pub city: String,
    /// The province it belongs to.
    pub province: String,
}

/// Who makes an edit: a user (officer or supervisor) on a device.
///
/// Recorded with every change so that history reads "who changed what, when".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Author {
    /// The user id of the officer or supervisor.
    pub user: String,
    /// The device id (a phone, or the relay's console).
    pub device: String,
}

impl Author {
    /// An author from a user and device id.
    pub fn new(user: impl Into<String>, device: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            device: device.into(),
        }
    }
}
